package archive

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/testenv"
)

// zent is one entry of a test archive.
type zent struct {
	name string
	mode fs.FileMode // ModeSymlink, ModeDir or a permission
	body string      // content, or symlink target
	link bool        // tar hard link to body
}

func makeZip(t *testing.T, ents ...zent) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range ents {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		h.SetMode(e.mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func makeTgz(t *testing.T, ents ...zent) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Mode: int64(e.mode.Perm()) | 0o4000*int64(btoi(e.mode&fs.ModeSetuid != 0))}
		switch {
		case e.link:
			h.Typeflag, h.Linkname = tar.TypeLink, e.body
		case e.mode&fs.ModeSymlink != 0:
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.body
		case e.mode.IsDir():
			h.Typeflag = tar.TypeDir
		case e.mode&fs.ModeDevice != 0:
			h.Typeflag = tar.TypeChar
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func extractZipBytes(t *testing.T, b []byte, dest string, lim Limits) error {
	t.Helper()
	return ExtractZip(context.Background(), bytes.NewReader(b), int64(len(b)), dest, lim)
}

func wantKind(t *testing.T, err error, kind pando.ErrorKind, substr string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want %s error containing %q, got nil", kind, substr)
	}
	if k := pando.ErrorKindOf(err); k != kind {
		t.Fatalf("want kind %s, got %s: %v", kind, k, err)
	}
	if !strings.Contains(err.Error(), substr) {
		t.Fatalf("error %q does not contain %q", err, substr)
	}
}

// sandbox returns dest inside a parent dir, and a function that fails the
// test if anything but dest appeared in the parent.
func sandbox(t *testing.T) (string, func()) {
	parent := t.TempDir()
	dest := filepath.Join(parent, "dest")
	return dest, func() {
		t.Helper()
		ents, _ := os.ReadDir(parent)
		for _, e := range ents {
			if e.Name() != "dest" {
				t.Errorf("file written outside dest: %s", e.Name())
			}
		}
	}
}

func TestExtractZip_rejectsEscapingPaths(t *testing.T) {
	cases := []struct {
		name string
		ents []zent
		want string
	}{
		{"dotdot", []zent{{name: "../x", mode: 0o644, body: "evil"}}, `"../x": paths with ".."`},
		{"nested dotdot", []zent{{name: "a/../../x", mode: 0o644, body: "evil"}}, `paths with ".."`},
		{"absolute", []zent{{name: "/abs", mode: 0o644, body: "evil"}}, `"/abs": absolute paths`},
		{"symlink out", []zent{{name: "link", mode: fs.ModeSymlink | 0o777, body: "../../etc"}}, `"link": symlink target "../../etc" leaves`},
		{"symlink absolute", []zent{{name: "link", mode: fs.ModeSymlink | 0o777, body: "/etc"}}, `is absolute`},
		{"write through symlink", []zent{
			{name: "d", mode: fs.ModeSymlink | 0o777, body: "."},
			{name: "d/x", mode: 0o644, body: "x"},
		}, `"d/x": path goes through symlink "d"`},
		{"symlink chain out", []zent{
			{name: "a/up", mode: fs.ModeSymlink | 0o777, body: ".."},
			{name: "b", mode: fs.ModeSymlink | 0o777, body: "a/up/.."},
		}, `"b": symlink target "a/up/.." leaves`},
		{"symlink to shallower link then up", []zent{
			{name: "t", mode: fs.ModeSymlink | 0o777, body: "s/../x"},
			{name: "s", mode: fs.ModeSymlink | 0o777, body: "."},
		}, `"t": symlink target "s/../x" leaves`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dest, check := sandbox(t)
			err := extractZipBytes(t, makeZip(t, c.ents...), dest, DefaultLimits())
			wantKind(t, err, pando.EBadZip, c.want)
			check()
		})
	}
}

func TestExtractZip_writesTreeWithModesAndInnerSymlinks(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "d")
	b := makeZip(t,
		zent{name: "./", mode: fs.ModeDir | 0o700},
		zent{name: "bin/", mode: fs.ModeDir | 0o500},
		zent{name: "bin/run", mode: 0o755 | fs.ModeSetuid, body: "#!/bin/sh\n"},
		zent{name: "data/file.txt", mode: 0o600, body: "hello"},
		zent{name: "data/link", mode: fs.ModeSymlink | 0o777, body: "../bin/run"},
		zent{name: "dev", mode: fs.ModeDevice | 0o600},
	)
	if err := extractZipBytes(t, b, dest, DefaultLimits()); err != nil {
		t.Fatal(err)
	}
	checkMode(t, filepath.Join(dest, "bin"), fs.ModeDir|0o755)
	checkMode(t, filepath.Join(dest, "bin/run"), 0o755) // setuid dropped
	checkMode(t, filepath.Join(dest, "data/file.txt"), 0o600)
	if got, _ := os.ReadFile(filepath.Join(dest, "data/link")); string(got) != "#!/bin/sh\n" {
		t.Errorf("symlink reads %q", got)
	}
	if _, err := os.Lstat(filepath.Join(dest, "dev")); err == nil {
		t.Error("device entry was created")
	}
}

func checkMode(t *testing.T, p string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != want {
		t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
	}
}

func TestExtractZip_refusesZipBomb(t *testing.T) {
	b := makeZip(t, zent{name: "zeros", mode: 0o644, body: strings.Repeat("\x00", 8<<20)})
	dest, check := sandbox(t)
	err := extractZipBytes(t, b, dest, DefaultLimits())
	wantKind(t, err, pando.EBadZip, "zip bomb")
	check()
	fi, err := os.Stat(filepath.Join(dest, "zeros"))
	if err == nil && fi.Size() > int64(100*len(b))+ratioFloor {
		t.Errorf("wrote %d bytes before stopping", fi.Size())
	}
}

func TestExtractZip_smallCompressibleArchivesAreFine(t *testing.T) {
	b := makeZip(t, zent{name: "zeros", mode: 0o644, body: strings.Repeat("\x00", 512<<10)})
	if err := extractZipBytes(t, b, t.TempDir(), DefaultLimits()); err != nil {
		t.Fatal(err)
	}
}

func TestExtractZip_limits(t *testing.T) {
	three := makeZip(t,
		zent{name: "a", mode: 0o644, body: "12345"},
		zent{name: "b", mode: 0o644, body: "12345"},
		zent{name: "c", mode: 0o644, body: "12345"},
	)
	cases := []struct {
		name string
		lim  Limits
		kind pando.ErrorKind
		want string
	}{
		{"total", Limits{MaxTotalBytes: 12, UID: -1, GID: -1}, pando.ETooLarge, "limit of 12 bytes"},
		{"per file", Limits{MaxFileBytes: 4, UID: -1, GID: -1}, pando.ETooLarge, `"a" is larger than the per-file limit of 4 bytes`},
		{"files", Limits{MaxFiles: 2, UID: -1, GID: -1}, pando.ETooLarge, "limit of 2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := extractZipBytes(t, three, t.TempDir(), c.lim)
			wantKind(t, err, c.kind, c.want)
		})
	}
	if err := extractZipBytes(t, three, t.TempDir(), Limits{MaxTotalBytes: 15, MaxFiles: 3, UID: -1, GID: -1}); err != nil {
		t.Fatalf("exactly at the limits: %v", err)
	}
}

// TestExtractZip_countsBytesNotHeaders: an entry whose header claims 10
// bytes but holds 1000 neither gets past a 100-byte limit nor leaves more
// than 100 bytes on disk.
func TestExtractZip_countsBytesNotHeaders(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	body := strings.Repeat("x", 1000)
	h := &zip.FileHeader{Name: "big", Method: zip.Store, CRC32: crc32.ChecksumIEEE([]byte(body))}
	h.SetMode(0o644)
	w, err := zw.CreateRaw(h) // raw: the central directory takes sizes from h
	must(t, err)
	_, err = w.Write([]byte(body))
	must(t, err)
	h.CompressedSize64, h.UncompressedSize64 = 1000, 10 // the lie
	must(t, zw.Close())
	dest := t.TempDir()
	err = extractZipBytes(t, buf.Bytes(), dest, Limits{MaxTotalBytes: 100, UID: -1, GID: -1})
	if err == nil {
		t.Fatal("a 1000-byte entry passed a 100-byte limit")
	}
	if fi, err := os.Stat(filepath.Join(dest, "big")); err == nil && fi.Size() > 100 {
		t.Fatalf("wrote %d bytes", fi.Size())
	}
}

func TestExtractZip_rejectsGarbage(t *testing.T) {
	err := extractZipBytes(t, []byte("not a zip"), t.TempDir(), DefaultLimits())
	wantKind(t, err, pando.EBadZip, "invalid zip")
}

func TestExtractZip_chownsWhenAsked(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "chown needs root")
	}
	dest := filepath.Join(t.TempDir(), "d")
	b := makeZip(t,
		zent{name: "a/b", mode: 0o644, body: "x"},
		zent{name: "l", mode: fs.ModeSymlink | 0o777, body: "a/b"},
	)
	if err := extractZipBytes(t, b, dest, Limits{UID: 2000, GID: 2000}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"", "a", "a/b", "l"} {
		fi, err := os.Lstat(filepath.Join(dest, p))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != 2000 || st.Gid != 2000 {
			t.Errorf("%q owned by %d:%d", p, st.Uid, st.Gid)
		}
	}
}

func TestExtractTgz_rejects(t *testing.T) {
	cases := []struct {
		name string
		ents []zent
		want string
	}{
		{"dotdot", []zent{{name: "../x", mode: 0o644, body: "e"}}, `paths with ".."`},
		{"absolute", []zent{{name: "/etc/x", mode: 0o644, body: "e"}}, "absolute"},
		{"symlink out", []zent{{name: "a/link", mode: fs.ModeSymlink, body: "../../etc"}}, "leaves the destination"},
		{"hard link out", []zent{{name: "h", link: true, body: "../../etc/passwd"}}, "hard link target"},
		{"hard link to outside via symlink", []zent{
			{name: "s", mode: fs.ModeSymlink, body: "."},
			{name: "h", link: true, body: "s/x"},
		}, "path goes through symlink"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dest, check := sandbox(t)
			err := ExtractTgz(context.Background(), bytes.NewReader(makeTgz(t, c.ents...)), dest, DefaultLimits())
			wantKind(t, err, pando.EBadZip, c.want)
			check()
		})
	}
}

func TestExtractTgz_limitsAndCorruption(t *testing.T) {
	b := makeTgz(t, zent{name: "a", mode: 0o644, body: strings.Repeat("y", 100)})
	err := ExtractTgz(context.Background(), bytes.NewReader(b), t.TempDir(), Limits{MaxTotalBytes: 50, UID: -1, GID: -1})
	wantKind(t, err, pando.ETooLarge, "limit of 50 bytes")

	err = ExtractTgz(context.Background(), bytes.NewReader(b[:len(b)/2]), t.TempDir(), DefaultLimits())
	if k := pando.ErrorKindOf(err); k != pando.EBadZip {
		t.Fatalf("truncated tgz: kind %s, err %v", k, err)
	}
}

func TestTgz_roundTripKeepsModesSymlinksAndHardLinks(t *testing.T) {
	src := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(src, "app/bin"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "app/bin/run"), []byte("#!/bin/sh\necho hi\n"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "app/secret"), []byte("s"), 0o600))
	must(t, os.Symlink("bin/run", filepath.Join(src, "app/run")))
	must(t, os.Symlink("../app", filepath.Join(src, "app/self")))
	must(t, os.Link(filepath.Join(src, "app/secret"), filepath.Join(src, "app/secret2")))
	must(t, os.Mkdir(filepath.Join(src, "empty"), 0o755))

	var a, b bytes.Buffer
	must(t, WriteTgz(context.Background(), &a, src, "."))
	must(t, WriteTgz(context.Background(), &b, src, "."))
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("WriteTgz is not deterministic")
	}
	names := tarNames(t, a.Bytes())
	want := "./ ./app/ ./app/bin/ ./app/bin/run ./app/run ./app/secret ./app/secret2 ./app/self ./empty/"
	if strings.Join(names, " ") != want {
		t.Errorf("entries\n got %s\nwant %s", strings.Join(names, " "), want)
	}

	dest := filepath.Join(t.TempDir(), "out")
	must(t, ExtractTgz(context.Background(), &a, dest, DefaultLimits()))
	checkMode(t, filepath.Join(dest, "app/bin/run"), 0o755)
	checkMode(t, filepath.Join(dest, "app/secret"), 0o600)
	checkMode(t, filepath.Join(dest, "empty"), fs.ModeDir|0o755)
	if got, _ := os.ReadFile(filepath.Join(dest, "app/run")); !strings.Contains(string(got), "echo hi") {
		t.Errorf("symlink app/run reads %q", got)
	}
	if tgt, _ := os.Readlink(filepath.Join(dest, "app/self")); tgt != "../app" {
		t.Errorf("app/self -> %q", tgt)
	}
	s1, _ := os.Stat(filepath.Join(dest, "app/secret"))
	s2, _ := os.Stat(filepath.Join(dest, "app/secret2"))
	if !os.SameFile(s1, s2) {
		t.Error("hard link not kept")
	}
}

func TestZip_roundTrip(t *testing.T) {
	src := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(src, "bin"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "bin/detect"), []byte("#!/bin/sh\n"), 0o755))
	must(t, os.Symlink("bin/detect", filepath.Join(src, "d")))
	var buf bytes.Buffer
	must(t, WriteZip(context.Background(), &buf, src, ""))
	ents, err := ListZip(bytes.NewReader(buf.Bytes()), int64(buf.Len()), 0)
	must(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name)
	}
	if got := strings.Join(names, " "); got != "bin bin/detect d" {
		t.Errorf("ListZip: %s", got)
	}
	dest := t.TempDir()
	must(t, extractZipBytes(t, buf.Bytes(), dest, DefaultLimits()))
	checkMode(t, filepath.Join(dest, "bin/detect"), 0o755)
	if tgt, _ := os.Readlink(filepath.Join(dest, "d")); tgt != "bin/detect" {
		t.Errorf("d -> %q", tgt)
	}
}

func TestExtract_cancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := makeZip(t, zent{name: "a", mode: 0o644, body: "x"})
	if err := ExtractZip(ctx, bytes.NewReader(b), int64(len(b)), t.TempDir(), DefaultLimits()); err != context.Canceled {
		t.Fatalf("got %v", err)
	}
}

func tarNames(t *testing.T, b []byte) []string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	must(t, err)
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
	}
	return names
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
