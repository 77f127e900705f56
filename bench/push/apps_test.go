package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pandoplatform/pando/internal/archive"
	"github.com/pandoplatform/pando/internal/cli/api"
)

func TestWriteZip_roundTripsFilesAndModes(t *testing.T) {
	dir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "sub"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "server"), []byte("#!/bin/sh\necho hi\n"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "sub", "index.html"), []byte("<h1>x</h1>"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "Staticfile"), nil, 0o644))
	files, err := collectFiles(dir)
	must(t, err)
	if len(files) != 3 {
		t.Fatalf("collected %d files, want 3", len(files))
	}
	var buf bytes.Buffer
	must(t, writeZip(&buf, files))
	out := t.TempDir()
	must(t, archive.ExtractZip(context.Background(), bytes.NewReader(buf.Bytes()), int64(buf.Len()), out, archive.DefaultLimits()))
	fi, err := os.Stat(filepath.Join(out, "server"))
	must(t, err)
	if fi.Mode().Perm() != 0o755 {
		t.Errorf("server mode = %v, want 0755", fi.Mode().Perm())
	}
	b, err := os.ReadFile(filepath.Join(out, "sub", "index.html"))
	must(t, err)
	if string(b) != "<h1>x</h1>" {
		t.Errorf("index.html = %q", b)
	}
}

func TestManifest_carriesBuildpackAndCommand(t *testing.T) {
	b, err := manifest(&appSpec{Buildpacks: []string{"binary_buildpack"}, Command: "./server"}, "bench-x")
	must(t, err)
	for _, want := range []string{"name: bench-x", "- binary_buildpack", "command: ./server", "default-route: true"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("manifest lacks %q:\n%s", want, b)
		}
	}
}

// The floor's upload goes through the CLI's own client, so the sink must
// speak the upload endpoint the way the API does.
func TestFloorSink_acceptsTheCLIsUpload(t *testing.T) {
	s, err := startFloorSink(t.TempDir())
	must(t, err)
	defer s.close(context.Background())
	c, err := api.New(api.Config{URL: s.url()})
	must(t, err)
	body := []byte(strings.Repeat("zip bytes ", 1000))
	p, err := c.UploadPackage(context.Background(), "g1", nil, api.Upload{
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil },
		Size: int64(len(body)),
	})
	must(t, err)
	if p.GUID != "g1" || p.State != "READY" {
		t.Errorf("package = %+v, want g1 READY", p)
	}
	if ents, _ := os.ReadDir(s.dir); len(ents) != 0 {
		t.Errorf("sink left %d files behind", len(ents))
	}
}

func TestParseApps(t *testing.T) {
	got, err := parseApps(" binary, static,binary")
	must(t, err)
	if strings.Join(got, ",") != "binary,static" {
		t.Errorf("parseApps = %v", got)
	}
	if _, err := parseApps("java"); err == nil {
		t.Error("parseApps accepted an unknown app")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
