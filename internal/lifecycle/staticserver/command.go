package staticserver

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"
)

// NewCommand returns the hidden `pando static-serve` subcommand:
//
//	pando static-serve --root DIR [--port $PORT] [--pushstate] [--directory-listing]
//
// It serves until SIGTERM or SIGINT, then shuts down gracefully.
func NewCommand() *cobra.Command {
	var cfg Config
	var port string
	cmd := &cobra.Command{
		Use:          "static-serve --root DIR",
		Short:        "Serve a directory over HTTP (the staticfile buildpack's web process)",
		Hidden:       true,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if port == "" {
				port = os.Getenv("PORT")
			}
			if port == "" {
				port = "8080"
			}
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				return fmt.Errorf("static-serve: invalid port %q", port)
			}
			cfg.Addr = ":" + port
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return Serve(ctx, cfg, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Root, "root", "", "directory to serve (required)")
	f.StringVar(&port, "port", "", "TCP port (default $PORT, else 8080)")
	f.BoolVar(&cfg.Pushstate, "pushstate", false, "serve /index.html for paths that do not exist (single-page apps)")
	f.BoolVar(&cfg.DirectoryListing, "directory-listing", false, "list directories that have no index.html")
	f.BoolVar(&cfg.DotFiles, "dotfiles", false, "serve hidden files (names starting with a dot)")
	f.BoolVar(&cfg.Gzip, "gzip", true, "gzip text responses for clients that accept it")
	_ = cmd.MarkFlagRequired("root")
	return cmd
}
