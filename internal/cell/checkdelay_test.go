package cell

import (
	"testing"
	"time"
)

// checkTimes are the startup health checks' times, from the first (at 0)
// until until, with the given interval.
func checkTimes(until, interval time.Duration) []time.Duration {
	var at []time.Duration
	t, delay := time.Duration(0), min(firstCheckDelay, interval)
	for t <= until {
		at = append(at, t)
		t += delay
		delay = nextCheckDelay(delay, t, interval)
	}
	return at
}

func TestNextCheckDelay_anAppThatBindsIsSeenSoonAfter(t *testing.T) {
	times := checkTimes(20*time.Second, DefaultHealthCheckInterval)
	for _, c := range []struct {
		bind, within time.Duration
	}{
		{bind: 12 * time.Millisecond, within: 10 * time.Millisecond},
		{bind: 60 * time.Millisecond, within: 25 * time.Millisecond},
		{bind: 90 * time.Millisecond, within: 25 * time.Millisecond},
		{bind: 150 * time.Millisecond, within: 30 * time.Millisecond},
		{bind: 700 * time.Millisecond, within: 80 * time.Millisecond},
		{bind: 2 * time.Second, within: 140 * time.Millisecond},
		{bind: 10 * time.Second, within: fastCheckCap},
	} {
		var seen time.Duration
		for _, at := range times {
			if at >= c.bind {
				seen = at
				break
			}
		}
		if late := seen - c.bind; late > c.within {
			t.Errorf("an app bound at %v is seen at %v: %v late, want at most %v", c.bind, seen, late, c.within)
		}
	}
}

func TestNextCheckDelay_boundsTheChecksAndSlowsToTheInterval(t *testing.T) {
	if n := len(checkTimes(4*time.Second, DefaultHealthCheckInterval)); n > 50 {
		t.Errorf("%d startup checks in the first 4 s, want at most 50", n)
	}
	if d := nextCheckDelay(fastCheckCap, fastCheckFor, DefaultHealthCheckInterval); d != DefaultHealthCheckInterval {
		t.Errorf("gap after %v = %v, want the interval %v", fastCheckFor, d, DefaultHealthCheckInterval)
	}
	// A short interval bounds every gap.
	if d := nextCheckDelay(15*time.Millisecond, time.Second, 20*time.Millisecond); d != 20*time.Millisecond {
		t.Errorf("gap with a 20 ms interval = %v, want 20ms", d)
	}
}
