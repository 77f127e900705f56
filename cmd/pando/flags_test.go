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

func TestMegabytes(t *testing.T) {
	for in, want := range map[string]int{"512M": 512, "8G": 8192, "1T": 1 << 20, "100": 100, "2gb": 2048} {
		if got, err := megabytes("--x", in); err != nil || got != want {
			t.Errorf("%q: %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"0", "", "-1", "lots", "9999999T"} {
		if _, err := megabytes("--x", bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
