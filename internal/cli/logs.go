package cli

import (
	"context"
	"errors"
	"maps"
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
// server ends the stream or goes away.
func (s *session) followLogs(ctx context.Context, app *api.App) error {
	return s.followResuming(ctx, app.GUID, nil, resumeHooks{}, func(l api.LogLine, fresh bool) {
		if fresh {
			s.out("%s\n", s.formatLogLine(l))
		}
	})
}

// resumeHooks let the owner of a resumed stream watch and steer it; all
// are optional.
type resumeHooks struct {
	// connected is called at every (re)connection, ended when a
	// connection ends.
	connected, ended func()
	// endClean, when it returns true, makes a stream the server ends
	// cleanly the end (only a lost connection is resumed then).
	endClean func() bool
	// kick cuts a wait to reconnect short.
	kick <-chan struct{}
}

// followResuming follows an app's log stream until ctx ends: when the
// stream ends (a server restart or stop, a proxy's timeout) it
// reconnects, with a growing delay (reconnectMin more per failure, at most
// reconnectMax) while the server is away, saying so once per outage on
// stderr, and resumes from the timestamp of the last line it passed on,
// so that no line is lost or passed on twice. fn gets every line the
// stream delivers, fresh false for one it passed on before. It returns
// ctx's end as nil, and errors retrying cannot help (the app is gone, the
// login expired).
func (s *session) followResuming(ctx context.Context, appGUID string, sourceTypes []string, h resumeHooks, fn func(l api.LogLine, fresh bool)) error {
	var r resumer
	lost, failures := false, 0
	for {
		onConnect := func() {
			if lost {
				s.errf("Reconnected.\n")
			}
			lost, failures = false, 0
			// Resume from here, not from "now" at the next connect: lines
			// written while the server is away are kept.
			r.connectedAt(time.Now().UnixNano())
			if h.connected != nil {
				h.connected()
			}
		}
		err := s.c.FollowLogs(ctx, appGUID, sourceTypes, r.resume(), onConnect, func(l api.LogLine) {
			fn(l, r.fresh(l))
		})
		if h.ended != nil {
			h.ended()
		}
		if ctx.Err() != nil || errors.Is(err, context.Canceled) {
			return nil
		}
		if err == nil && h.endClean != nil && h.endClean() {
			return nil
		}
		delay := s.reconnectMin
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
			delay = min(time.Duration(failures+1)*s.reconnectMin, s.reconnectMax)
			failures++
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-h.kick:
			t.Stop()
		case <-t.C:
		}
	}
}

// resumer remembers where a log stream was, to resume it without passing
// a line twice: the latest timestamp passed and the lines passed at it. A
// resumed stream is asked for again from that timestamp inclusive (so a
// line sharing it that had not arrived yet is not lost), and what it sends
// again is dropped.
type resumer struct {
	from   int64 // the first connection's time, before any line
	last   int64
	atLast map[string]struct{}
	// floor and atFloor are last and atLast when the stream was resumed.
	floor   int64
	atFloor map[string]struct{}
}

// connectedAt notes a connection's time: before any line, a resumption
// starts at the first one rather than at the next connection's "now".
func (r *resumer) connectedAt(ns int64) {
	if r.from == 0 {
		r.from = ns
	}
}

// resume is the start_time for the next connection (0: from now) and sets
// what that connection may send again.
func (r *resumer) resume() int64 {
	if r.last == 0 {
		return r.from
	}
	r.floor, r.atFloor = r.last, maps.Clone(r.atLast)
	return r.last
}

// fresh reports whether l was not passed on before, and notes it.
func (r *resumer) fresh(l api.LogLine) bool {
	key := l.SourceType + "\x00" + l.InstanceID + "\x00" + l.Type + "\x00" + l.Payload
	if l.Timestamp < r.floor {
		return false
	}
	if _, seen := r.atFloor[key]; seen && l.Timestamp == r.floor {
		return false
	}
	switch {
	case l.Timestamp > r.last || r.atLast == nil:
		r.last = l.Timestamp
		r.atLast = map[string]struct{}{key: {}}
	case l.Timestamp == r.last:
		r.atLast[key] = struct{}{}
	}
	return true
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
