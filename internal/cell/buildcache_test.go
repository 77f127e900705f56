package cell

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestCacheSignature_changesWithAnyWriteButNotWithReadsOrLinks(t *testing.T) {
	dir := t.TempDir()
	mods := filepath.Join(dir, "node_modules", "a")
	if err := os.MkdirAll(mods, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(mods, "index.js")
	if err := os.WriteFile(file, []byte("module.exports = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sig := func() string {
		t.Helper()
		s, err := cacheSignature(dir)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := sig()
	// What a Node.js cache hit does: hard-link the files out, read them,
	// make link targets executable (they already are or not; ctime only).
	out := t.TempDir()
	if err := os.Link(file, filepath.Join(out, "index.js")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.ReadFile(file); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(file, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := sig(); got != before {
		t.Fatalf("signature changed after only reads and links")
	}
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	changes := map[string]func(){
		"content, same size": func() {
			if err := os.WriteFile(file, []byte("module.exports = 2\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		},
		"a new file":     func() { _ = os.WriteFile(filepath.Join(dir, "node_modules.key"), []byte("k"), 0o644) },
		"a removed file": func() { _ = os.Remove(file) },
		"a mode":         func() { _ = os.Chmod(file, 0o755) },
		"a replaced file": func() {
			_ = os.Remove(file)
			_ = os.WriteFile(file, []byte("module.exports = 1\n"), 0o644)
		},
	}
	for name, change := range changes {
		// Start each from the same tree.
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(mods, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte("module.exports = 1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(file, old, old); err != nil {
			t.Fatal(err)
		}
		base := sig()
		change()
		if sig() == base {
			t.Errorf("%s: signature unchanged", name)
		}
	}
}
