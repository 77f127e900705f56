package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/pandoplatform/pando/internal/cli/api"
)

// droppingStream serves an app's log stream that goes away like a server
// killed with -9: the first connection sends lines and is cut, the next
// attempts fail (the server is starting), then a connection resends the
// line at the resume point along with a new one and stays open.
type droppingStream struct {
	t        *testing.T
	mu       sync.Mutex
	attempts int
	starts   []string // start_time of each connection
	resumed  chan struct{}
}

const streamT0 = int64(1795663555979653120)

func (d *droppingStream) serve(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.Path != "/pando/v1/logs/"+appGUID+"/stream" {
		return false
	}
	d.mu.Lock()
	d.attempts++
	n := d.attempts
	d.starts = append(d.starts, r.URL.Query().Get("start_time"))
	d.mu.Unlock()
	send := func(ts int64, line string) {
		ev, _ := json.Marshal(map[string]any{"timestamp": ts, "source_type": "APP/PROC/WEB", "instance_id": "0", "type": "OUT", "payload": line})
		fmt.Fprintf(w, "data: %s\n\n", ev)
		w.(http.Flusher).Flush()
	}
	switch n {
	case 1:
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		send(streamT0, "one")
		send(streamT0+1, "two")
		send(streamT0+2, "three")
		// The process dies: the connection is cut mid-stream.
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			d.t.Errorf("hijack: %v", err)
			return true
		}
		conn.Close()
	case 2, 3:
		http.Error(w, "starting", http.StatusBadGateway)
	default:
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		// The resume point is sent again (start_time is inclusive).
		send(streamT0+2, "three")
		send(streamT0+2, "three and a half")
		send(streamT0+3, "four")
		if n == 4 {
			close(d.resumed)
		}
		<-r.Context().Done()
	}
	return true
}

func TestLogs_resumesAfterTheServerRestartsWithoutRepeatingLines(t *testing.T) {
	f := newFakeCF(t)
	f.mu.Lock()
	f.appExists = true
	d := &droppingStream{t: t, resumed: make(chan struct{})}
	f.extra = d.serve
	f.mu.Unlock()
	h := newHarness(t)
	h.env.reconnectMin, h.env.reconnectMax = time.Millisecond, 5*time.Millisecond
	h.loggedIn(f, time.Hour)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		root := &cobra.Command{Use: "pando", SilenceUsage: true, SilenceErrors: true}
		root.AddCommand(h.env.logsCmd())
		root.SetArgs([]string{"logs", "myapp"})
		root.SetOut(h.out)
		root.SetErr(h.err)
		done <- root.ExecuteContext(ctx)
	}()
	select {
	case <-d.resumed:
	case err := <-done:
		t.Fatalf("pando logs ended (%v) instead of reconnecting\nstdout: %s\nstderr: %s", err, h.out, h.err)
	case <-ctx.Done():
		t.Fatalf("never reconnected\nstderr: %s", h.err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(h.out.String(), "OUT four") && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("pando logs: %v", err)
	}

	out := h.out.String()
	for _, line := range []string{"OUT one", "OUT two", "OUT three\n", "OUT three and a half", "OUT four"} {
		if n := strings.Count(out, line); n != 1 {
			t.Errorf("%q printed %d times, want once:\n%s", line, n, out)
		}
	}
	if strings.Index(out, "OUT two") > strings.Index(out, "OUT four") {
		t.Errorf("lines out of order:\n%s", out)
	}
	stderr := h.err.String()
	if n := strings.Count(stderr, "reconnecting..."); n != 1 {
		t.Errorf("said reconnecting %d times, want once per outage:\n%s", n, stderr)
	}
	if n := strings.Count(stderr, "Reconnected."); n != 1 {
		t.Errorf("said reconnected %d times:\n%s", n, stderr)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if want := strconv.FormatInt(streamT0+2, 10); d.starts[len(d.starts)-1] != want {
		t.Errorf("resumed from start_time %q, want the last line's %s (all: %v)", d.starts[len(d.starts)-1], want, d.starts)
	}
}

// The staging output's stream (pando push) resumes the same way.
func TestFollow_stagingStreamResumesAfterTheServerRestarts(t *testing.T) {
	f := newFakeCF(t)
	f.mu.Lock()
	d := &droppingStream{t: t, resumed: make(chan struct{})}
	f.extra = d.serve
	f.mu.Unlock()
	h := newHarness(t)
	h.env.reconnectMin, h.env.reconnectMax = time.Millisecond, 5*time.Millisecond
	h.env.drainIdle = 10 * time.Millisecond // the stream stays open
	h.loggedIn(f, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := h.env.newSession(ctx, true)
	if err != nil {
		t.Fatal(err)
	}

	fl := s.follow(ctx, &api.App{GUID: appGUID, Name: "myapp"}, nil, nil)
	var got []string
	for len(got) < 5 {
		select {
		case l := <-fl.lines:
			got = append(got, l.Payload)
		case err := <-fl.done:
			t.Fatalf("the stream ended (%v) after %q", err, got)
		case <-ctx.Done():
			t.Fatalf("lines %q", got)
		}
	}
	var printed []string
	fl.drain(ctx, func(l api.LogLine) { printed = append(printed, l.Payload) })
	got = append(got, printed...)
	if want := []string{"one", "two", "three", "three and a half", "four"}; !slices.Equal(got, want) {
		t.Errorf("lines %q, want %q", got, want)
	}
	if n := strings.Count(h.err.String(), "reconnecting..."); n != 1 {
		t.Errorf("said reconnecting %d times:\n%s", n, h.err)
	}
}
