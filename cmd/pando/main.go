// Command pando is the whole platform in one binary: `pando server` runs
// it, the client verbs (push, apps, logs...) talk to it, and the hidden
// lifecycle verbs (builder, launcher, static-serve) run inside containers.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/pandoplatform/pando/internal/cc"
	"github.com/pandoplatform/pando/internal/cell"
	"github.com/pandoplatform/pando/internal/cli"
	"github.com/pandoplatform/pando/internal/container/runc"
	"github.com/pandoplatform/pando/internal/lifecycle/builder"
	"github.com/pandoplatform/pando/internal/lifecycle/launcher"
	"github.com/pandoplatform/pando/internal/lifecycle/staticserver"
	"github.com/pandoplatform/pando/internal/server"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	// A container's shim outlives the server: it starts lean, before
	// the verbs are built, and ignores the signals they would handle.
	if len(os.Args) > 1 && os.Args[1] == runc.ShimCommand {
		os.Exit(runc.ShimMain(os.Args[2:]))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string) int {
	streams := cli.StdStreams()
	root := &cobra.Command{
		Use:           "pando",
		Short:         "Pando: push apps from source or Docker images to a self-hosted platform",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddGroup(cli.Groups()...)
	server, cell, rtr := serverCmd(), cellCmd(streams), routerCmd()
	server.GroupID, cell.GroupID, rtr.GroupID = cli.GroupPlatform, cli.GroupPlatform, cli.GroupPlatform
	root.AddCommand(server, cell, rtr)
	root.AddCommand(builder.NewCommand(), launcher.NewCommand(), staticserver.NewCommand())
	root.AddCommand(cli.NewCommands(streams)...)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var coded interface{ ExitCode() int }
	if errors.As(err, &coded) {
		if msg := err.Error(); msg != "" {
			fmt.Fprintf(os.Stderr, "error: %s\n", msg)
		}
		return coded.ExitCode()
	}
	return cli.ReportError(os.Stderr, err)
}

// parsePrefix reads "10.0.0.0/8" or a single address.
func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, errors.New("not an IP address or CIDR")
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func serverCmd() *cobra.Command {
	var cfg server.Config
	var logLevel, defaultLogRate, logRateCeiling string
	var trusted []string
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the whole platform in one process (API, router, BBS, one local cell)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			level, err := parseLogLevel(logLevel)
			if err != nil {
				return err
			}
			if cfg.DefaultLogRateLimit, err = logRateFlag("--default-log-rate-limit", defaultLogRate); err != nil {
				return err
			}
			if cfg.LogRateCeiling, err = logRateFlag("--log-rate-ceiling", logRateCeiling); err != nil {
				return err
			}
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			for _, t := range trusted {
				p, err := parsePrefix(t)
				if err != nil {
					return fmt.Errorf("--trusted-proxy %q: %w", t, err)
				}
				cfg.TrustedProxies = append(cfg.TrustedProxies, p)
			}
			cfg.AdminPassword = os.Getenv("PANDO_ADMIN_PASSWORD")
			cfg.Stdout = os.Stdout
			return server.Run(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.APIAddr, "api-addr", "127.0.0.1:9022", "address of the CF v3 API, UAA and log-cache")
	f.StringVar(&cfg.RouterAddr, "router-addr", "127.0.0.1:8080", "address of the HTTP router")
	f.StringVar(&cfg.RouterTLSAddr, "router-tls-addr", "", "address of the router's HTTPS listener, e.g. 0.0.0.0:443 (default: no HTTPS)")
	f.StringArrayVar(&cfg.TLSCertFiles, "tls-cert", nil, "PEM certificate (chain) of the router's HTTPS; repeat with --tls-key for one per domain, chosen by SNI (default: a self-signed one kept in the data dir)")
	f.StringArrayVar(&cfg.TLSKeyFiles, "tls-key", nil, "PEM private key of the --tls-cert in the same position")
	f.StringVar(&cfg.CellAPIAddr, "cell-api-addr", "", "address cells on other machines join and report to, over mutual TLS (default: the --api-addr host and its port + 1, 127.0.0.1:9023)")
	f.StringVar(&cfg.Domain, "domain", "localhost", "shared app domain")
	f.StringVar(&cfg.SystemDomain, "system-domain", "", "domain of the API's routes on the router: api., uaa., login., log-cache. (default: --domain)")
	f.StringVar(&cfg.DataDir, "data-dir", server.DefaultDataDir(), "data directory (env PANDO_DATA_DIR)")
	f.StringVar(&cfg.DatabaseURL, "database-url", "", "CCDB location (default: SQLite file in the data dir)")
	f.DurationVar(&cfg.StagingTimeout, "staging-timeout", 15*time.Minute, "fail staging that takes longer")
	f.Int64Var(&cfg.MaxUploadBytes, "max-upload-bytes", 1<<30, "largest accepted package upload")
	f.Int64Var(&cfg.ResourceCacheMaxBytes, "resource-cache-max-bytes", 4<<30, "bound of the cache of uploaded files that later pushes skip (least recently used go first)")
	f.IntVar(&cfg.CellMemoryMB, "cell-memory-mb", 0, "memory the local cell offers to apps (default: the machine's)")
	f.StringToStringVar(&cfg.Stacks, "stack", nil, "extra stack NAME=ROOTFS_DIR (repeatable), e.g. bookworm=/var/lib/pando-stacks/bookworm")
	f.StringVar(&cfg.HostCFStack, "host-stack-cf-stack", "", "CF_STACK that buildpacks see on the host stack (default \"host\"; e.g. cflinuxfs4 for CF's own buildpacks)")
	f.StringVar(&cfg.CacheDir, "cache-dir", "/var/cache/pando", "machine-wide caches shared by servers (Go build cache seed)")
	f.StringVar(&defaultLogRate, "default-log-rate-limit", "16K", "log rate limit per second of app instances and tasks that set none (e.g. 16K, 1M, unlimited)")
	f.StringVar(&logRateCeiling, "log-rate-ceiling", "4M", "the cell's bound on each container's log lines per second, whatever its own limit (each line counts 64 bytes more; unlimited: none)")
	f.Uint32Var(&cfg.ContainerHostIDBase, "container-host-id-base", runc.DefaultHostIDBase, "first host uid/gid of containers: each gets 65536 from here on (a multiple of 65536)")
	f.IntVar(&cfg.ContainerHostIDBlocks, "container-host-id-blocks", runc.DefaultHostIDBlocks, "how many containers' host id blocks the range holds")
	f.StringArrayVar(&cfg.StagingEnv, "staging-env", nil, "KEY=VALUE environment for staging only, below the app's own (repeatable; e.g. HTTPS_PROXY=http://proxy:3128, npm_config_registry=URL); never shown to users")
	f.BoolVar(&cfg.StagingEgress, "staging-egress", true, "let staging download dependencies through an HTTP proxy the cell serves in each staging container (through the operator's HTTP(S)_PROXY from --staging-env, NO_PROXY honoured; the platform's own ports and link-local addresses refused); false: staging has no network")
	f.Int64Var(&cfg.StagingEgressMaxBytes, "staging-egress-max-bytes", cell.DefaultStagingEgressMaxBytes, "most bytes one staging may download through its egress proxy; past it the download is cut off and staging told why (-1: no limit)")
	f.Int64Var(&cfg.LayerCacheMaxBytes, "layer-cache-max-bytes", 10<<30, "bound of the cell's docker image layer cache (unpacked bytes); unused layers past it go, least recently used first")
	f.StringArrayVar(&cfg.InsecureRegistries, "insecure-registry", nil, "HOST:PORT of a registry docker images may be fetched from over plain HTTP (repeatable; takes effect once docker apps are enabled)")
	f.DurationVar(&cfg.ConvergeInterval, "converge-interval", 30*time.Second, "how often the runtime converges desired and actual state")
	f.IntVar(&cfg.RouterMaxConns, "router-max-conns", 0, "most open client connections the router holds; past it, 503 (default 10000, less if the fd limit is low; -1 no limit)")
	f.IntVar(&cfg.RouterMaxConnsPerClient, "router-max-conns-per-client", 0, "most open router connections from one client address (default a tenth of --router-max-conns)")
	f.IntVar(&cfg.RouterMaxRequestsPerApp, "router-max-requests-per-app", 0, "most requests, websockets included, in flight to one app (default half of --router-max-conns)")
	f.StringSliceVar(&trusted, "trusted-proxy", nil, "address or CIDR of a proxy in front of the router or the API whose X-Forwarded-For (and for the router -Proto) is believed (repeatable)")
	f.DurationVar(&cfg.APITimeouts.BodyWindow, "api-body-timeout", time.Minute, "an API request body that delivers less than 16 KiB in this long is cut off")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	return cmd
}

// logRateFlag reads a log rate flag: a size per second or unlimited (-1).
// Zero is refused: it would mean no logs at all.
func logRateFlag(name, v string) (int, error) {
	n, err := cc.ParseLogRateLimit(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	if n == 0 {
		return 0, fmt.Errorf("%s 0 would drop every log line: give a size (e.g. 16K) or unlimited", name)
	}
	return n, nil
}

// parseLogLevel reads --log-level (debug, info, warn, error).
func parseLogLevel(s string) (slog.Level, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(s)); err != nil {
		return level, fmt.Errorf("--log-level: %w", err)
	}
	return level, nil
}
