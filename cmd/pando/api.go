package main

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/pandoplatform/pando/internal/bbs"
	s3blob "github.com/pandoplatform/pando/internal/blobstore/s3"
	"github.com/pandoplatform/pando/internal/cc"
	"github.com/pandoplatform/pando/internal/drain"
	"github.com/pandoplatform/pando/internal/server"
)

func apiCmd() *cobra.Command {
	var cfg server.Config
	var pf platformFlags
	var stacks []string
	cmd := &cobra.Command{
		Use:   "api",
		Short: "Run the platform without a local cell: apps run on joined cells",
		Long: `Run the platform as pando server does (the CF v3 API with UAA and
log-cache, the router, the BBS and auctioneer) but without a local cell:
every staging, app instance and task runs on a cell that joined with
pando cell. It runs no containers and needs no root.

It writes the join token cells need to <data-dir>/cell-token and the token
separate routers need to <data-dir>/router-token (both 0600). Until a cell
joins, pando cells lists none and apps cannot be placed ("no healthy
cells"); they are placed as soon as a cell can take them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := pf.apply(&cfg); err != nil {
				return err
			}
			for _, s := range stacks {
				if cfg.Stacks == nil {
					cfg.Stacks = map[string]string{}
				}
				cfg.Stacks[s] = ""
			}
			return server.RunAPI(cmd.Context(), cfg)
		},
	}
	pf.add(cmd, &cfg)
	cmd.Flags().StringArrayVar(&stacks, "stack", nil, "name of an extra stack the joined cells offer (their --stack NAME=DIR), repeatable; host is always offered")
	return cmd
}

// platformFlags are the flags `pando server` and `pando api` share: the
// API, the router, the data dir, the database and the platform's bounds.
type platformFlags struct {
	logLevel, defaultLogRate string
	trusted                  []string
}

// add registers the shared flags of cmd, setting cfg.
func (pf *platformFlags) add(cmd *cobra.Command, cfg *server.Config) {
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
	f.StringVar(&cfg.Blobstore, "blobstore", "", "where packages, droplets and caches live: s3://BUCKET[/PREFIX]?endpoint=HOST:PORT&region=R, credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, ~/.aws/credentials or the instance role (default: <data-dir>/blobs)")
	f.DurationVar(&cfg.StagingTimeout, "staging-timeout", 15*time.Minute, "fail staging that takes longer")
	f.Int64Var(&cfg.MaxUploadBytes, "max-upload-bytes", 1<<30, "largest accepted package upload")
	f.Int64Var(&cfg.ResourceCacheMaxBytes, "resource-cache-max-bytes", 4<<30, "bound of the cache of uploaded files that later pushes skip (least recently used go first)")
	f.StringVar(&pf.defaultLogRate, "default-log-rate-limit", "16K", "log rate limit per second of app instances and tasks that set none (e.g. 16K, 1M, unlimited)")
	f.DurationVar(&cfg.CellPresenceTTL, "cell-presence-ttl", bbs.DefaultCellPresenceTTL, "how long a joined cell that stops renewing its presence keeps its instances before they are placed elsewhere (1s to 10m; cells renew at a third of it)")
	f.IntVar(&cfg.SyslogDrainLimits.MaxDrains, "syslog-drain-max", drain.DefaultMaxDrains, "most syslog drains (app-to-drain-URL bindings) forwarded to in all; each holds up to 4 MiB of queued lines")
	f.IntVar(&cfg.SyslogDrainLimits.MaxDrainsPerOrg, "syslog-drain-max-per-org", drain.DefaultMaxDrainsPerOrg, "most syslog drains of one org's apps; a bind past it is refused (-1: no limit)")
	f.IntVar(&cfg.SyslogDrainLimits.MaxDrainsPerSpace, "syslog-drain-max-per-space", drain.DefaultMaxDrainsPerSpace, "most syslog drains of one space's apps; a bind past it is refused (-1: no limit)")
	f.IntVar(&cfg.MaxServiceInstancesPerOrg, "max-service-instances-per-org", cc.DefaultMaxServiceInstancesPerOrg, "most user-provided service instances in one org (CF's quotas count only managed ones; -1: no limit)")
	f.DurationVar(&cfg.ConvergeInterval, "converge-interval", 30*time.Second, "how often the runtime converges desired and actual state")
	f.IntVar(&cfg.RouterMaxConns, "router-max-conns", 0, "most open client connections the router holds; past it, 503 (default 10000, less if the fd limit is low; -1 no limit)")
	f.IntVar(&cfg.RouterMaxConnsPerClient, "router-max-conns-per-client", 0, "most open router connections from one client address (default a tenth of --router-max-conns)")
	f.IntVar(&cfg.RouterMaxRequestsPerApp, "router-max-requests-per-app", 0, "most requests, websockets included, in flight to one app (default half of --router-max-conns)")
	f.StringSliceVar(&pf.trusted, "trusted-proxy", nil, "address or CIDR of a proxy in front of the router or the API whose X-Forwarded-For (and for the router -Proto) is believed (repeatable)")
	f.DurationVar(&cfg.APITimeouts.BodyWindow, "api-body-timeout", time.Minute, "an API request body that delivers less than 16 KiB in this long is cut off")
	f.StringVar(&pf.logLevel, "log-level", "info", "log level: debug, info, warn, error")
}

// apply reads the shared flags that need parsing into cfg, and what
// comes from the environment.
func (pf *platformFlags) apply(cfg *server.Config) error {
	level, err := parseLogLevel(pf.logLevel)
	if err != nil {
		return err
	}
	if cfg.DefaultLogRateLimit, err = logRateFlag("--default-log-rate-limit", pf.defaultLogRate); err != nil {
		return err
	}
	if cfg.TrustedProxies, err = parsePrefixes("--trusted-proxy", pf.trusted); err != nil {
		return err
	}
	if err := presenceTTLFlag(cfg.CellPresenceTTL); err != nil {
		return err
	}
	if cfg.Blobstore != "" {
		if _, err := s3blob.ParseURL(cfg.Blobstore); err != nil {
			return fmt.Errorf("--blobstore: %w", err)
		}
	}
	if n := cfg.SyslogDrainLimits.MaxDrains; n < 1 {
		return fmt.Errorf("--syslog-drain-max %d: give a count of at least 1", n)
	}
	for _, l := range []struct {
		flag string
		n    int
	}{
		{"--syslog-drain-max-per-org", cfg.SyslogDrainLimits.MaxDrainsPerOrg},
		{"--syslog-drain-max-per-space", cfg.SyslogDrainLimits.MaxDrainsPerSpace},
		{"--max-service-instances-per-org", cfg.MaxServiceInstancesPerOrg},
	} {
		if l.n < 1 && l.n != -1 {
			return fmt.Errorf("%s %d: give a count of at least 1, or -1 for no limit", l.flag, l.n)
		}
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg.AdminPassword = os.Getenv("PANDO_ADMIN_PASSWORD")
	cfg.Stdout = os.Stdout
	return nil
}
