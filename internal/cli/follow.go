package cli

import (
	"context"
	"time"

	"github.com/pandoplatform/pando/internal/cli/api"
)

// follower streams an app's log lines while the CLI waits for something
// (a build, a task) to finish, so that nothing printed meanwhile is lost.
type follower struct {
	s         *session
	lines     chan api.LogLine
	done      chan error // nil once the stream has ended
	connected chan struct{}
	ended     bool
	stop      context.CancelFunc
}

// follow opens the stream of appGUID's lines of sourceTypes; keep, when
// set, drops lines it refuses. Call stop (or drain) when done.
func (s *session) follow(ctx context.Context, appGUID string, sourceTypes []string, keep func(api.LogLine) bool) *follower {
	logCtx, stop := context.WithCancel(ctx)
	f := &follower{s: s, lines: make(chan api.LogLine, 256), done: make(chan error, 1), connected: make(chan struct{}), stop: stop}
	go func() {
		var once bool
		// A server restart does not end the stream: it resumes where it
		// was (followResuming), as long as the watched work goes on.
		f.done <- s.followResuming(logCtx, appGUID, sourceTypes, true,
			func() {
				if !once {
					once = true
					close(f.connected)
				}
			},
			func(l api.LogLine) {
				if keep != nil && !keep(l) {
					return
				}
				select {
				case f.lines <- l:
				case <-logCtx.Done():
				}
			})
	}()
	return f
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
// ended: until the stream is quiet for drainIdle (at most drainMax), then
// it stops the stream and prints what arrived meanwhile.
func (f *follower) drain(print func(api.LogLine)) {
	s := f.s
	if !f.ended {
		idle := time.NewTimer(s.drainIdle)
		limit := time.NewTimer(s.drainMax)
	drain:
		for {
			select {
			case l := <-f.lines:
				print(l)
				idle.Reset(s.drainIdle)
			case <-idle.C:
				break drain
			case <-limit.C:
				break drain
			case <-f.done:
				f.done = nil
				break drain
			}
		}
		idle.Stop()
		limit.Stop()
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
