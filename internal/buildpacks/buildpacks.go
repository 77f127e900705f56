// Package buildpacks holds Pando's builtin offline buildpacks (CF v2 buildpack
// API, bash scripts embedded in the binary): staticfile_buildpack (served by
// `pando static-serve`), java_buildpack (executable jars on the stack's
// java, the JVM sized from MEMORY_LIMIT at start), nodejs_buildpack (runs on the stack's node and npm,
// or yarn for a yarn.lock; they install against caches kept between stagings),
// go_buildpack (builds with the stack's Go, offline; vendored dependencies
// only) and binary_buildpack. The API installs them as admin buildpacks from
// the zips Builtin() returns.
//
// python_buildpack runs apps in a relocatable virtualenv on the stack's
// python3 (helpers in lib/pytool.py), ruby_buildpack bundles gems into the
// droplet on the stack's ruby, with the stack's gems visible behind them.
// Both install vendored packages offline (vendor/, vendor/cache) and keep
// pip's and bundler's caches in the app's build cache; python also keeps a
// fresh venv there, copied by later installs instead of running ensurepip.
//
// Go staging speed: a cold `go build` of a net/http app compiles the standard
// library (~30 s on 2 cores); the go_buildpack keeps GOCACHE in the app's
// build cache, and when that is empty it copies a cell-wide seed from the
// directory in PANDO_GO_CACHE_SEED (set by the cell, mounted read-only). A
// seed must match the buildpack's flags: build it with
// `GOCACHE=DIR CGO_ENABLED=0 go build std` (no -trimpath).
package buildpacks

import (
	"archive/zip"
	"embed"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"
)

//go:embed staticfile_buildpack java_buildpack ruby_buildpack nodejs_buildpack go_buildpack python_buildpack binary_buildpack
var files embed.FS

// Buildpack is one embedded buildpack. (The type cannot also be called
// Builtin: that is the function returning them.)
type Buildpack struct {
	Name     string // CF's name, usable with push -b
	Position int    // detect order among the builtins, from 1
	Version  string // from its VERSION file
	// Zip writes the buildpack as a zip (bin/* mode 0755, other files 0644),
	// byte-identical on every call so its checksum is stable.
	Zip func(w io.Writer) error
}

// names in position order: Cloud Foundry's default detection order
// (staticfile, java, ruby, dotnet-core, nodejs, go, python, php, binary) restricted to the
// builtins Pando has. Seeding inserts a new builtin at its position, so an
// existing installation gets it in the same relative place.
var names = [...]string{"staticfile_buildpack", "java_buildpack", "ruby_buildpack", "nodejs_buildpack", "go_buildpack", "python_buildpack", "binary_buildpack"}

// zipTime is the fixed modification time of zip entries (deterministic zips).
var zipTime = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// Builtin returns the builtin buildpacks in position order.
func Builtin() []Buildpack {
	out := make([]Buildpack, 0, len(names))
	for i, name := range names {
		sub, err := fs.Sub(files, name)
		if err != nil {
			panic(fmt.Sprintf("buildpacks: embedded %s missing: %v", name, err)) // a build defect
		}
		v, _ := fs.ReadFile(sub, "VERSION")
		out = append(out, Buildpack{
			Name:     name,
			Position: i + 1,
			Version:  strings.TrimSpace(string(v)),
			Zip:      func(w io.Writer) error { return writeZip(w, sub) },
		})
	}
	return out
}

func writeZip(w io.Writer, fsys fs.FS) error {
	zw := zip.NewWriter(w)
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "." {
			return err
		}
		hdr := &zip.FileHeader{Name: p, Method: zip.Deflate, Modified: zipTime}
		switch {
		case d.IsDir():
			hdr.Name += "/"
			hdr.Method = zip.Store
			hdr.SetMode(fs.ModeDir | 0o755)
		case path.Dir(p) == "bin":
			hdr.SetMode(0o755)
		default:
			hdr.SetMode(0o644)
		}
		fw, err := zw.CreateHeader(hdr)
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		_, err = fw.Write(b)
		return err
	})
	if err != nil {
		return fmt.Errorf("zip buildpack: %w", err)
	}
	return zw.Close()
}
