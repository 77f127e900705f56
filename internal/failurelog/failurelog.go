// Package failurelog logs a pando.Failure as its set fields
// (crash.kind=exited crash.exit_code=3), not as a Go struct dump; the root
// package keeps its domain types free of logging.
package failurelog

import (
	"log/slog"

	pando "github.com/pandoplatform/pando"
)

// Of returns f ready for a slog attribute's value.
func Of(f *pando.Failure) slog.LogValuer { return value{f} }

type value struct{ f *pando.Failure }

func (v value) LogValue() slog.Value {
	f := v.f
	if f == nil {
		return slog.Value{}
	}
	attrs := []slog.Attr{slog.String("kind", f.Kind)}
	if f.ExitCode != 0 {
		attrs = append(attrs, slog.Int("exit_code", f.ExitCode))
	}
	if f.LimitMB != 0 {
		attrs = append(attrs, slog.Int("limit_mb", f.LimitMB))
	}
	if f.Timeout != 0 {
		attrs = append(attrs, slog.Duration("timeout", f.Timeout))
	}
	if f.Detail != "" {
		attrs = append(attrs, slog.String("detail", f.Detail))
	}
	if f.Hint != "" {
		attrs = append(attrs, slog.String("hint", f.Hint))
	}
	return slog.GroupValue(attrs...)
}
