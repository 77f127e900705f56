package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pandoplatform/pando/internal/cli/api"
)

// instanceCounts summarises a process's instances.
type instanceCounts struct {
	running, starting, crashed, down, total int
	crashDetails                            string
	crashIndex                              int
}

func countInstances(st *api.Stats) instanceCounts {
	var c instanceCounts
	c.crashIndex = -1
	for _, in := range st.Resources {
		c.total++
		switch in.State {
		case "RUNNING":
			c.running++
		case "STARTING":
			c.starting++
		case "CRASHED":
			c.crashed++
			if c.crashIndex < 0 {
				c.crashIndex, c.crashDetails = in.Index, in.DetailsText()
			}
		default:
			c.down++
		}
	}
	return c
}

func (c instanceCounts) String() string {
	parts := []string{fmt.Sprintf("%d of %d instances running", c.running, c.total)}
	if c.starting > 0 {
		parts = append(parts, fmt.Sprintf("%d starting", c.starting))
	}
	if c.crashed > 0 {
		parts = append(parts, fmt.Sprintf("%d crashed", c.crashed))
	}
	if c.down > 0 {
		parts = append(parts, fmt.Sprintf("%d down", c.down))
	}
	return strings.Join(parts, ", ")
}

// waitStarted waits until every instance of each process of the app runs.
// A crashed instance ends the wait with its reason and the app's last log
// lines; so does the timeout.
func (s *session) waitStarted(ctx context.Context, app *api.App, timeout time.Duration) error {
	procs, err := s.c.AppProcesses(ctx, app.GUID)
	if err != nil {
		return fmt.Errorf("list processes: %w", err)
	}
	deadline := s.now().Add(timeout)
	for _, p := range procs {
		if p.Instances == 0 {
			continue
		}
		if err := s.waitProcess(ctx, app, p, deadline, timeout); err != nil {
			return err
		}
	}
	return nil
}

func (s *session) waitProcess(ctx context.Context, app *api.App, p api.Process, deadline time.Time, timeout time.Duration) error {
	longPoll := true
	since := ""
	shown := ""
	for {
		var st *api.Stats
		var err error
		if longPoll {
			wait := min(30*time.Second, max(time.Second, deadline.Sub(s.now())))
			st, err = s.c.WaitStats(ctx, p.GUID, since, wait)
			if errors.Is(err, api.ErrUnsupported) {
				longPoll = false
				continue
			}
		} else {
			st, err = s.c.ProcessStats(ctx, p.GUID)
		}
		if err != nil {
			return err
		}
		c := countInstances(st)
		if line := c.String(); line != shown && c.total > 0 {
			s.out("   %s: %s\n", p.Type, line)
			shown = line
		}
		if c.crashed > 0 {
			return s.crashed(ctx, app, p, c)
		}
		if c.running >= p.Instances && c.running == c.total {
			return nil
		}
		if !s.now().Before(deadline) {
			s.errf("\nThe app did not start within %s (%s).\n", timeout, c)
			s.printLastLogs(ctx, app)
			return fmt.Errorf("%s did not start within %s: %s (see 'pando logs %s --recent')", app.Name, timeout, c, app.Name)
		}
		if !longPoll || st.StateHash == "" || st.StateHash == since {
			// Plain CF stats, or a server that does not hold the request:
			// poll at a short fixed interval.
			t := time.NewTimer(s.statsPoll)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		since = st.StateHash
	}
}

func (s *session) crashed(ctx context.Context, app *api.App, p api.Process, c instanceCounts) error {
	reason := c.crashDetails
	if reason == "" {
		reason = "no reason given"
	}
	s.errf("\nInstance %s/%d crashed: %s\n", p.Type, c.crashIndex, reason)
	s.printLastLogs(ctx, app)
	return fmt.Errorf("%s crashed: %s (see 'pando logs %s --recent')", app.Name, reason, app.Name)
}

// printLastLogs shows the app's last log lines (not staging) on stderr.
func (s *session) printLastLogs(ctx context.Context, app *api.App) {
	const n = 20
	lines, err := s.c.ReadLogs(ctx, app.GUID, -1, 200, true)
	if err != nil {
		s.errf("(cannot read the app's logs: %v)\n", err)
		return
	}
	var keep []api.LogLine
	for _, l := range lines {
		if l.SourceType == "STG" {
			continue
		}
		keep = append(keep, l)
		if len(keep) == n {
			break
		}
	}
	if len(keep) == 0 {
		s.errf("The app logged nothing.\n")
		return
	}
	s.errf("Last log lines of %s:\n", app.Name)
	for i := len(keep) - 1; i >= 0; i-- {
		s.errf("   %s\n", s.formatLogLine(keep[i]))
	}
}
