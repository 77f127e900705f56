package cli

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// stopStream is a server whose staging goes on while the server stops
// and starts again: the first connection of the staging stream sends
// one line and then ends (cut, as by kill -9, or cleanly, as a stopping
// server ends it); while down, the server refuses connections (502); once
// up again, the stream serves the log store's lines from start_time
// inclusive and stays open. The staging's other lines were printed while
// the server was down; its end may be answered before the stream is back.
type stopStream struct {
	t     *testing.T
	f     *fakeCF
	cut   bool // the first connection is cut, not ended cleanly
	lines []string

	mu     sync.Mutex
	up     bool     // the server is back
	conns  int      // stream connections accepted
	starts []string // start_time of each stream request
	first  chan struct{}
}

func (d *stopStream) ts(i int) int64 { return stgT0 + int64(i) }

// comeBack waits, for request r, until the first stream has sent its
// line and ended, then marks the server back; false if r ended first.
func (d *stopStream) comeBack(r *http.Request) bool {
	select {
	case <-d.first:
	case <-r.Context().Done():
		return false
	}
	d.mu.Lock()
	d.up = true
	d.mu.Unlock()
	return true
}

func (d *stopStream) serve(w http.ResponseWriter, r *http.Request) bool {
	switch {
	case r.URL.Path == "/pando/v1/logs/"+appGUID+"/stream":
		d.serveStream(w, r)
	case r.URL.Path == "/api/v1/read/"+appGUID:
		d.mu.Lock()
		up := d.up
		d.mu.Unlock()
		batch := []any{}
		for i := len(d.lines) - 1; up && i >= 0; i-- { // newest first
			batch = append(batch, map[string]any{
				"timestamp": strconv.FormatInt(d.ts(i), 10), "source_id": appGUID, "instance_id": "0",
				"tags": map[string]any{"source_type": "STG"},
				"log":  map[string]any{"payload": base64.StdEncoding.EncodeToString([]byte(d.lines[i])), "type": "OUT"},
			})
		}
		d.f.writeJSON(w, 200, map[string]any{"envelopes": map[string]any{"batch": batch}})
	default:
		return false
	}
	return true
}

func (d *stopStream) serveStream(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	d.starts = append(d.starts, r.URL.Query().Get("start_time"))
	up, n := d.up, d.conns
	if n == 0 || up {
		d.conns++
	}
	d.mu.Unlock()
	if n > 0 && !up {
		http.Error(w, "starting", http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(200)
	fl := w.(http.Flusher)
	fl.Flush()
	send := func(i int) {
		ev, _ := json.Marshal(map[string]any{"timestamp": d.ts(i), "source_type": "STG", "instance_id": "0", "type": "OUT", "payload": d.lines[i]})
		fmt.Fprintf(w, "id: %d\ndata: %s\n\n", d.ts(i), ev)
		fl.Flush()
	}
	if n == 0 {
		select {
		case <-d.f.buildCreated:
		case <-r.Context().Done():
			return
		}
		send(0)
		close(d.first)
		if d.cut {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				d.t.Errorf("hijack: %v", err)
				return
			}
			conn.Close()
		}
		return // a stopping server ends the stream
	}
	start, _ := strconv.ParseInt(r.URL.Query().Get("start_time"), 10, 64)
	for i := range d.lines {
		if d.ts(i) >= start {
			send(i)
		}
	}
	<-r.Context().Done()
}

// pushAcrossAStop pushes while d's server stops and starts again, and
// returns the staging output pando push printed.
func pushAcrossAStop(t *testing.T, d *stopStream, reconnect time.Duration, answerBuild func(w http.ResponseWriter, r *http.Request) bool) string {
	t.Helper()
	f := newFakeCF(t)
	d.t, d.f, d.first = t, f, make(chan struct{})
	d.lines = []string{"quick buildpack is sleeping", "quick buildpack done", "Uploading complete"}
	f.stats = [][]statEntry{{{state: "RUNNING"}}}
	f.extra = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == "GET" && r.URL.Path == "/pando/v1/builds/"+buildGUID {
			return answerBuild(w, r)
		}
		return d.serve(w, r)
	}
	h := newHarness(t)
	h.loggedIn(f, time.Hour)
	h.env.drainIdle, h.env.drainMax = 50*time.Millisecond, 3*time.Second
	h.env.reconnectMin, h.env.reconnectMax = reconnect, reconnect
	app := t.TempDir()
	writeFiles(t, app, map[string]string{"index.html": "hi"})
	if err := h.run("push", "myapp", "-p", app); err != nil {
		t.Fatalf("push: %v\nstdout: %s\nstderr: %s", err, h.out, h.err)
	}
	out := h.out.String()
	for _, l := range d.lines {
		if n := strings.Count(out, "   "+l+"\n"); n != 1 {
			t.Errorf("%q printed %d times, want once:\n%s\nstderr:\n%s", l, n, out, h.err)
		}
	}
	if strings.Index(out, "quick buildpack done") > strings.Index(out, "Uploading complete") {
		t.Errorf("lines out of order:\n%s", out)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if last := d.starts[len(d.starts)-1]; last != strconv.FormatInt(d.ts(0), 10) {
		t.Errorf("resumed from start_time %q, want the last line's %d (all: %v)", last, d.ts(0), d.starts)
	}
	return out
}

// A kill -9 of the server mid-staging, the staging ending while it is
// down: the restarted server answers the build STAGED while the push
// still waits to reconnect its log stream. The push reconnects at once
// and prints every staging line once, up to the newest the log store
// holds, before it goes on.
func TestPush_stagingOutputIsCompleteWhenTheBuildEndsBeforeTheStreamIsBack(t *testing.T) {
	d := &stopStream{cut: true}
	// The push would wait this long before it tries again.
	pushAcrossAStop(t, d, time.Hour, func(w http.ResponseWriter, r *http.Request) bool {
		if !d.comeBack(r) {
			return true
		}
		d.f.writeJSON(w, 200, d.f.buildJSON("STAGED"))
		return true
	})
}

// A server that stops (a plain stop, --keep-apps-on-stop, or a proxy
// cutting an idle stream) ends the log stream cleanly while the staging
// goes on: the push reconnects and prints the rest of the staging's
// output, each line once, as it comes.
func TestPush_stagingStreamEndedCleanlyMidStagingIsResumed(t *testing.T) {
	d := &stopStream{}
	pushAcrossAStop(t, d, time.Millisecond, func(w http.ResponseWriter, r *http.Request) bool {
		if !d.comeBack(r) {
			return true
		}
		// The build ends only once the stream is back and has sent
		// every line: the push must have followed them live.
		for deadline := time.Now().Add(10 * time.Second); ; {
			d.mu.Lock()
			conns := d.conns
			d.mu.Unlock()
			if conns >= 2 || time.Now().After(deadline) {
				break
			}
			select {
			case <-time.After(time.Millisecond):
			case <-r.Context().Done():
				return true
			}
		}
		d.f.writeJSON(w, 200, d.f.buildJSON("STAGED"))
		return true
	})
}

// Once the staging has ended, the push asks the log store for the newest
// staging line and prints every line up to it. Pando's store answers with
// that one line (source_types, limit 1); log-cache ignores source_types,
// and its newest line is then an app's: the push reads the newest 1000
// to find the staging's. The staging's last line reaches the stream only
// well after that read, the stream quiet meanwhile for longer than
// drainIdle: a push that did not know which line to wait for would stop
// before it.
func TestPush_waitsForTheNewestStagingLineTheStoreNames(t *testing.T) {
	for _, c := range []struct {
		name            string
		readSourceTypes bool
		wantLimits      []string
	}{
		{"pando", true, []string{"1"}},
		{"log-cache", false, []string{"1", "1000"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeCF(t)
			f.readSourceTypes = c.readSourceTypes
			f.stgLines = []string{"-----> Staticfile Buildpack", "-----> Copying project files"}
			f.lastLine = "Uploading complete"
			f.envelopes = append(f.stagingEnvelopes(), fakeEnvelope{ts: stgT0 + 100, sourceType: "APP/PROC/WEB", instance: "0", typ: "OUT", payload: "an app line"})
			f.stats = [][]statEntry{{{state: "RUNNING"}}}
			gate := make(chan struct{})
			var once sync.Once
			f.lastLineGate = gate
			var reads []url.Values
			var mu sync.Mutex
			f.extra = func(w http.ResponseWriter, r *http.Request) bool {
				if r.URL.Path != "/api/v1/read/"+appGUID || !r.URL.Query().Has("source_types") {
					return false // not the follower's (the start's progress reads all types)
				}
				mu.Lock()
				reads = append(reads, r.URL.Query())
				mu.Unlock()
				f.serveRead(w, r)
				// The last line comes well after the stream fell quiet
				// for drainIdle (a push must wait for it whatever the
				// delay).
				once.Do(func() { time.AfterFunc(100*time.Millisecond, func() { close(gate) }) })
				return true
			}
			h := newHarness(t)
			h.loggedIn(f, time.Hour)
			h.env.drainIdle, h.env.drainMax = time.Millisecond, time.Millisecond
			app := t.TempDir()
			writeFiles(t, app, map[string]string{"index.html": "hi"})
			if err := h.run("push", "myapp", "-p", app); err != nil {
				t.Fatalf("push: %v\nstdout: %s\nstderr: %s", err, h.out, h.err)
			}
			out := h.out.String()
			for _, l := range append(f.stgLines, f.lastLine) {
				if n := strings.Count(out, "   "+l+"\n"); n != 1 {
					t.Errorf("%q printed %d times, want once:\n%s\nstderr:\n%s", l, n, out, h.err)
				}
			}
			if strings.Contains(out, "an app line") || strings.Contains(h.err.String(), "did not catch up") {
				t.Errorf("stdout:\n%s\nstderr:\n%s", out, h.err)
			}
			mu.Lock()
			defer mu.Unlock()
			var limits []string
			for _, q := range reads {
				if q.Get("descending") != "true" || q.Get("source_types") != "STG" || q.Get("start_time") != "-1" {
					t.Errorf("read %v: want the newest STG lines", q)
				}
				limits = append(limits, q.Get("limit"))
			}
			if fmt.Sprint(limits) != fmt.Sprint(c.wantLimits) {
				t.Errorf("read limits %v, want %v", limits, c.wantLimits)
			}
		})
	}
}
