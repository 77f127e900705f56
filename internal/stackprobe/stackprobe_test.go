package stackprobe

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/pandoplatform/pando/internal/lowprio"
)

// dpkgStatus is a package database as Debian bookworm's, cut down.
const dpkgStatus = `Package: nodejs
Status: install ok installed
Priority: optional
Version: 18.19.0+dfsg-6~deb12u2
Description: evented I/O for V8 javascript
 Node.js is a platform built on Chrome's JavaScript runtime.

Package: yarnpkg
Status: install ok installed
Version: 1.22.19+~cs24.27.18-2+deb12u1

Package: python3
Status: install ok installed
Version: 3.11.2-1+b1

Package: python3-pip
Status: deinstall ok config-files
Version: 23.0.1+dfsg-1

Package: ruby3.1
Status: install ok installed
Version: 3.1.2-7+deb12u1

Package: ruby
Status: install ok installed
Version: 1:3.1

Package: ruby-bundler
Status: install ok installed
Version: 2.3.15-2

Package: openjdk-11-jre-headless
Status: install ok installed
Version: 11.0.20+8-1~deb12u1

Package: openjdk-17-jre-headless
Status: install ok installed
Version: 17.0.15+6-1~deb12u1

Package: bash
Status: install ok installed
Version: 5.2.15-2+b7
`

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func TestRootFS_readsThePackageDatabaseAndVersionFiles(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "var/lib/dpkg/status"), dpkgStatus, 0o644)
	// npm bundled with node, as NodeSource's is; Go from go.dev.
	writeFile(t, filepath.Join(root, "usr/lib/node_modules/npm/package.json"), `{"name": "npm", "version": "9.2.0"}`, 0o644)
	writeFile(t, filepath.Join(root, "usr/local/go/VERSION"), "go1.22.5\ntime 2024-06-27T20:11:12Z\n", 0o644)
	// A binary in the rootfs is never run.
	writeFile(t, filepath.Join(root, "usr/bin/node"), "#!/bin/sh\ntouch "+filepath.Join(root, "ran")+"\n", 0o755)

	got, err := RootFS(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []Runtime{{"node", "18.19.0"}, {"npm", "9.2.0"}, {"yarn", "1.22.19"}, {"python3", "3.11.2"}, {"ruby", "3.1.2"}, {"bundler", "2.3.15"}, {"java", "17.0.15"}, {"go", "1.22.5"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("RootFS = %v\nwant     %v", got, want)
	}
	if _, err := os.Stat(filepath.Join(root, "ran")); err == nil {
		t.Fatal("probing ran the rootfs's node")
	}

	// Not a Debian rootfs: no runtimes, no error.
	if got, err := RootFS(t.TempDir()); err != nil || len(got) != 0 {
		t.Fatalf("empty rootfs: %v %v", got, err)
	}
}

func TestUpstream_ofDebianVersions(t *testing.T) {
	for in, want := range map[string]string{
		"18.19.0+dfsg-6~deb12u2": "18.19.0", "1:3.1": "3.1", "2:1.19~1": "1.19", "20.11.1-1nodesource1": "20.11.1",
		"17.0.15+6-1~deb12u1": "17.0.15", "9.2.0~ds1-1": "9.2.0", "garbage": "",
	} {
		if got := upstream(in); got != want {
			t.Errorf("upstream(%q) = %q, want %q", in, got, want)
		}
	}
}

// fakeHost is a PATH dir of scripts posing as runtimes; it and its parent
// are readable by all, since as root the probes run as nobody.
func fakeHost(t *testing.T, scripts map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range scripts {
		writeFile(t, filepath.Join(dir, name), "#!/bin/sh\n"+body+"\n", 0o755)
	}
	return dir
}

func TestHost_asksEachRuntimeForItsVersion(t *testing.T) {
	bin := fakeHost(t, map[string]string{
		"node":    "echo v20.1.2",
		"yarnpkg": `[ "$NODE_PATH" = /usr/share/nodejs ] && echo 1.22.19`, // Debian's name, its modules found
		"java":    `echo 'openjdk version "17.0.9" 2023-10-17' >&2`,
		"python3": `[ "$2" = -m ] && exit 1; echo "Python 3.11.2"`, // no pip
		"ruby":    "exec sleep 30",                                 // hangs
		"bundle":  `[ "$HOME" = /nonexistent ] && echo "Bundler version 2.3.15"`,
	})
	writeFile(t, filepath.Join(bin, "go"), "#!/bin/sh\necho go version go1.22.5\n", 0o644) // not executable

	start := time.Now()
	got := Host(context.Background(), bin+":relative/dir", 500*time.Millisecond)
	want := []Runtime{{"node", "20.1.2"}, {"yarn", "1.22.19"}, {"python3", "3.11.2"}, {"bundler", "2.3.15"}, {"java", "17.0.9"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Host = %v\nwant   %v", got, want)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("a hanging runtime held the probe for %v", d)
	}
}

func TestHost_runtimesRunAtTheLowestCPUPriority(t *testing.T) {
	// The fake node answers its own nice value (field 19 of its stat) as
	// its version.
	bin := fakeHost(t, map[string]string{
		"node": `read -r stat < /proc/self/stat; set -- ${stat##*) }; shift 16; echo "v$1.0"`,
	})
	got := Host(context.Background(), bin, 10*time.Second)
	want := []Runtime{{"node", strconv.Itoa(lowprio.Nice) + ".0"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Host = %v, want %v (node's nice value as its version)", got, want)
	}
}

func TestCache_keepsAnswersUntilThePackageDatabaseChangesOrTheHostsTTL(t *testing.T) {
	root := t.TempDir()
	status := filepath.Join(root, "var/lib/dpkg/status")
	writeFile(t, status, "Package: nodejs\nStatus: install ok installed\nVersion: 18.19.0-1\n", 0o644)
	bin := fakeHost(t, map[string]string{"node": "echo v20.1.2"})
	now := time.Unix(1_700_000_000, 0)
	c := &Cache{Stacks: map[string]string{"host": "", "bookworm": root}, HostPath: bin, HostTTL: time.Minute, Now: func() time.Time { return now }}
	ctx := context.Background()

	check := func(stack string, want []Runtime) {
		t.Helper()
		got, err := c.Runtimes(ctx, stack)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: %v %v, want %v", stack, got, err, want)
		}
	}
	// A probe cut short (the asker went away) is not kept.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if got, err := c.Runtimes(cancelled, "host"); err == nil {
		t.Fatalf("cancelled probe: %v, want an error", got)
	}
	check("bookworm", []Runtime{{"node", "18.19.0"}})
	check("host", []Runtime{{"node", "20.1.2"}})
	check("unknown", nil)

	// A new node on the host shows after the TTL, not before.
	writeFile(t, filepath.Join(bin, "node"), "#!/bin/sh\necho v22.10.0\n", 0o755) // another size: another identity
	check("host", []Runtime{{"node", "20.1.2"}})
	now = now.Add(2 * time.Minute)
	check("host", []Runtime{{"node", "22.10.0"}})

	// The rootfs's answer holds until its package database changes.
	writeFile(t, filepath.Join(root, "usr/local/go/VERSION"), "go1.22.5\n", 0o644)
	check("bookworm", []Runtime{{"node", "18.19.0"}})
	writeFile(t, status, "Package: nodejs\nStatus: install ok installed\nVersion: 18.20.4-1\n", 0o644)
	check("bookworm", []Runtime{{"node", "18.20.4"}, {"go", "1.22.5"}})
}
