package cli

import (
	"archive/zip"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/pandoplatform/pando/internal/cli/api"
)

func TestIgnorer_gitignoreStyleRules(t *testing.T) {
	ig, err := newIgnorer(append(append([]string(nil), defaultIgnores...),
		"# comment", "", "*.log", "!keep.log", "tmp/", "/build", "docs/**/*.md", "[ab].txt", `\#literal`))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path  string
		dir   bool
		want  bool
		cause string
	}{
		{".git", true, true, "default"},
		{"sub/.git", true, true, "default at any depth"},
		{"manifest.yml", false, true, "anchored default"},
		{"sub/manifest.yml", false, false, "anchored default only at the root"},
		{".cf", true, true, "pando's own dir"},
		{"debug.log", false, true, "glob"},
		{"a/b/debug.log", false, true, "glob at any depth"},
		{"keep.log", false, false, "negation"},
		{"tmp", true, true, "dir-only"},
		{"tmp", false, false, "dir-only skips files"},
		{"build", true, true, "anchored"},
		{"src/build", true, false, "anchored not nested"},
		{"docs/a/b/x.md", false, true, "double star"},
		{"docs/x.md", false, true, "double star matches zero dirs"},
		{"x.md", false, false, "double star anchored"},
		{"a.txt", false, true, "class"},
		{"c.txt", false, false, "class miss"},
		{"#literal", false, true, "escaped hash"},
		{"main.go", false, false, "plain file"},
	}
	for _, c := range cases {
		if got := ig.ignored(c.path, c.dir); got != c.want {
			t.Errorf("%s (dir=%v, %s): ignored = %v, want %v", c.path, c.dir, c.cause, got, c.want)
		}
	}
}

func TestCollectFiles_honoursCfignoreAndKeepsModes(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"main.go":           "package main\n",
		"node_modules/x.js": "x",
		"vendor/a/b.go":     "package a\n",
		".cfignore":         "node_modules/\n",
		".git/HEAD":         "ref",
		"empty":             "",
	})
	if err := os.Chmod(filepath.Join(dir, "main.go"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("main.go", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	files, err := collectFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, f.rel+":"+f.modeString())
	}
	want := "empty:644 link:777 main.go:700 vendor/a/b.go:644"
	if strings.Join(got, " ") != want {
		t.Errorf("files = %q, want %q", strings.Join(got, " "), want)
	}
	if files[2].sha1 != sha1Hex("package main\n") || files[2].size != 13 {
		t.Errorf("main.go sha1/size = %s/%d", files[2].sha1, files[2].size)
	}

	zp := filepath.Join(t.TempDir(), "p.zip")
	if err := writeZip(zp, files); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.OpenReader(zp)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	modes := map[string]os.FileMode{}
	for _, zf := range zr.File {
		modes[zf.Name] = zf.Mode()
	}
	if modes["main.go"].Perm() != 0o700 || modes["link"]&os.ModeSymlink == 0 || len(modes) != 4 {
		t.Errorf("zip modes = %v", modes)
	}
}

func TestCollectFiles_fromAnArchiveRejectsUnsafeNames(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "app.jar")
	makeZip(t, good, map[string]string{"META-INF/MANIFEST.MF": "Main-Class: x\n", "x.class": "cafe"})
	files, err := collectFiles(good)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.rel)
	}
	sort.Strings(names)
	if strings.Join(names, ",") != "META-INF/MANIFEST.MF,x.class" {
		t.Errorf("files = %v", names)
	}
	bad := filepath.Join(dir, "bad.zip")
	makeZip(t, bad, map[string]string{"../evil": "x"})
	if _, err := collectFiles(bad); err == nil || !strings.Contains(err.Error(), "unsafe") {
		t.Errorf("err = %v, want unsafe entry", err)
	}
	if _, err := collectFiles(filepath.Join(dir, "nope")); err == nil {
		t.Error("missing path accepted")
	}
	notZip := filepath.Join(dir, "built.jar")
	if err := os.WriteFile(notZip, []byte("not a zip\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := "app path " + notZip + " is not a zip file (zip: not a valid zip file): a .zip, .jar or .war must be one; give the app's directory otherwise"
	if _, err := collectFiles(notZip); err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
}

func makeZip(t *testing.T, p string, files map[string]string) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for n, c := range files {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(c))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func TestStagingCode_mapsCFErrorsToExitCodes(t *testing.T) {
	cases := map[string]int{
		"NoAppDetectedError - An app was not successfully detected by any available buildpack": 222,
		"BuildpackCompileFailed - App staging failed in the buildpack compile phase":           223,
		"BuildpackReleaseFailed - App staging failed in the buildpack release phase":           224,
		"StagingError - supply buildpack failed":                                               225,
		"StagingTimeExpired":                                                                   -1,
		"StagingError - staging failed: exit status 222":                                       222,
		"InsufficientResources":                                                                0,
	}
	for msg, want := range cases {
		if got := stagingCode(msg); got != want {
			t.Errorf("stagingCode(%q) = %d, want %d", msg, got, want)
		}
	}
}

func TestParseMegabytes(t *testing.T) {
	good := map[string]int{"256M": 256, "1G": 1024, "512mb": 512, "2GB": 2048, "64": 64}
	for in, want := range good {
		if got, err := parseMegabytes(in); err != nil || got != want {
			t.Errorf("parseMegabytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "M", "-1M", "lots", "0"} {
		if _, err := parseMegabytes(in); err == nil {
			t.Errorf("parseMegabytes(%q) accepted", in)
		}
	}
}

func TestRouteURL(t *testing.T) {
	local := mustURL(t, "http://127.0.0.1:8080")
	cases := []struct {
		r    api.Route
		base string
		want string
	}{
		{api.Route{URL: "myapp.localhost"}, "local", "http://myapp.localhost:8080"},
		{api.Route{URL: "www.localhost/myapp"}, "local", "http://www.localhost:8080/myapp"},
		{api.Route{Host: "a", Path: ""}, "none", "http://a"},
		{api.Route{URL: "https://x.example.com"}, "local", "https://x.example.com"},
	}
	for _, c := range cases {
		base := local
		if c.base == "none" {
			base = nil
		}
		if got := routeURL(c.r, base); got != c.want {
			t.Errorf("routeURL(%+v) = %q, want %q", c.r, got, c.want)
		}
	}
}

func TestSelectApps_flagsOverrideASingleManifestApp(t *testing.T) {
	dir := t.TempDir()
	mf := filepath.Join(dir, "manifest.yml")
	writeFiles(t, dir, map[string]string{"manifest.yml": `applications:
- name: web
  path: site
  memory: 128M
  buildpack: staticfile_buildpack
  env: {A: b}
- name: worker
  no-route: true
`})
	apps, err := readManifest(mf, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &pushFlags{memory: "256M", buildpacks: []string{"go_buildpack"}}
	if _, err := selectApps("", apps, f); err == nil {
		t.Error("flags accepted for a two-app manifest")
	}
	sel, err := selectApps("web", apps, f)
	if err != nil || len(sel) != 1 {
		t.Fatalf("select web: %v %v", sel, err)
	}
	if sel[0].path != filepath.Join(dir, "site") {
		t.Errorf("path = %q, want relative to the manifest", sel[0].path)
	}
	y, err := manifestYAML(sel)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"memory: 256M", "- go_buildpack", "default-route: true", "A: b"} {
		if !strings.Contains(string(y), want) {
			t.Errorf("manifest lacks %q:\n%s", want, y)
		}
	}
	for _, not := range []string{"path:", "buildpack: staticfile"} {
		if strings.Contains(string(y), not) {
			t.Errorf("manifest has %q:\n%s", not, y)
		}
	}
	all, err := selectApps("", apps, &pushFlags{})
	if err != nil || len(all) != 2 {
		t.Fatalf("all apps: %v %v", all, err)
	}
	y, _ = manifestYAML(all[1:])
	if strings.Contains(string(y), "default-route") {
		t.Errorf("no-route app got a default route:\n%s", y)
	}
	// --random-route asks for a random route instead of the default one.
	sel, err = selectApps("web", apps, &pushFlags{randomRoute: true})
	if err != nil || len(sel) != 1 {
		t.Fatalf("select web: %v %v", sel, err)
	}
	y, _ = manifestYAML(sel)
	if !strings.Contains(string(y), "random-route: true") || strings.Contains(string(y), "default-route") {
		t.Errorf("--random-route manifest:\n%s", y)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
