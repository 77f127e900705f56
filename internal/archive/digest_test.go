package archive

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// digestTree writes a small app tree into a new dir, lets change alter it,
// and returns the digest of its zip.
func digestTree(t *testing.T, change func(dir string)) string {
	t.Helper()
	dir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "lib"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "server.js"), []byte("require('./lib/a')\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "lib/a.js"), []byte("module.exports = 1\n"), 0o644))
	must(t, os.Symlink("lib/a.js", filepath.Join(dir, "a.js")))
	if change != nil {
		change(dir)
	}
	var buf bytes.Buffer
	sum, err := WriteZipDigest(context.Background(), &buf, dir, "")
	must(t, err)
	if len(sum) != 64 {
		t.Fatalf("digest %q is not a hex SHA-256", sum)
	}
	return sum
}

func TestWriteZipDigest_sameFilesSameDigestWhateverTheirTimes(t *testing.T) {
	first := digestTree(t, nil)
	later := digestTree(t, func(dir string) {
		old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
		for _, p := range []string{"server.js", "lib/a.js", "lib", "."} {
			must(t, os.Chtimes(filepath.Join(dir, p), old, old))
		}
	})
	if first != later {
		t.Errorf("digest changed with file times only: %s, then %s", first, later)
	}
}

func TestWriteZipDigest_anyChangeOfTheFilesChangesIt(t *testing.T) {
	base := digestTree(t, nil)
	changes := map[string]func(dir string){
		"content": func(dir string) {
			must(t, os.WriteFile(filepath.Join(dir, "lib/a.js"), []byte("module.exports = 2\n"), 0o644))
		},
		"mode":     func(dir string) { must(t, os.Chmod(filepath.Join(dir, "server.js"), 0o755)) },
		"dir mode": func(dir string) { must(t, os.Chmod(filepath.Join(dir, "lib"), 0o700)) },
		"name": func(dir string) {
			must(t, os.Rename(filepath.Join(dir, "server.js"), filepath.Join(dir, "app.js")))
		},
		"link target": func(dir string) {
			must(t, os.Remove(filepath.Join(dir, "a.js")))
			must(t, os.Symlink("server.js", filepath.Join(dir, "a.js")))
		},
		"new empty file": func(dir string) { must(t, os.WriteFile(filepath.Join(dir, "empty"), nil, 0o644)) },
		"new empty dir":  func(dir string) { must(t, os.Mkdir(filepath.Join(dir, "public"), 0o755)) },
		// Content moving from one file's end to the next file's start.
		"boundary": func(dir string) {
			must(t, os.WriteFile(filepath.Join(dir, "lib/a.js"), []byte("module.exports = 1\nx"), 0o644))
			must(t, os.WriteFile(filepath.Join(dir, "server.js"), []byte("equire('./lib/a')\n"), 0o644))
		},
	}
	for name, change := range changes {
		if got := digestTree(t, change); got == base {
			t.Errorf("%s: digest unchanged (%s)", name, got)
		}
	}
}
