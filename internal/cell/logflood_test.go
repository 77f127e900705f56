package cell

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/logs"
)

// floodSink stores an app's log lines in a real log store (its cost is
// part of the server's), counts them and hands over the rate limit
// notices.
type floodSink struct {
	store   *logs.Store
	lines   atomic.Int64
	notices chan string
}

func (s *floodSink) Emit(e pando.LogEnvelope) {
	s.store.Emit(e)
	if e.SourceType != pando.LogSourceApp {
		return
	}
	if bytes.Contains(e.Payload, []byte("exceeded")) {
		select {
		case s.notices <- string(e.Payload):
		default:
		}
		return
	}
	s.lines.Add(1)
}

func (s *floodSink) next(t *testing.T, d time.Duration) string {
	t.Helper()
	select {
	case n := <-s.notices:
		return n
	case <-time.After(d):
		t.Fatalf("no log rate limit notice within %s", d)
		return ""
	}
}

// processCPU is the CPU time the test process (all its threads) has used.
func processCPU(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// An app printing as fast as it can costs the server a bounded share of
// a core, and its user sees how many lines were dropped: with the
// default limit, and unlimited (where the cell's ceiling holds).
func TestLRP_logFloodCostsTheCellLittleAndTellsWhatWasDropped(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limit  int
		notice string
		// lines of "y" (1 byte) a second the limits let through
		perSecond int
	}{
		{"default limit", 16 << 10, "app instance exceeded log rate limit (16384 bytes/sec)", 16 << 10},
		{"unlimited", -1, "app instance exceeded the platform's log rate limit (4194304 bytes/sec)", DefaultLogRateCeiling / (1 + lineOverhead)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := logs.New(logs.Config{})
			t.Cleanup(store.Close)
			sink := &floodSink{store: store, notices: make(chan string, 16)}
			c := newRuncCell(t, func(cfg *Config) { cfg.Logs = sink })
			c.startApp(t, "inst-flood", pando.DesiredLRP{
				StartCommand:      "exec yes",
				HealthCheck:       pando.HealthCheck{Type: pando.HealthCheckProcess},
				LogRateLimitBytes: tc.limit,
			})
			if n := sink.next(t, 20*time.Second); n != tc.notice {
				t.Fatalf("first notice %q, want %q", n, tc.notice)
			}
			counted := regexp.MustCompile(`^` + regexp.QuoteMeta(tc.notice) + `: (\d+) log lines dropped$`)

			cpu0, lines0, t0 := processCPU(t), sink.lines.Load(), time.Now()
			var dropped int64
			const windows = 3
			for range windows {
				n := sink.next(t, 5*time.Second)
				m := counted.FindStringSubmatch(n)
				if m == nil {
					t.Fatalf("notice %q", n)
				}
				d, _ := strconv.ParseInt(m[1], 10, 64)
				dropped += d
			}
			elapsed, cpu, lines := time.Since(t0), processCPU(t)-cpu0, sink.lines.Load()-lines0

			share := cpu.Seconds() / elapsed.Seconds()
			t.Logf("%s of CPU in %s (%.1f%% of a core); %d lines passed, %d dropped", cpu, elapsed, 100*share, lines, dropped)
			switch {
			case raceDetector:
				t.Log("the CPU bound is not checked under the race detector")
			case share > 0.25:
				t.Errorf("the cell used %.0f%% of a core on one flooding app's logs", 100*share)
			}
			if max := int64(float64(tc.perSecond) * (elapsed.Seconds() + 1)); lines > max {
				t.Errorf("%d lines passed in %s, more than the limits allow (%d)", lines, elapsed, max)
			}
			if dropped < 100000 {
				t.Errorf("only %d lines reported dropped in %s of `yes`", dropped, elapsed)
			}
			if err := c.rep.StopLRP(context.Background(), "proc-inst-flood", "inst-flood"); err != nil {
				t.Fatal(err)
			}
		})
	}
}
