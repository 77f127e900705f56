package cli

import (
	"context"
	"sync/atomic"
	"time"

	pando "github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/cli/api"
)

// follower streams an app's log lines while the CLI waits for something
// (a build, a task) to finish, so that nothing printed meanwhile is lost.
// Until the work has ended (drain), any end of the stream is resumed: a
// server that stops (kill -9, a plain or --keep-apps-on-stop stop) or a
// proxy that cuts idle streams ends it while the work may go on.
type follower struct {
	s           *session
	app         *api.App
	sourceTypes []string
	keep        func(api.LogLine) bool

	lines     chan api.LogLine
	done      chan error // nil once the stream has ended
	connected chan struct{}
	ended     bool
	stop      context.CancelFunc

	// kick makes a follower waiting to reconnect try again now.
	kick chan struct{}
	// progress is signalled at each (re)connection, loss of the stream
	// and line handed over.
	progress chan struct{}
	// finishing: the watched work has ended; a stream the server ends
	// cleanly from now on is the end.
	finishing atomic.Bool
	// open: a connection is up.
	open atomic.Bool
	// reached is the newest timestamp the stream delivered (lines
	// dropped as already seen included), once handed over.
	reached atomic.Int64
}

// follow opens the stream of app's lines of sourceTypes; keep, when
// set, drops lines it refuses. Call stop (or drain) when done.
func (s *session) follow(ctx context.Context, app *api.App, sourceTypes []string, keep func(api.LogLine) bool) *follower {
	logCtx, stop := context.WithCancel(ctx)
	f := &follower{s: s, app: app, sourceTypes: sourceTypes, keep: keep,
		lines: make(chan api.LogLine, 256), done: make(chan error, 1), connected: make(chan struct{}), stop: stop,
		kick: make(chan struct{}, 1), progress: make(chan struct{}, 1)}
	go func() {
		var once bool
		// A server restart does not end the stream: it resumes where it
		// was (followResuming), as long as the watched work goes on.
		f.done <- s.followResuming(logCtx, app.GUID, sourceTypes, resumeHooks{
			connected: func() {
				if !once {
					once = true
					close(f.connected)
				}
				f.open.Store(true)
				f.signal()
			},
			ended: func() {
				f.open.Store(false)
				f.signal()
			},
			endClean: f.finishing.Load,
			kick:     f.kick,
		}, func(l api.LogLine, fresh bool) {
			if fresh && (keep == nil || keep(l)) {
				select {
				case f.lines <- l:
				case <-logCtx.Done():
					return
				}
			}
			if l.Timestamp > f.reached.Load() {
				f.reached.Store(l.Timestamp)
			}
			f.signal()
		})
	}()
	return f
}

func (f *follower) signal() {
	select {
	case f.progress <- struct{}{}:
	default:
	}
}

// waitOpen waits until the stream is open, so the work started next loses
// no line; without a stream (or a slow one) the work goes ahead anyway.
func (f *follower) waitOpen(ctx context.Context, what string) error {
	select {
	case <-f.connected:
	case err := <-f.done:
		f.end(ctx, err, "cannot follow "+what)
	case <-time.After(5 * time.Second):
		f.s.errf("warning: the log stream is slow to open; going ahead without waiting for %s\n", what)
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// end records that the stream ended (err, read from f.done by the caller)
// and warns with doing when it ended on an error.
func (f *follower) end(ctx context.Context, err error, doing string) {
	f.ended, f.done = true, nil
	if err != nil && ctx.Err() == nil {
		f.s.errf("warning: %s: %v\n", doing, err)
	}
}

// drain prints the lines still on their way once the watched work has
// ended, then stops the stream. A stream lost meanwhile (a server restart)
// is reconnected at once. When the log store says which of its lines is
// the newest the stream would deliver, drain ends once the stream has
// delivered it (the cells ship a staging's or task's lines to the store
// before reporting its end), so no line is cut off however slow the
// stream; else, once the stream is open, when it is quiet for drainIdle
// (at most drainMax) or the server ends it. drainCatchUp bounds the wait
// for the stream.
func (f *follower) drain(ctx context.Context, print func(api.LogLine)) {
	s := f.s
	if !f.ended {
		f.finishing.Store(true)
		select {
		case f.kick <- struct{}{}:
		default:
		}
		target, known := f.newest(ctx)
		caughtUp := func() bool {
			if known {
				return f.reached.Load() >= target
			}
			return f.open.Load()
		}
		limit := time.NewTimer(s.drainCatchUp)
	catchUp:
		for !caughtUp() {
			select {
			case l := <-f.lines:
				print(l)
			case <-f.progress:
			case <-limit.C:
				if known {
					s.errf("warning: the log stream did not catch up within %s: output may be missing ('pando logs %s --recent' shows what the server has)\n", s.drainCatchUp, f.app.Name)
				}
				break catchUp
			case <-f.done:
				f.done = nil
				break catchUp
			case <-ctx.Done():
				break catchUp
			}
		}
		limit.Stop()
		if !known && f.done != nil {
			f.quiet(print)
		}
	}
	f.stop()
	if f.done != nil {
		<-f.done
	}
	for {
		select {
		case l := <-f.lines:
			print(l)
			continue
		default:
		}
		return
	}
}

// quiet prints lines until the stream is quiet for drainIdle (at most
// drainMax) or ends.
func (f *follower) quiet(print func(api.LogLine)) {
	s := f.s
	idle := time.NewTimer(s.drainIdle)
	limit := time.NewTimer(s.drainMax)
	defer idle.Stop()
	defer limit.Stop()
	for {
		select {
		case l := <-f.lines:
			print(l)
			idle.Reset(s.drainIdle)
		case <-idle.C:
			return
		case <-limit.C:
			return
		case <-f.done:
			f.done = nil
			return
		}
	}
}

// newest reads the timestamp of the newest line the log store holds that
// the stream would deliver; false when the store does not say (no such
// line among its newest, or it cannot be read). Pando's store answers
// with that one line (source_types, limit 1); a store that ignores
// source_types (log-cache) or a newest line keep refuses (another task's
// whose name extends this one's) costs one read of the newest 1000.
func (f *follower) newest(ctx context.Context) (int64, bool) {
	ctx, cancel := context.WithTimeout(ctx, f.s.drainCatchUp)
	defer cancel()
	wanted := func(l api.LogLine) bool {
		return pando.LogSourceSelected(f.sourceTypes, l.SourceType) && (f.keep == nil || f.keep(l))
	}
	lines, err := f.s.c.ReadLogsOf(ctx, f.app.GUID, f.sourceTypes, -1, 1, true)
	switch {
	case err != nil || len(lines) == 0:
		// None: the store has no line of these types (or, ignoring
		// source_types, no line at all).
		return 0, false
	case wanted(lines[0]):
		return lines[0].Timestamp, true
	}
	if lines, err = f.s.c.ReadLogsOf(ctx, f.app.GUID, f.sourceTypes, -1, 1000, true); err != nil {
		return 0, false
	}
	for _, l := range lines { // newest first
		if wanted(l) {
			return l.Timestamp, true
		}
	}
	return 0, false
}
