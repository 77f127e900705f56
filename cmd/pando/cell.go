package main

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pandoplatform/pando/internal/cell"
	"github.com/pandoplatform/pando/internal/cli"
	"github.com/pandoplatform/pando/internal/container/runc"
	"github.com/pandoplatform/pando/internal/server"
)

func cellCmd(streams cli.IOStreams) *cobra.Command {
	var cfg server.CellConfig
	var logLevel, memory, disk, logRateCeiling string
	var joinURLs []string
	cmd := &cobra.Command{
		Use:   "cell --join API_URL --token TOKEN --data-dir DIR --addr IP:PORT",
		Short: "Run a cell that joins a pando server and runs the apps it places here",
		Long: `Run a cell on this machine (or address) for the pando server at API_URL.
TOKEN is in the server's <data-dir>/cell-token. The cell checks the server's
CA against the token, gets a certificate (kept in DIR), and from then on
talks to the server over mutual TLS. The server and the router reach the
cell at --addr: its rep API on that port, app instances on host ports of
that IP.

SIGTERM evacuates the cell (each instance serves until its replacement runs
on another cell, at most 10 minutes) and then stops it; SIGUSR1 evacuates
it and keeps it running, draining.

With several API replicas on one database, give each one's URL (--join
repeated, or comma separated): the cell talks to the one that answers and
moves to the next when it cannot reach it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.JoinURL = strings.Join(joinURLs, ",")
			level, err := parseLogLevel(logLevel)
			if err != nil {
				return err
			}
			if memory != "" {
				if cfg.MemoryMB, err = megabytes("--memory", memory); err != nil {
					return err
				}
			}
			if disk != "" {
				if cfg.DiskMB, err = megabytes("--disk", disk); err != nil {
					return err
				}
			}
			if cfg.LogRateCeiling, err = logRateFlag("--log-rate-ceiling", logRateCeiling); err != nil {
				return err
			}
			if cfg.MaxConcurrentStarts < 0 {
				return fmt.Errorf("--max-concurrent-starts %d: give a positive number of starts (0: two per CPU)", cfg.MaxConcurrentStarts)
			}
			if err := syncIntervalFlag("--sync-interval", cfg.SyncInterval); err != nil {
				return err
			}
			if cfg.Token == "" {
				cfg.Token = os.Getenv("PANDO_CELL_TOKEN")
			}
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			return server.RunCell(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&joinURLs, "join", nil, "URL of the server's API, e.g. http://10.0.0.1:9022 (repeatable or comma separated: the API replicas sharing one database)")
	f.StringVar(&cfg.Token, "token", "", "join token from the server's <data-dir>/cell-token (env PANDO_CELL_TOKEN)")
	f.StringVar(&cfg.DataDir, "data-dir", "", "the cell's data directory (certificate, containers, caches)")
	f.StringVar(&cfg.Addr, "addr", "", "IP:PORT of the cell's rep API; app instances get host ports on the same IP")
	f.StringVar(&cfg.ID, "id", "", "the cell's name (default: host name and the --addr IP)")
	f.StringVar(&cfg.Zone, "zone", "", "availability zone: instances spread across zones first")
	f.StringVar(&memory, "memory", "", "memory the cell offers to apps, e.g. 8G (default: the machine's)")
	f.StringVar(&disk, "disk", "", "disk the cell offers to apps, e.g. 100G (default: the data dir's file system size)")
	f.StringToStringVar(&cfg.Stacks, "stack", nil, "extra stack NAME=ROOTFS_DIR (repeatable)")
	f.StringVar(&cfg.HostCFStack, "host-stack-cf-stack", "", "CF_STACK that buildpacks see on the host stack")
	f.StringVar(&cfg.CacheDir, "cache-dir", "/var/cache/pando", "machine-wide caches (Go build cache seed, python venv seed)")
	f.StringVar(&logRateCeiling, "log-rate-ceiling", "4M", "the cell's bound on each container's log lines per second (unlimited: none)")
	f.IntVar(&cfg.MaxConcurrentStarts, "max-concurrent-starts", 0, "most container starts the cell runs at once, the rest wait in order; stagings go first with a slot of their own (0: two per CPU, at least 2)")
	f.Uint32Var(&cfg.ContainerHostIDBase, "container-host-id-base", runc.DefaultHostIDBase, "first host uid/gid of containers (a multiple of 65536)")
	f.IntVar(&cfg.ContainerHostIDBlocks, "container-host-id-blocks", runc.DefaultHostIDBlocks, "how many containers' host id blocks the range holds")
	f.StringArrayVar(&cfg.StagingEnv, "staging-env", nil, "KEY=VALUE in every staging container's environment on this cell, e.g. a proxy (repeatable; never logged)")
	f.BoolVar(&cfg.StagingEgress, "staging-egress", true, "let staging download dependencies through an HTTP proxy this cell serves in each staging container (the operator's HTTP(S)_PROXY from --staging-env honoured); false: staging has no network")
	f.Int64Var(&cfg.StagingEgressMaxBytes, "staging-egress-max-bytes", cell.DefaultStagingEgressMaxBytes, "most bytes one staging may download through its egress proxy; past it the download is cut off and staging told why (-1: no limit)")
	f.Int64Var(&cfg.LayerCacheMaxBytes, "layer-cache-max-bytes", 10<<30, "bound of the cell's docker image layer cache (unpacked bytes); unused layers past it go, least recently used first")
	f.StringArrayVar(&cfg.InsecureRegistries, "insecure-registry", nil, "HOST:PORT of a registry images may be pulled from over plain HTTP (repeatable)")
	f.DurationVar(&cfg.SyncInterval, "sync-interval", cell.DefaultSyncInterval, "how often the cell checks what it runs against what the server wants it to run, and stops the rest (5s to 10m, jittered by a fifth)")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	cmd.AddCommand(cli.CellCommands(streams)...)
	return cmd
}

// megabytes reads a size flag: 512M, 8G, 1T or a number of MB.
func megabytes(name, s string) (int, error) {
	t := strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "B")
	mult := 1
	switch {
	case strings.HasSuffix(t, "T"):
		mult, t = 1<<20, strings.TrimSuffix(t, "T")
	case strings.HasSuffix(t, "G"):
		mult, t = 1<<10, strings.TrimSuffix(t, "G")
	case strings.HasSuffix(t, "M"):
		t = strings.TrimSuffix(t, "M")
	}
	n, err := strconv.Atoi(t)
	if err != nil || n <= 0 || n > (1<<30)/mult {
		return 0, fmt.Errorf("%s %q: want a size such as 512M, 8G or 1T", name, s)
	}
	return n * mult, nil
}
