package buildpacks

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// goSeedProgram imports the standard-library packages web apps commonly
// use, so compiling it fills a build cache with their compiled forms.
const goSeedProgram = `package main

import (
	_ "bufio"
	_ "context"
	_ "crypto/sha256"
	_ "crypto/tls"
	_ "database/sql"
	_ "embed"
	_ "encoding/base64"
	_ "encoding/json"
	_ "errors"
	_ "flag"
	_ "fmt"
	_ "html/template"
	_ "io"
	_ "log"
	_ "log/slog"
	_ "net/http"
	_ "net/http/httputil"
	_ "os"
	_ "os/signal"
	_ "path/filepath"
	_ "sort"
	_ "strconv"
	_ "strings"
	_ "sync"
	_ "syscall"
	_ "text/template"
	_ "time"
)

func main() {}
`

// GoCacheReadyFile marks a finished Go cache seed.
const GoCacheReadyFile = ".pando-ready"

// GoCacheReady reports whether dir holds a finished seed.
func GoCacheReady(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, GoCacheReadyFile))
	return err == nil
}

// WarmGoCache builds the cell-wide Go build cache seed in dir, unless it is
// already there: it compiles a program importing the usual standard-library
// packages with the go buildpack's settings (CGO off, no VCS stamping, no
// network), so a new app's first staging copies the compiled standard
// library instead of compiling it (seconds instead of ~30 s on 2 cores).
// The seed is built beside dir and renamed into place, so a half-built seed
// is never offered. goBin is the host's go; empty looks it up.
func WarmGoCache(ctx context.Context, dir, goBin string) error {
	if GoCacheReady(dir) {
		return nil
	}
	if goBin == "" {
		for _, p := range []string{"/usr/local/go/bin/go", "/usr/lib/go/bin/go"} {
			if _, err := os.Stat(p); err == nil {
				goBin = p
				break
			}
		}
		if goBin == "" {
			p, err := exec.LookPath("go")
			if err != nil {
				return errors.New("no Go toolchain on this host: the go buildpack's first staging of each app compiles the standard library")
			}
			goBin = p
		}
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("warm go cache: %w", err)
	}
	work, err := os.MkdirTemp(parent, ".go-seed-")
	if err != nil {
		return fmt.Errorf("warm go cache: %w", err)
	}
	defer os.RemoveAll(work)
	src := filepath.Join(work, "src")
	cache := filepath.Join(work, "cache")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return fmt.Errorf("warm go cache: %w", err)
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module pandoseed\n\ngo 1.21\n"), 0o644); err != nil {
		return fmt.Errorf("warm go cache: %w", err)
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(goSeedProgram), 0o644); err != nil {
		return fmt.Errorf("warm go cache: %w", err)
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", filepath.Join(work, "seed"), ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(),
		"GOCACHE="+cache, "GOPATH="+filepath.Join(work, "gopath"), "GOMODCACHE="+filepath.Join(work, "gomod"),
		"CGO_ENABLED=0", "GOTOOLCHAIN=local", "GOENV=off", "GOPROXY=off", "GOFLAGS=-buildvcs=false",
	)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("warm go cache: go build: %w: %s", err, out)
	}
	// Readable by the vcap user that copies it during staging.
	if err := filepath.Walk(cache, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if fi.IsDir() {
			mode = 0o755
		}
		return os.Chmod(p, mode)
	}); err != nil {
		return fmt.Errorf("warm go cache: %w", err)
	}
	if err := os.WriteFile(filepath.Join(cache, GoCacheReadyFile), nil, 0o644); err != nil {
		return fmt.Errorf("warm go cache: %w", err)
	}
	_ = os.RemoveAll(dir)
	if err := os.Rename(cache, dir); err != nil {
		if GoCacheReady(dir) {
			return nil // another server finished first
		}
		return fmt.Errorf("warm go cache: %w", err)
	}
	return nil
}

// HostGo is the host's go ("" for none), found without running it.
func HostGo() string {
	if _, err := os.Stat("/usr/local/go/bin/go"); err == nil {
		return "/usr/local/go/bin/go"
	}
	p, err := exec.LookPath("go")
	if err != nil {
		return ""
	}
	return p
}

// GoCacheSeedDir is where a cell keeps the seed for the host's Go version
// under cacheDir, so servers sharing a machine share one seed. It runs go
// env: cells ask it in the background, never on their way to serving.
func GoCacheSeedDir(ctx context.Context, cacheDir string) (string, error) {
	goBin := HostGo()
	if goBin == "" {
		return "", errors.New("no Go toolchain on this host")
	}
	out, err := exec.CommandContext(ctx, goBin, "env", "GOVERSION").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOVERSION: %w", err)
	}
	v := strings.TrimSpace(string(out))
	if v == "" || strings.ContainsAny(v, "/\\") {
		return "", fmt.Errorf("unexpected go version %q", v)
	}
	return filepath.Join(cacheDir, "go-build-seed", v), nil
}

// PublishGoCacheSeed points link, the path a cell mounts into staging
// containers whatever the Go version, at dir, a ready seed (WarmGoCache;
// see publishSeed). Until the version is known a restarted cell offers
// what the link named in its last run: after a Go upgrade, entries the new
// go never uses (its cache keys name the toolchain).
func PublishGoCacheSeed(link, dir string) error {
	return publishSeed("go build cache seed", link, dir, GoCacheReady)
}
