package builder

import (
	"fmt"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// NewCommand returns the hidden `pando builder` subcommand. On failure its
// RunE has already written the reason to stderr and returns an error whose
// message is empty (so main does not print it twice) and whose ExitCode()
// is the builder's exit status; errors.As still finds the *ExitError.
func NewCommand() *cobra.Command {
	var cfg Config
	cmd := &cobra.Command{
		Use:           "builder",
		Short:         "Staging lifecycle: run buildpacks and write a droplet (runs inside a staging container)",
		Hidden:        true,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			_, err := Build(ctx, cfg, cmd.OutOrStdout(), cmd.ErrOrStderr())
			if err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "Staging failed: %v\n", err)
				return reported{err}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.BuildDir, "build-dir", "/tmp/app", "extracted package (writable)")
	f.StringVar(&cfg.BuildpacksDir, "buildpacks-dir", "/tmp/buildpacks", "one extracted buildpack per sub-directory")
	f.StringSliceVar(&cfg.BuildpackOrder, "buildpack-order", nil, "buildpack sub-directory names, in detect/run order")
	f.BoolVar(&cfg.SkipDetect, "skip-detect", false, "run the buildpacks as given: the last is final, the others supply")
	f.StringVar(&cfg.CacheDir, "cache-dir", "/tmp/cache", "per-app build cache (writable)")
	f.StringVar(&cfg.DepsDir, "deps-dir", "/tmp/deps", "dependencies dir (writable)")
	f.StringVar(&cfg.ProfileDir, "profile-dir", "", "profile.d dir given to finalize (default $TMPDIR/profile.d)")
	f.StringVar(&cfg.OutputDroplet, "output-droplet", "/tmp/output/droplet.tgz", "droplet tgz to write")
	f.StringVar(&cfg.OutputMetadata, "output-metadata", "/tmp/output/result.json", "staging result JSON to write")
	return cmd
}

// reported is an error already written to stderr: it has no message of its
// own, only the exit code and the cause for errors.As.
type reported struct{ err error }

func (r reported) Error() string { return "" }
func (r reported) Unwrap() error { return r.err }
func (r reported) ExitCode() int { return ExitCode(r.err) }
