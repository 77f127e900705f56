package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLockDataDir_oneServerPerDataDir(t *testing.T) {
	dir := t.TempDir()
	release, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockDataDir(dir); err == nil || !strings.Contains(err.Error(), "in use by another pando process") {
		t.Fatalf("second lock: %v, want in use", err)
	}
	release()
	again, err := lockDataDir(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again()
}

func TestSweepTempDir_removesEverythingInIt(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tmp")
	for _, p := range []string{"upload-123/bits.zip", "upload-123/package.zip", ".put-456", "pando-buildpack-7.zip"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	n, err := sweepTempDir(dir)
	if err != nil || n != 3 {
		t.Fatalf("sweep = %d, %v; want 3 entries", n, err)
	}
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
		t.Fatalf("after the sweep: %v, %v", ents, err)
	}
	if n, err := sweepTempDir(filepath.Join(dir, "missing")); n != 0 || err != nil {
		t.Fatalf("sweep of a missing dir = %d, %v", n, err)
	}
}

func TestOpenDataDir_createsItsSubdirsUnderTheLock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	release, err := openDataDir(dir, "cell", "containers")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	for _, d := range []string{"cell", "containers"} {
		if fi, err := os.Stat(filepath.Join(dir, d)); err != nil || !fi.IsDir() {
			t.Errorf("%s: %v", d, err)
		}
	}
	if _, err := openDataDir(dir); err == nil || !strings.Contains(err.Error(), "in use by another pando process") {
		t.Fatalf("second open: %v, want in use", err)
	}
}
