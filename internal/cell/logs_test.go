package cell

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// logCapture records what a container's writers emit, with a clock the
// test moves.
type logCapture struct {
	mu     sync.Mutex
	lines  []string // "OUT text" / "ERR text"
	now    time.Time
	slept  time.Duration
	stdout *lineWriter
	stderr *lineWriter
}

func newLogCapture(lim logLimits) *logCapture {
	c := &logCapture{now: time.Unix(1000, 0)}
	c.stdout, c.stderr = outputWriters(lim, func(typ, line string) {
		c.mu.Lock()
		c.lines = append(c.lines, typ+" "+line)
		c.mu.Unlock()
	})
	l := c.stdout.lim
	l.now = func() time.Time {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.now
	}
	l.sleep = func(d time.Duration) { c.slept += d; c.advance(d) }
	return c
}

// advance moves the clock (the limiter's timer may read it meanwhile).
func (c *logCapture) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *logCapture) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.lines
	c.lines = nil
	return out
}

func TestLineWriter_splitsLinesAndFlushesTail(t *testing.T) {
	c := newLogCapture(logLimits{Rate: -1, Who: "app instance"})
	c.stdout.Write([]byte("one\ntw"))
	c.stdout.Write([]byte("o\r\nthree"))
	c.stderr.Write([]byte("oops\n"))
	c.stdout.Flush()
	c.stdout.Flush()
	if got := strings.Join(c.take(), "|"); got != "OUT one|OUT two|ERR oops|OUT three" {
		t.Fatalf("lines %q", got)
	}
	c.stdout.Write([]byte(strings.Repeat("x", maxLineBytes+10)))
	c.stdout.Flush()
	got := c.take()
	if len(got) != 2 || len(got[0]) != len("OUT ")+maxLineBytes || got[1] != "OUT xxxxxxxxxx" {
		t.Fatalf("long line split into %d parts", len(got))
	}
}

func TestLogLimiter_dropsPastTheLimitAndCountsWhatItDropped(t *testing.T) {
	c := newLogCapture(logLimits{Rate: 10, Who: "app instance"})
	// 10 bytes of budget: "abcd", "efgh" fit (8), "ijk" does not, and
	// the rest of the read is dropped without being split: 3 more lines,
	// one of them unterminated and finished by the next write.
	c.stdout.Write([]byte("abcd\nefgh\nijk\nl\nm\nn"))
	c.stdout.Write([]byte("nn\n"))
	want := []string{"OUT abcd", "OUT efgh", "OUT app instance exceeded log rate limit (10 bytes/sec)"}
	if got := c.take(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q, want %q", got, want)
	}
	if n := c.stdout.lim.Dropped(); n != 4 {
		t.Fatalf("dropped %d lines, want 4", n)
	}

	// Still flooding half a second later: 5 bytes refilled, a 2-byte line
	// passes, a 6-byte one is dropped; no second notice yet.
	c.advance(500 * time.Millisecond)
	c.stderr.Write([]byte("xy\nzzzzzz\n"))
	if got := strings.Join(c.take(), "|"); got != "ERR xy" {
		t.Fatalf("got %q", got)
	}

	// A second after the first notice, the count of lines dropped since.
	c.advance(600 * time.Millisecond)
	c.stdout.Write([]byte(strings.Repeat("q\n", 100)))
	got := c.take()
	if len(got) == 0 || got[0] != "OUT app instance exceeded log rate limit (10 bytes/sec): 5 log lines dropped" {
		t.Fatalf("got %q", got)
	}
	// 5 bytes were left, 6 more came in: a full bucket of 10.
	passed := len(got) - 1
	if passed != 10 {
		t.Fatalf("%d one-byte lines passed a full 10-byte bucket", passed)
	}

	// The app goes quiet: flushing tells the last count.
	c.stdout.Flush()
	c.stderr.Flush()
	want = []string{fmt.Sprintf("OUT app instance exceeded log rate limit (10 bytes/sec): %d log lines dropped", 100-passed)}
	if got := c.take(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q, want %q", got, want)
	}
	if n := c.stdout.lim.Dropped(); n != 4+1+100-passed {
		t.Fatalf("dropped %d lines in all", n)
	}

	// A quiet second ends the flood: the next one is announced again.
	c.advance(1100 * time.Millisecond)
	c.stdout.Write([]byte("ok\n"))
	c.advance(1100 * time.Millisecond)
	c.stdout.Write([]byte("ok\n" + strings.Repeat("long line\n", 2)))
	want = []string{"OUT ok", "OUT ok", "OUT app instance exceeded log rate limit (10 bytes/sec)"}
	if got := c.take(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestLogLimiter_limits(t *testing.T) {
	flood := strings.Repeat("0123456789\n", 1000)
	for _, tc := range []struct {
		name   string
		lim    logLimits
		passed int
		notice string
	}{
		{"zero allows no logs", logLimits{Rate: 0, Who: "app instance"}, 0,
			"app instance exceeded log rate limit (0 bytes/sec)"},
		{"unlimited passes everything", logLimits{Rate: -1, Who: "app instance"}, 1000, ""},
		{"the cell's ceiling holds for unlimited processes", logLimits{Rate: -1, Ceiling: 740, Who: "app instance"}, 10,
			"app instance exceeded the platform's log rate limit (740 bytes/sec)"},
		{"staging", logLimits{Rate: 100, Ceiling: 1 << 20, Who: "staging"}, 10,
			"staging exceeded log rate limit (100 bytes/sec)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newLogCapture(tc.lim)
			c.stdout.Write([]byte(flood))
			c.stdout.Flush()
			got := c.take()
			passed := 0
			var notices []string
			for _, l := range got {
				if l == "OUT 0123456789" {
					passed++
				} else {
					notices = append(notices, l)
				}
			}
			if passed != tc.passed {
				t.Errorf("%d lines passed, want %d", passed, tc.passed)
			}
			if tc.notice == "" {
				if len(notices) > 0 {
					t.Errorf("notices %q", notices)
				}
				return
			}
			want := []string{"OUT " + tc.notice, fmt.Sprintf("OUT %s: %d log lines dropped", tc.notice, 1000-tc.passed)}
			if strings.Join(notices, "|") != strings.Join(want, "|") {
				t.Errorf("notices %q, want %q", notices, want)
			}
		})
	}
}

func TestLogLimiter_pacesReadsPastTheDrainRate(t *testing.T) {
	c := newLogCapture(logLimits{Rate: 0, Drain: 1000, Who: "app instance"})
	// 50 ms of slack are free; 2000 bytes at 1000 B/s take 2 s.
	c.stdout.Write(make([]byte, 1000))
	c.stderr.Write(make([]byte, 1000))
	if want := 2*time.Second - drainSlack; c.slept != want {
		t.Fatalf("slept %s, want %s", c.slept, want)
	}
	c.advance(time.Hour)
	c.slept = 0
	c.stdout.Write(make([]byte, 40))
	if c.slept != 0 {
		t.Fatalf("slept %s under the rate", c.slept)
	}
}

// BenchmarkLineWriter measures the cell's output path per MB of `yes`-like
// output: past the limit (dropped and counted, the flood case) and
// unlimited (every line split and emitted).
func BenchmarkLineWriter(b *testing.B) {
	chunk := bytes.Repeat([]byte("y\n"), 16<<10) // 32 KiB, the size of one pipe read
	for _, bc := range []struct {
		name string
		lim  logLimits
	}{
		{"flood-past-16KiB-limit", logLimits{Rate: 16 << 10, Ceiling: DefaultLogRateCeiling, Who: "app instance"}},
		{"unlimited", logLimits{Rate: -1, Who: "app instance"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var emitted int
			stdout, _ := outputWriters(bc.lim, func(typ, line string) { emitted++ })
			b.SetBytes(int64(len(chunk)))
			for b.Loop() {
				stdout.Write(chunk)
			}
			stdout.Flush()
		})
	}
}

// An app that floods and then goes quiet (but keeps running) still gets
// the count, from the limiter's timer.
func TestLogLimiter_tellsTheCountWhenTheAppGoesQuiet(t *testing.T) {
	notices := make(chan string, 4)
	stdout, _ := outputWriters(logLimits{Rate: 1, Who: "app instance"}, func(typ, line string) {
		if strings.Contains(line, "exceeded") {
			notices <- line
		}
	})
	stdout.Write([]byte("aa\nbb\ncc\n"))
	for _, want := range []string{
		"app instance exceeded log rate limit (1 bytes/sec)",
		"app instance exceeded log rate limit (1 bytes/sec): 3 log lines dropped",
	} {
		select {
		case got := <-notices:
			if got != want {
				t.Fatalf("notice %q, want %q", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no notice %q within 5s", want)
		}
	}
	stdout.Flush()
}

func TestLogLimiter_rateIsTheBytesEmittedPerSecondSinceTheLastReading(t *testing.T) {
	c := newLogCapture(logLimits{Rate: 100, Who: "app instance"})
	c.stdout.lim.rateAt = c.now
	c.stdout.Write([]byte(strings.Repeat("a", 39) + "\n"))
	c.stderr.Write([]byte(strings.Repeat("b", 59) + "\n"))
	// Past the 100 bytes/s limit: dropped, so not counted.
	c.stdout.Write([]byte(strings.Repeat("c", 50) + "\n"))
	c.advance(2 * time.Second)
	if got := c.stdout.lim.rate(); got != 49 {
		t.Errorf("rate = %d B/s, want 49 (98 bytes emitted in 2 s)", got)
	}
	c.advance(time.Second)
	if got := c.stdout.lim.rate(); got != 0 {
		t.Errorf("rate after a quiet second = %d, want 0", got)
	}
}
