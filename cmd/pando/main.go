// Command pando is the whole platform in one binary: `pando server` runs
// it (or `pando api`, `pando cell` and `pando router` run its parts), the
// client verbs (push, apps, logs...) talk to it, and the hidden lifecycle
// verbs (builder, launcher, static-serve) run inside containers.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/pandoplatform/pando/internal/bbs"
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
	root.SetFlagErrorFunc(cli.FlagError)
	root.AddGroup(cli.Groups()...)
	daemons := map[*cobra.Command]bool{}
	srv, copyData := serverCmd(), copyDataCmd()
	srv.AddCommand(copyData)
	daemons[copyData] = true
	for _, c := range []*cobra.Command{srv, apiCmd(), cellCmd(streams), routerCmd()} {
		c.GroupID = cli.GroupPlatform
		root.AddCommand(c)
		daemons[c] = true
	}
	root.AddCommand(builder.NewCommand(), launcher.NewCommand(), staticserver.NewCommand())
	root.AddCommand(cli.NewCommands(streams)...)
	cli.StrictHelp(root)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
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
	if daemons[cmd] {
		// The client's hints (pando endpoint, pando login) are not for
		// the platform's own processes.
		fmt.Fprintf(os.Stderr, "error: %s%s\n", err, dialHint(err))
		return 1
	}
	return cli.ReportError(os.Stderr, err)
}

// dialHint says what a refused or unanswered connection of a platform
// process means, or "".
func dialHint(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return " (nothing answers there: is that server running, and is the address right?)"
	}
	return ""
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

// parsePrefixes reads a repeatable address-or-CIDR flag.
func parsePrefixes(flag string, vs []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range vs {
		p, err := parsePrefix(v)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", flag, v, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func serverCmd() *cobra.Command {
	var cfg server.Config
	var pf platformFlags
	var logRateCeiling string
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the whole platform in one process (API, router, BBS, one local cell)",
		Long: `Run the whole platform in one process: the CF v3 API with UAA and
log-cache, the router, the BBS and auctioneer, and one local cell that runs
apps in runc containers (root needed). Cells on other machines may join it
(pando cell) and routers run beside it (pando router): it writes their
tokens to <data-dir>/cell-token and <data-dir>/router-token. To run apps on
joined cells only, use pando api instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := pf.apply(&cfg); err != nil {
				return err
			}
			var err error
			if cfg.LogRateCeiling, err = logRateFlag("--log-rate-ceiling", logRateCeiling); err != nil {
				return err
			}
			if cfg.CellMaxConcurrentStarts < 0 {
				return fmt.Errorf("--max-concurrent-starts %d: give a positive number of starts (0: two per CPU)", cfg.CellMaxConcurrentStarts)
			}
			if cfg.CellHostAddr, err = hostAddrFlag("--cell-host-addr", cfg.CellHostAddr); err != nil {
				return err
			}
			if err := syncIntervalFlag("--cell-sync-interval", cfg.CellSyncInterval); err != nil {
				return err
			}
			return server.Run(cmd.Context(), cfg)
		},
	}
	pf.add(cmd, &cfg)
	f := cmd.Flags()
	f.IntVar(&cfg.CellMemoryMB, "cell-memory-mb", 0, "memory the local cell offers to apps (default: the machine's)")
	f.StringToStringVar(&cfg.Stacks, "stack", nil, "extra stack NAME=ROOTFS_DIR (repeatable), e.g. bookworm=/var/lib/pando-stacks/bookworm")
	f.StringVar(&cfg.HostCFStack, "host-stack-cf-stack", "", "CF_STACK that buildpacks see on the host stack (default \"host\"; e.g. cflinuxfs4 for CF's own buildpacks)")
	f.StringVar(&cfg.CacheDir, "cache-dir", "/var/cache/pando", "machine-wide caches shared by servers (Go build cache seed, python venv seed)")
	f.StringVar(&logRateCeiling, "log-rate-ceiling", "4M", "the cell's bound on each container's log lines per second, whatever its own limit (each line counts 64 bytes more; unlimited: none)")
	f.IntVar(&cfg.CellMaxConcurrentStarts, "max-concurrent-starts", 0, "most container starts the local cell runs at once (files, container, process), the rest wait in order; stagings go first with a slot of their own (0: two per CPU, at least 2)")
	f.Uint32Var(&cfg.ContainerHostIDBase, "container-host-id-base", runc.DefaultHostIDBase, "first host uid/gid of containers: each gets 65536 from here on (a multiple of 65536)")
	f.IntVar(&cfg.ContainerHostIDBlocks, "container-host-id-blocks", runc.DefaultHostIDBlocks, "how many containers' host id blocks the range holds")
	f.StringArrayVar(&cfg.StagingEnv, "staging-env", nil, "KEY=VALUE environment for staging only, below the app's own (repeatable; e.g. HTTPS_PROXY=http://proxy:3128, npm_config_registry=URL); never shown to users")
	f.BoolVar(&cfg.StagingEgress, "staging-egress", true, "let staging download dependencies through an HTTP proxy the cell serves in each staging container (through the operator's HTTP(S)_PROXY from --staging-env, NO_PROXY honoured; the platform's own ports and link-local addresses refused); false: staging has no network")
	f.Int64Var(&cfg.StagingEgressMaxBytes, "staging-egress-max-bytes", cell.DefaultStagingEgressMaxBytes, "most bytes one staging may download through its egress proxy; past it the download is cut off and staging told why (-1: no limit)")
	f.Int64Var(&cfg.LayerCacheMaxBytes, "layer-cache-max-bytes", 10<<30, "bound of the cell's docker image layer cache (unpacked bytes); unused layers past it go, least recently used first")
	f.StringArrayVar(&cfg.InsecureRegistries, "insecure-registry", nil, "HOST:PORT of a registry docker images may be fetched from over plain HTTP, by staging and the local cell (repeatable); every other registry is HTTPS only")
	f.DurationVar(&cfg.CellSyncInterval, "cell-sync-interval", cell.DefaultSyncInterval, "how often the local cell checks what it runs against what the runtime wants it to run, and stops the rest (5s to 10m, jittered by a fifth)")
	f.BoolVar(&cfg.KeepAppsOnStop, "keep-apps-on-stop", false, "at SIGTERM or SIGINT leave the local cell's app instances, stagings and tasks running (apps are unreachable until the next start, which adopts them: for upgrades and restarts under systemd with KillMode=process); false: a stop stops them")
	f.StringVar(&cfg.CellHostAddr, "cell-host-addr", cell.DefaultHostAddr, "IP the local cell's instances get their host ports on, advertised to routers: an address other machines reach lets a pando router there route to them (and anyone who reaches it, to the instances directly)")
	return cmd
}

// syncIntervalFlag checks a cell's sync period: shorter than 5 s
// would spend the server's CPU on 1,000 cells for little, longer than 10
// minutes leaves a forgotten duplicate running for as long.
func syncIntervalFlag(flag string, d time.Duration) error {
	if d < 5*time.Second || d > 10*time.Minute {
		return fmt.Errorf("%s %s: give 5s to 10m (default %s)", flag, d, cell.DefaultSyncInterval)
	}
	return nil
}

// presenceTTLFlag checks --cell-presence-ttl: shorter than a second
// would lose cells to a busy moment, longer than 10 minutes leaves a
// lost cell's instances unplaced for as long.
func presenceTTLFlag(d time.Duration) error {
	if d < time.Second || d > 10*time.Minute {
		return fmt.Errorf("--cell-presence-ttl %s: give 1s to 10m (default %s)", d, bbs.DefaultCellPresenceTTL)
	}
	return nil
}

// hostAddrFlag reads an IP address that host ports are opened on and
// advertised at: one address, not a wildcard.
func hostAddrFlag(name, v string) (string, error) {
	a, err := netip.ParseAddr(v)
	if err != nil || a.Zone() != "" {
		return "", fmt.Errorf("%s %q: want the IP address of this machine that routers reach, e.g. 10.0.0.5", name, v)
	}
	a = a.Unmap()
	if a.IsUnspecified() || a.IsMulticast() {
		return "", fmt.Errorf("%s %s: give one address of this machine (routers are told it), not a wildcard", name, v)
	}
	return a.String(), nil
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
