package main

import (
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pandoplatform/pando/internal/server"
)

func routerCmd() *cobra.Command {
	var cfg server.RouterConfig
	var logLevel string
	var trusted []string
	var apiURLs []string
	cmd := &cobra.Command{
		Use:   "router --api API_URL --token TOKEN --data-dir DIR",
		Short: "Run a router in its own process, following a pando server's routing table",
		Long: `Run an HTTP(S) router for the pando server at API_URL, as the server's own
router but in its own process (several may run, on this machine or others).
TOKEN is in the server's <data-dir>/router-token. The router checks the
server's CA against the token and reads the routing table over TLS from the
server's cell API: a full snapshot, then changes. While the server is down
it keeps serving its last table (kept in DIR, so a restarted router does
too) and reconnects; each reconnection resyncs the whole table. App
instances are reached at their cells' addresses; api., uaa., login. and
log-cache. under the server's system domain go to API_URL. With several API
replicas on one database, give each one's URL (--api repeated, or comma
separated): the router follows the one that answers.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.APIURL = strings.Join(apiURLs, ",")
			level, err := parseLogLevel(logLevel)
			if err != nil {
				return err
			}
			if cfg.TrustedProxies, err = parsePrefixes("--trusted-proxy", trusted); err != nil {
				return err
			}
			if cfg.Token == "" {
				cfg.Token = os.Getenv("PANDO_ROUTER_TOKEN")
			}
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			cfg.Stdout = os.Stdout
			return server.RunRouter(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&apiURLs, "api", nil, "URL of the server's API, e.g. http://10.0.0.1:9022 (repeatable or comma separated: the API replicas sharing one database)")
	f.StringVar(&cfg.Token, "token", "", "router token from the server's <data-dir>/router-token (env PANDO_ROUTER_TOKEN)")
	f.StringVar(&cfg.DataDir, "data-dir", "", "the router's data directory (its last routing table, its self-signed certificate)")
	f.StringVar(&cfg.Addr, "addr", ":8080", "address of the router's HTTP listener")
	f.StringVar(&cfg.TLSAddr, "tls-addr", "", "address of the router's HTTPS listener, e.g. :443 (default: no HTTPS)")
	f.StringArrayVar(&cfg.TLSCertFiles, "tls-cert", nil, "PEM certificate (chain) of the router's HTTPS; repeat with --tls-key for one per domain, chosen by SNI (default: a self-signed one for --domain kept in the data dir)")
	f.StringArrayVar(&cfg.TLSKeyFiles, "tls-key", nil, "PEM private key of the --tls-cert in the same position")
	f.StringVar(&cfg.Domain, "domain", "localhost", "domain the self-signed HTTPS certificate is made for (*.DOMAIN and its system hosts)")
	f.IntVar(&cfg.MaxConns, "max-conns", 0, "most open client connections; past it, 503 (default 10000, less if the fd limit is low; -1 no limit)")
	f.IntVar(&cfg.MaxConnsPerClient, "max-conns-per-client", 0, "most open connections from one client address (default a tenth of --max-conns)")
	f.IntVar(&cfg.MaxRequestsPerApp, "max-requests-per-app", 0, "most requests, websockets included, in flight to one app (default half of --max-conns)")
	f.StringSliceVar(&trusted, "trusted-proxy", nil, "address or CIDR of a load balancer in front of the router whose X-Forwarded-For and -Proto are believed (repeatable)")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	return cmd
}
