// Command pando is the whole platform in one binary: `pando server` runs
// it, the client verbs (push, apps, logs...) talk to it, and the hidden
// lifecycle verbs (builder, launcher, static-serve) run inside containers.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

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
	root.AddCommand(serverCmd())
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

func serverCmd() *cobra.Command {
	var cfg server.Config
	var logLevel string
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the whole platform in one process (API, router, BBS, one local cell)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			cfg.AdminPassword = os.Getenv("PANDO_ADMIN_PASSWORD")
			cfg.Stdout = os.Stdout
			return server.Run(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.APIAddr, "api-addr", "127.0.0.1:9022", "address of the CF v3 API, UAA and log-cache")
	f.StringVar(&cfg.RouterAddr, "router-addr", "127.0.0.1:8080", "address of the HTTP router")
	f.StringVar(&cfg.Domain, "domain", "localhost", "shared app domain")
	f.StringVar(&cfg.DataDir, "data-dir", server.DefaultDataDir(), "data directory (env PANDO_DATA_DIR)")
	f.StringVar(&cfg.DatabaseURL, "database-url", "", "CCDB location (default: SQLite file in the data dir)")
	f.DurationVar(&cfg.StagingTimeout, "staging-timeout", 15*time.Minute, "fail staging that takes longer")
	f.Int64Var(&cfg.MaxUploadBytes, "max-upload-bytes", 1<<30, "largest accepted package upload")
	f.Int64Var(&cfg.ResourceCacheMaxBytes, "resource-cache-max-bytes", 4<<30, "bound of the cache of uploaded files that later pushes skip (least recently used go first)")
	f.IntVar(&cfg.CellMemoryMB, "cell-memory-mb", 0, "memory the local cell offers to apps (default: the machine's)")
	f.StringToStringVar(&cfg.Stacks, "stack", nil, "extra stack NAME=ROOTFS_DIR (repeatable), e.g. bookworm=/var/lib/pando-stacks/bookworm")
	f.StringVar(&cfg.HostCFStack, "host-stack-cf-stack", "", "CF_STACK that buildpacks see on the host stack (default \"host\"; e.g. cflinuxfs4 for CF's own buildpacks)")
	f.StringVar(&cfg.CacheDir, "cache-dir", "/var/cache/pando", "machine-wide caches shared by servers (Go build cache seed)")
	f.Uint32Var(&cfg.ContainerHostIDBase, "container-host-id-base", runc.DefaultHostIDBase, "first host uid/gid of containers: each gets 65536 from here on (a multiple of 65536)")
	f.IntVar(&cfg.ContainerHostIDBlocks, "container-host-id-blocks", runc.DefaultHostIDBlocks, "how many containers' host id blocks the range holds")
	f.DurationVar(&cfg.ConvergeInterval, "converge-interval", 30*time.Second, "how often the runtime converges desired and actual state")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	return cmd
}
