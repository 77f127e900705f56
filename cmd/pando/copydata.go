package main

import (
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/pandoplatform/pando/internal/server"
)

// copyDataCmd is pando server copy-data: a stopped server's SQLite CCDB
// to PostgreSQL and its fs blobstore to S3.
func copyDataCmd() *cobra.Command {
	var cfg server.CopyDataConfig
	var logLevel string
	cmd := &cobra.Command{
		Use:   "copy-data --to-database-url URL --to-blobstore s3://BUCKET[/PREFIX]?...",
		Short: "Copy a stopped server's SQLite CCDB to PostgreSQL and its blobs to S3",
		Long: `Copy what a stopped server keeps in its data dir to where a server on
more than one machine keeps it: the CCDB (<data-dir>/ccdb.sqlite) into an
empty PostgreSQL database (--to-database-url), and the blobstore
(<data-dir>/blobs) into an S3 bucket (--to-blobstore), either or both.

The CCDB is copied in one transaction: the target is migrated to this
version's schema, every table is copied as is, and each table's rows are
counted on both sides before it commits. A target with rows, or one a
server uses, is refused. Each blob is read back from S3 and its SHA-256
checked; blobs already in the bucket with the same size and SHA-256 are
skipped, so a run that stopped resumes. The data dir is only read, and
stays where it is: start the server on it with --database-url and
--blobstore. The server must be stopped (the data dir's lock is held).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			level, err := parseLogLevel(logLevel)
			if err != nil {
				return err
			}
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			cfg.Out = os.Stdout
			return server.CopyData(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", server.DefaultDataDir(), "the stopped server's data directory (env PANDO_DATA_DIR)")
	f.StringVar(&cfg.DatabaseURL, "to-database-url", "", "empty PostgreSQL database the CCDB goes to: postgres://USER@HOST:PORT/DATABASE?sslmode=... (password in PGPASSWORD)")
	f.StringVar(&cfg.Blobstore, "to-blobstore", "", "S3 bucket the blobs go to, as --blobstore takes it: s3://BUCKET[/PREFIX]?endpoint=HOST:PORT&region=R (credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, ~/.aws/credentials or the instance role)")
	f.BoolVar(&cfg.DryRun, "dry-run", false, "check both sides and print what would be copied, writing nothing")
	f.StringVar(&logLevel, "log-level", "warn", "log level: debug, info, warn, error")
	return cmd
}
