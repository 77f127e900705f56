package cli

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pandoplatform/pando/internal/cli/api"
)

func (e *env) logsCmd() *cobra.Command {
	var recent bool
	cmd := &cobra.Command{
		Use:   "logs NAME",
		Short: "Follow an app's logs (or show recent ones with --recent)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmdContext(cmd)
			s, err := e.newSession(ctx, true)
			if err != nil {
				return err
			}
			app, err := s.app(ctx, args[0])
			if err != nil {
				return err
			}
			if recent {
				s.out("Retrieving logs for app %s in %s...\n\n", app.Name, s.where())
				return s.recentLogs(ctx, app)
			}
			s.out("Following logs for app %s in %s (Ctrl-C to stop)...\n\n", app.Name, s.where())
			return s.followLogs(ctx, app)
		},
	}
	cmd.Flags().BoolVar(&recent, "recent", false, "show recent logs and exit")
	return cmd
}

// recentLogs prints the last 1000 log lines, oldest first.
func (s *session) recentLogs(ctx context.Context, app *api.App) error {
	lines, err := s.c.ReadLogs(ctx, app.GUID, -1, 1000, true)
	if err != nil {
		return err
	}
	for i := len(lines) - 1; i >= 0; i-- {
		s.out("%s\n", s.formatLogLine(lines[i]))
	}
	return nil
}

// followLogs prints new lines until interrupted, reconnecting when the
// server ends the stream.
func (s *session) followLogs(ctx context.Context, app *api.App) error {
	var last int64
	lost, failures := false, 0
	for {
		start := int64(0)
		if last > 0 {
			start = last + 1
		}
		connected := func() {
			if lost {
				s.errf("Reconnected.\n")
			}
			lost, failures = false, 0
			if last == 0 {
				// Resume from here, not from "now" at the next connect:
				// lines written while the server is away are kept.
				last = time.Now().UnixNano() - 1
			}
		}
		err := s.c.FollowLogs(ctx, app.GUID, nil, start, connected, func(l api.LogLine) {
			if l.Timestamp > last {
				last = l.Timestamp
			}
			s.out("%s\n", s.formatLogLine(l))
		})
		if ctx.Err() != nil || errors.Is(err, context.Canceled) {
			return nil
		}
		delay := time.Second
		var apiErr *api.Error
		switch {
		case errors.As(err, &apiErr) && apiErr.StatusCode < 500:
			return err // the app is gone, or we are logged out: retrying won't help
		case err != nil:
			// The server is away (restarting?): keep trying, as cf does.
			if !lost {
				s.errf("Lost the connection to the API (%v); reconnecting...\n", err)
				lost = true
			}
			delay = min(time.Duration(failures+1)*time.Second, 5*time.Second)
			failures++
		}
		// The server closed the stream (restart, proxy timeout): resume.
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// formatLogLine renders a line as cf does:
// 2026-11-26T10:00:00.00+0000 [APP/PROC/WEB/0] OUT hello
func (e *env) formatLogLine(l api.LogLine) string {
	src := l.SourceType
	if l.InstanceID != "" {
		src += "/" + l.InstanceID
	}
	typ := l.Type
	if typ == "" {
		typ = "OUT"
	}
	ts := l.Time().In(e.loc).Format("2006-01-02T15:04:05.00-0700")
	return ts + " [" + src + "] " + typ + " " + strings.TrimRight(l.Payload, "\r\n")
}
