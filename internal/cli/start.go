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
	// placement is the first DOWN instance's placement error (Diego's
	// words, e.g. "insufficient resources: memory").
	placement string
	// slotWaiting counts the starting instances waiting for a start slot
	// on their cell (their start has not begun).
	slotWaiting int
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
			if strings.HasPrefix(in.DetailsText(), waitingForStartSlot) {
				c.slotWaiting++
			}
		case "CRASHED":
			c.crashed++
			if c.crashIndex < 0 {
				c.crashIndex, c.crashDetails = in.Index, in.DetailsText()
			}
		default:
			c.down++
			if in.State == "DOWN" && c.placement == "" {
				c.placement = in.DetailsText()
			}
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

// progress is the wait's progress line: String, with why instances are
// down when no cell could take them, so a wait that may last minutes says
// at once what holds it up.
func (c instanceCounts) progress() string {
	if c.down > 0 && c.placement != "" {
		return c.String() + " (" + c.placement + ")"
	}
	return c.String()
}

// waitStarted waits until every instance of each process of the app runs.
// Instances that all crashed, or that no cell can take, end the wait at
// once with the reason; crashes of instances being restarted are shown as
// they happen, and the last one is named when the wait times out.
func (s *session) waitStarted(ctx context.Context, app *api.App, timeout time.Duration) error {
	procs, err := s.c.AppProcesses(ctx, app.GUID)
	if err != nil {
		return fmt.Errorf("list processes: %w", err)
	}
	if timeout <= 0 {
		for _, p := range procs {
			timeout = max(timeout, s.startWait(p))
		}
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

// startWait is how long a wait for p's instances lasts when
// --wait-timeout is not given: startWaitMin, or p's start timeout (-t, up
// to 180 s) plus startWaitMargin when that is longer, so that an instance
// allowed a long start is not given up on while it may still pass.
func (s *session) startWait(p api.Process) time.Duration {
	d := s.startWaitMin
	if t := p.HealthCheck.Data.Timeout; t != nil && *t > 0 {
		d = max(d, time.Duration(*t)*time.Second+s.startWaitMargin)
	}
	return d
}

// crashWatch reports the crash reasons the API gives for instances that
// are being restarted, each distinct reason once.
type crashWatch struct {
	shown map[string]bool
	last  string
	// slotShown: instances waiting for a start slot were mentioned.
	slotShown bool
}

// waitingForStartSlot begins the details the API gives of an instance its
// cell holds back until one of its bounded start slots is free: it is
// starting, not crashed.
const waitingForStartSlot = "waiting for a start slot"

func (w *crashWatch) observe(s *session, p api.Process, st *api.Stats) {
	for _, in := range st.Resources {
		reason := in.DetailsText()
		if reason == "" || (in.State != "STARTING" && in.State != "CRASHED") {
			continue
		}
		if in.State == "STARTING" && strings.HasPrefix(reason, waitingForStartSlot) {
			if !w.slotShown {
				w.slotShown = true
				s.out("   %s #%d is %s (a cell starts a bounded number of containers at once)\n", p.Type, in.Index, reason)
			}
			continue
		}
		w.last = reason
		if w.shown[reason] {
			continue
		}
		w.shown[reason] = true
		if in.State == "STARTING" {
			s.out("   %s #%d crashed: %s; restarting\n", p.Type, in.Index, reason)
		} else {
			s.out("   %s #%d crashed: %s\n", p.Type, in.Index, reason)
		}
	}
}

func (s *session) waitProcess(ctx context.Context, app *api.App, p api.Process, deadline time.Time, timeout time.Duration) error {
	longPoll := true
	since := ""
	shown := ""
	crashes := &crashWatch{shown: map[string]bool{}}
	hints := newCellHints(ctx, s, app)
	starting := false
	began, noted := s.now(), false
	for {
		var st *api.Stats
		var err error
		if longPoll {
			wait := min(30*time.Second, max(time.Second, deadline.Sub(s.now())))
			if starting {
				// Come back in time to show what the cells log about them.
				wait = min(wait, max(time.Second, s.cellHintEvery))
			}
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
		if line := c.progress(); line != shown && c.total > 0 {
			s.out("   %s: %s\n", p.Type, line)
			shown = line
		}
		if c.total > 0 && c.crashed == c.total {
			return s.crashed(ctx, app, p, c)
		}
		if c.total > 0 && c.down == c.total && c.placement != "" {
			// No cell can take any instance: waiting changes nothing.
			return fmt.Errorf("%s: %d of %d instances running: %s%s", p.Type, c.running, c.total, c.placement, placementHint(c.placement))
		}
		crashes.observe(s, p, st)
		if c.running >= p.Instances && c.running == c.total {
			return nil
		}
		starting = c.starting > 0
		if starting {
			hints.show(ctx)
			// Instances waiting for a start slot were said to; the note
			// is about health checks, which only a started one runs.
			if !noted && c.starting > c.slotWaiting && s.now().Sub(began) >= s.slowStartNote {
				noted = true
				if note := slowStartText(app, p, s.now().Sub(began)); note != "" {
					s.out("   %s: %s\n", p.Type, note)
				}
			}
		}
		if !s.now().Before(deadline) {
			why := ""
			switch {
			case crashes.last != "":
				why = "; last crash: " + crashes.last
			case c.placement != "":
				why = "; " + c.placement + placementHint(c.placement)
			}
			s.errf("\nThe app did not start within %s (%s%s).\n", timeout, c, why)
			s.printLastLogs(ctx, app)
			return fmt.Errorf("%s did not start within %s: %s%s (see 'pando logs %s --recent')", app.Name, timeout, c, why, app.Name)
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

// cellHints shows, while instances start, the errors the cells log about
// them (e.g. "app is listening on [::]:3000, not on 0.0.0.0:$PORT=8080"),
// each once: a wait would otherwise be silent until the start timeout
// (60 s by default) although the cause is known after a few seconds.
type cellHints struct {
	s     *session
	app   *api.App
	after int64 // lines up to this log time were there before the wait
	next  time.Time
	shown map[string]bool
}

// newCellHints notes the newest log line's time, so that only what the
// cells log during this wait is shown (the server's clock, not ours).
func newCellHints(ctx context.Context, s *session, app *api.App) *cellHints {
	h := &cellHints{s: s, app: app, shown: map[string]bool{}}
	if lines, err := s.c.ReadLogs(ctx, app.GUID, -1, 1, true); err == nil && len(lines) > 0 {
		h.after = lines[0].Timestamp
	}
	return h
}

// show prints the cells' new ERR lines, at most once per cellHintEvery. A
// failed read is skipped: the hints are a help, the wait goes on.
func (h *cellHints) show(ctx context.Context) {
	now := h.s.now()
	if now.Before(h.next) {
		return
	}
	h.next = now.Add(h.s.cellHintEvery)
	lines, err := h.s.c.ReadLogs(ctx, h.app.GUID, h.after+1, 100, true)
	if err != nil {
		return
	}
	for i := len(lines) - 1; i >= 0; i-- {
		l := lines[i]
		key := l.InstanceID + " " + l.Payload
		if l.SourceType != "CELL" || l.Type != "ERR" || l.Timestamp <= h.after || h.shown[key] {
			continue
		}
		h.shown[key] = true
		h.s.out("   %s\n", h.s.formatLogLine(l))
	}
}

// slowStartText says, for instances that have been starting for a while,
// what their health check waits for and how long it may: the wait prints
// nothing else until the check passes or gives up (a minute by default).
// "" for a process check, which passes as soon as the command runs.
func slowStartText(app *api.App, p api.Process, after time.Duration) string {
	limit := time.Minute
	if t := p.HealthCheck.Data.Timeout; t != nil && *t > 0 {
		limit = time.Duration(*t) * time.Second
	}
	var what string
	switch p.HealthCheck.Type {
	case "", "port":
		what = "the app to listen on $PORT"
	case "http":
		ep := p.HealthCheck.Data.Endpoint
		if ep == "" {
			ep = "/"
		}
		what = "an HTTP 200 from " + ep + " on $PORT"
	default:
		return ""
	}
	return fmt.Sprintf("still starting after %s: the health check waits for %s, for up to %s from each start ('pando logs %s' shows what the app prints)",
		after.Round(time.Second), what, limit, app.Name)
}

// placementHint says what to do about a placement error.
func placementHint(reason string) string {
	switch {
	case strings.HasPrefix(reason, "insufficient resources"):
		return " (the cells cannot fit the app; lower -m/-k or -i)"
	case strings.Contains(reason, "no compatible cell"):
		return " (no cell offers the app's stack; 'pando cells' lists the cells)"
	case strings.HasPrefix(reason, "no healthy cells"):
		return " (no cell can take work; 'pando cells' lists the cells)"
	}
	return ""
}

func (s *session) crashed(ctx context.Context, app *api.App, p api.Process, c instanceCounts) error {
	reason := c.crashDetails
	if reason == "" {
		reason = "no reason given"
	}
	s.errf("\nInstance %s/%d crashed: %s\n", p.Type, c.crashIndex, reason)
	s.printLastLogs(ctx, app)
	if hint := crashHint(reason); hint != "" {
		s.errf("%s\n", hint)
	}
	return fmt.Errorf("%s crashed: %s (see 'pando logs %s --recent')", app.Name, reason, app.Name)
}

// crashHint says what to change for a crash reason users commonly meet, or "".
func crashHint(reason string) string {
	const refused = "Failed to make TCP connection to port "
	if strings.HasSuffix(reason, "Exited with status 127") {
		return "Exit status 127: the shell did not find the start command. Check the command (-c, the Procfile or the manifest's\n" +
			"command) and that the program is in the pushed files or on the stack ('pando stacks' lists their runtimes)."
	}
	const httpCheck = "Failed to make HTTP request to '"
	if i := strings.Index(reason, httpCheck); i >= 0 && strings.Contains(reason, "received status code") {
		endpoint, _, _ := strings.Cut(reason[i+len(httpCheck):], "'")
		return fmt.Sprintf("The http health check never got a 200 from %s: make the app answer 200 there, name another path with\n"+
			"--endpoint (health-check-http-endpoint: in a manifest), or check only the port with -u port.", endpoint)
	}
	if i := strings.Index(reason, refused); i >= 0 {
		port, _, _ := strings.Cut(reason[i+len(refused):], ":")
		return fmt.Sprintf("The app never listened on port %s: it must listen on the port in $PORT (%s) on all interfaces (0.0.0.0),\n"+
			"not on a fixed port or only on localhost. An app that serves no HTTP (a worker): push it with -u process.", port, port)
	}
	return ""
}

// printLastLogs shows the app's last log lines on stderr: its own and the
// cells' errors.
func (s *session) printLastLogs(ctx context.Context, app *api.App) {
	const n = 20
	lines, err := s.c.ReadLogs(ctx, app.GUID, -1, 200, true)
	if err != nil {
		s.errf("(cannot read the app's logs: %v)\n", err)
		return
	}
	var keep []api.LogLine
	// afterStaging: a line of the app's start since its staging was seen.
	afterStaging := false
	for _, l := range lines { // newest first
		// A staging's lines before the app's newest ones end the report:
		// what came before them is an older droplet's (also when this
		// start printed nothing but the cell's progress).
		if l.SourceType == "STG" && afterStaging {
			break
		}
		afterStaging = afterStaging || l.SourceType != "STG"
		// Staging, the router's access lines and the cells' progress
		// ("creating container ...", four lines a start) would bury what
		// the app printed; the cells' errors stay.
		if l.SourceType == "STG" || l.SourceType == "RTR" || (l.SourceType == "CELL" && l.Type != "ERR") {
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
