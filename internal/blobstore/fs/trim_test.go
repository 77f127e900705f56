package fs

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestTrim_removesLeastRecentlyUsedUntilUnderTheLimit(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	old := time.Now().Add(-48 * time.Hour)
	for i, name := range []string{"a", "b", "c", "d"} {
		key := "resources/" + name
		if _, err := s.Put(ctx, key, strings.NewReader(strings.Repeat("x", 100))); err != nil {
			t.Fatal(err)
		}
		p, _ := s.Path(key)
		// a is the oldest, d the newest.
		at := old.Add(time.Duration(i) * time.Hour)
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Put(ctx, "droplets/keep", strings.NewReader(strings.Repeat("y", 1000))); err != nil {
		t.Fatal(err)
	}
	n, err := s.Trim(ctx, "resources/", 250)
	if err != nil || n != 2 {
		t.Fatalf("Trim = %d, %v; want 2 removed", n, err)
	}
	for name, want := range map[string]bool{"a": false, "b": false, "c": true, "d": true} {
		ok, err := s.Exists(ctx, "resources/"+name)
		if err != nil || ok != want {
			t.Errorf("resources/%s exists = %v (%v), want %v", name, ok, err, want)
		}
	}
	if ok, _ := s.Exists(ctx, "droplets/keep"); !ok {
		t.Error("a blob outside the prefix was trimmed")
	}
	if n, err := s.Trim(ctx, "resources/", 250); err != nil || n != 0 {
		t.Errorf("second Trim = %d, %v; want nothing to do", n, err)
	}
	if _, err := s.Trim(ctx, "../x/", 1); err == nil {
		t.Error("a prefix outside the store was accepted")
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "resources", "c")); err != nil {
		t.Error(err)
	}
}
