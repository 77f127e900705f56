package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// marks are the server log's timestamps of one cold push (zero: not
// found), for the breakdown.
type marks struct {
	stagingRunning, stagingDone, lrpDesired, lastLayer time.Time
	// The first container's start, from the debug log (zero at info):
	// when runc's pid was known, the parts of its start, and when its
	// health check passed.
	containerStarted             time.Time
	idsUserns, bundle, runcToPid time.Duration
	healthy                      time.Time
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
		case strings.Contains(line, `msg="container started"`) && m.containerStarted.IsZero():
			m.containerStarted = t
			m.idsUserns = msField(line, "ids_userns_ms")
			m.bundle = msField(line, "bundle_ms")
			m.runcToPid = msField(line, "runc_ms")
		case strings.Contains(line, `msg="Container became healthy"`) && m.healthy.IsZero():
			m.healthy = t
		}
	}
	return m, sc.Err()
}

// breakdown splits a cold start from start to firstOK at the marks; nil
// when a mark is missing (the log format changed). The layers are pulled
// from the end of staging on, while the staging result is stored and the
// LRP desired: those two steps overlap, and the container starts once
// both are done.
func (m marks) breakdown(start, firstOK time.Time) []step {
	ts := []time.Time{start, m.stagingRunning, m.stagingDone, m.lrpDesired, firstOK}
	for k, t := range ts {
		if t.IsZero() || (k > 0 && t.Before(ts[k-1].Add(-time.Millisecond))) {
			return nil
		}
	}
	if m.lastLayer.Before(m.stagingDone.Add(-time.Millisecond)) || m.lastLayer.After(firstOK) {
		return nil
	}
	ready := m.lrpDesired
	if m.lastLayer.After(ready) {
		ready = m.lastLayer
	}
	return []step{
		{"CLI: app, package, build until the staging task runs", m.stagingRunning.Sub(start)},
		{"staging: resolve the image's manifest and config", m.stagingDone.Sub(m.stagingRunning)},
		{"staging result stored, LRP desired (beside the pull)", m.lrpDesired.Sub(m.stagingDone)},
		{"cell: pull + verify + unpack the layers, from staging's end", m.lastLayer.Sub(m.stagingDone)},
		{"instance waits for the layers after the LRP is desired", ready.Sub(m.lrpDesired)},
		{"container: overlay, start, health check, route", firstOK.Sub(ready)},
	}
}

type step struct {
	name string
	took time.Duration
}

func (s step) String() string { return fmt.Sprintf("%s: %s", s.name, ms(s.took)) }

// msField reads a " key=1.234" milliseconds field of a log line.
func msField(line, key string) time.Duration {
	_, v, ok := strings.Cut(line, " "+key+"=")
	if !ok {
		return 0
	}
	v, _, _ = strings.Cut(v, " ")
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0
	}
	return time.Duration(f * float64(time.Millisecond))
}

// containerSteps splits the container step (from the layers and the LRP
// to the first 200) at the debug log's lines; nil without them.
func (m marks) containerSteps(firstOK time.Time) []step {
	ready := m.lrpDesired
	if m.lastLayer.After(ready) {
		ready = m.lastLayer
	}
	runStart := m.containerStarted.Add(-(m.idsUserns + m.bundle + m.runcToPid))
	if m.containerStarted.IsZero() || m.healthy.IsZero() || m.runcToPid == 0 ||
		runStart.Before(ready.Add(-time.Millisecond)) || m.healthy.Before(m.containerStarted) || firstOK.Before(m.healthy) {
		return nil
	}
	return []step{
		{"  placed, volume, container spec (after layers and LRP)", runStart.Sub(ready)},
		{"  host ids and user namespace", m.idsUserns},
		{"  bundle: overlay, mounts, config", m.bundle},
		{"  runc run until the container's pid", m.runcToPid},
		{"  pid to health check passed", m.healthy.Sub(m.containerStarted)},
		{"  RUNNING reported, routed, first 200 seen", firstOK.Sub(m.healthy)},
	}
}
