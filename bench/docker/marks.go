package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"time"
)

// marks are the server log's timestamps of one cold push (zero: not
// found), for the breakdown.
type marks struct {
	stagingRunning, stagingDone, lrpDesired, lastLayer time.Time
}

// readMarks reads the first staging task, LRP and the last unpacked layer
// from a server log (slog text, time= first).
func readMarks(path string) (marks, error) {
	var m marks
	f, err := os.Open(path)
	if err != nil {
		return m, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		ts, ok := strings.CutPrefix(line, "time=")
		if !ok {
			continue
		}
		ts, _, _ = strings.Cut(ts, " ")
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			continue
		}
		switch {
		case strings.Contains(line, `msg="task running"`) && strings.Contains(line, "kind=staging") && m.stagingRunning.IsZero():
			m.stagingRunning = t
		case strings.Contains(line, `msg="task completed"`) && strings.Contains(line, "kind=staging") && m.stagingDone.IsZero():
			m.stagingDone = t
		case strings.Contains(line, `msg="lrp desired"`) && m.lrpDesired.IsZero():
			m.lrpDesired = t
		case strings.Contains(line, `msg="layer cache: unpacked layer"`):
			m.lastLayer = t
		}
	}
	return m, sc.Err()
}

// breakdown splits a cold start from start to firstOK at the marks; nil
// when a mark is missing (the log format changed).
func (m marks) breakdown(start, firstOK time.Time) []step {
	ts := []time.Time{start, m.stagingRunning, m.stagingDone, m.lrpDesired, m.lastLayer, firstOK}
	for k, t := range ts {
		if t.IsZero() || (k > 0 && t.Before(ts[k-1].Add(-time.Millisecond))) {
			return nil
		}
	}
	names := []string{
		"CLI: app, package, build until the staging task runs",
		"staging: resolve the image's manifest and config",
		"staging result stored, LRP desired",
		"cell: pull + verify + unpack the layers",
		"container: overlay, start, health check, route",
	}
	steps := make([]step, len(names))
	for k, n := range names {
		steps[k] = step{name: n, took: ts[k+1].Sub(ts[k])}
	}
	return steps
}

type step struct {
	name string
	took time.Duration
}

func (s step) String() string { return fmt.Sprintf("%s: %s", s.name, ms(s.took)) }
