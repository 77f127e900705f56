package main

import (
	"testing"
	"time"
)

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

func TestPresenceTTLFlag(t *testing.T) {
	for _, ok := range []time.Duration{time.Second, 6 * time.Second, 10 * time.Minute} {
		if err := presenceTTLFlag(ok); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
	for _, bad := range []time.Duration{0, 500 * time.Millisecond, -time.Second, 11 * time.Minute} {
		if err := presenceTTLFlag(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestHostAddrFlag(t *testing.T) {
	for in, want := range map[string]string{"127.0.0.1": "127.0.0.1", "10.0.0.5": "10.0.0.5", "::ffff:10.0.0.5": "10.0.0.5", "fd00::1": "fd00::1"} {
		if got, err := hostAddrFlag("--x", in); err != nil || got != want {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0.0.0.0", "::", "example.com", "10.0.0.5:80", "224.0.0.1", "fe80::1%eth0"} {
		if _, err := hostAddrFlag("--x", bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
