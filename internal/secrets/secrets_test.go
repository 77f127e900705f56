package secrets

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBox_sealsAndOpensBoundToItsPurpose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secrets.key")
	b, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != keySize {
		t.Fatalf("key file %v %v", fi, err)
	}
	s, err := b.Seal("hunter2", "package/p1/docker")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(s, "hunter2") || !strings.HasPrefix(s, "v1:") {
		t.Fatalf("sealed %q", s)
	}
	s2, _ := b.Seal("hunter2", "package/p1/docker")
	if s == s2 {
		t.Error("two seals of one secret are equal: the nonce is not random")
	}
	if got, err := b.Open(s, "package/p1/docker"); err != nil || got != "hunter2" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := b.Open(s, "package/p2/docker"); err == nil {
		t.Error("a secret sealed for p1 opened as p2's")
	}
	if _, err := b.Open("hunter2", "package/p1/docker"); err != ErrNotSealed {
		t.Errorf("plain text: %v", err)
	}
	// The same key file gives the same box after a restart.
	b2, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b2.Open(s, "package/p1/docker"); err != nil || got != "hunter2" {
		t.Fatalf("after reload: %q, %v", got, err)
	}
	if e, _ := b.Seal("", "x"); e != "" {
		t.Errorf("empty secret sealed to %q", e)
	}
}

func TestLoadOrCreate_refusesAKeyOthersCanRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secrets.key")
	if err := os.WriteFile(path, make([]byte, keySize), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("got %v", err)
	}
	if err := os.WriteFile(path, []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(path); err == nil {
		t.Fatal("a short key was accepted")
	}
}
