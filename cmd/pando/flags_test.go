package main

import "testing"

func TestLogRateFlag(t *testing.T) {
	for in, want := range map[string]int{"16K": 16 << 10, "4M": 4 << 20, "unlimited": -1, "-1": -1, "100": 100} {
		if got, err := logRateFlag("--x", in); err != nil || got != want {
			t.Errorf("%q: %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"0", "", "-2", "fast"} {
		if _, err := logRateFlag("--x", bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
