package main

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/pandoplatform/pando/internal/server"
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

// The flags pando server and pando api share are read the same way: a
// bad value is refused, naming its flag, before anything starts.
func TestPlatformFlags_readOrRefuseWhatServerAndAPIShare(t *testing.T) {
	parse := func(args ...string) (server.Config, error) {
		var cfg server.Config
		var pf platformFlags
		cmd := &cobra.Command{Use: "x"}
		pf.add(cmd, &cfg)
		if err := cmd.ParseFlags(args); err != nil {
			return cfg, err
		}
		return cfg, pf.apply(&cfg)
	}
	cfg, err := parse("--trusted-proxy", "10.0.0.0/8,192.0.2.1", "--default-log-rate-limit", "1M", "--api-addr", "127.0.0.1:1")
	if err != nil || len(cfg.TrustedProxies) != 2 || cfg.DefaultLogRateLimit != 1<<20 || cfg.APIAddr != "127.0.0.1:1" || cfg.Logger == nil {
		t.Fatalf("good flags: %+v, %v", cfg, err)
	}
	if cfg.SyslogDrainLimits.MaxDrainsPerSpace != 50 || cfg.MaxServiceInstancesPerOrg != 1000 {
		t.Errorf("default tenant limits: %+v, %d service instances", cfg.SyslogDrainLimits, cfg.MaxServiceInstancesPerOrg)
	}
	if cfg, err := parse("--blobstore", "s3://pando-blobs/prod?endpoint=minio.lan:9000"); err != nil || cfg.Blobstore != "s3://pando-blobs/prod?endpoint=minio.lan:9000" {
		t.Errorf("--blobstore: %q, %v", cfg.Blobstore, err)
	}
	if _, err := parse("--blobstore", "s3://AKIA:hunter2@pando-blobs"); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("--blobstore with credentials: %v, want refused without repeating the secret", err)
	}
	if cfg, err := parse("--syslog-drain-max-per-org", "-1"); err != nil || cfg.SyslogDrainLimits.MaxDrainsPerOrg != -1 {
		t.Errorf("--syslog-drain-max-per-org -1 (no limit): %+v, %v", cfg.SyslogDrainLimits, err)
	}
	for flag, bad := range map[string]string{"--trusted-proxy": "nope", "--default-log-rate-limit": "0", "--log-level": "loud",
		"--syslog-drain-max": "0", "--syslog-drain-max-per-org": "-2", "--syslog-drain-max-per-space": "0", "--max-service-instances-per-org": "-5",
		"--blobstore": "s3://b"} {
		if _, err := parse(flag, bad); err == nil || !strings.Contains(err.Error(), flag) {
			t.Errorf("%s %s: %v, want an error naming the flag", flag, bad, err)
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

func TestSyncIntervalFlag(t *testing.T) {
	for _, ok := range []time.Duration{5 * time.Second, 30 * time.Second, 10 * time.Minute} {
		if err := syncIntervalFlag("--sync-interval", ok); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
	for _, bad := range []time.Duration{0, time.Second, -time.Second, 11 * time.Minute} {
		if err := syncIntervalFlag("--sync-interval", bad); err == nil || !strings.Contains(err.Error(), "--sync-interval") {
			t.Errorf("%s: %v, want an error naming the flag", bad, err)
		}
	}
}
