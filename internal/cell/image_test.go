package cell

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/container"
	"github.com/pandoplatform/pando/internal/testenv"
)

func writeLayerFile(t *testing.T, root, rel, content string) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestImageUser_resolvesNamesAndIDsInTheImagesOwnFiles(t *testing.T) {
	base, top := t.TempDir(), t.TempDir()
	writeLayerFile(t, base, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\nold:x:500:500::/:/bin/sh\n")
	// The top layer's passwd replaces the base's.
	writeLayerFile(t, top, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n# a comment\nweb:x:1000:1001::/srv:/bin/sh\n")
	writeLayerFile(t, base, "etc/group", "root:x:0:\nstaff:x:50:\n")
	layers := []string{base, top}
	for _, tc := range []struct {
		spec string
		want container.User
	}{
		{"", container.User{}},
		{"0", container.User{}},
		{"web", container.User{UID: 1000, GID: 1001}},
		{"1000", container.User{UID: 1000, GID: 1001}},
		{"4242", container.User{UID: 4242, GID: 0}},
		{"1000:1000", container.User{UID: 1000, GID: 1000}},
		{"web:staff", container.User{UID: 1000, GID: 50}},
		{"77:staff", container.User{UID: 77, GID: 50}},
	} {
		got, err := imageUser(tc.spec, layers)
		if err != nil || got != tc.want {
			t.Errorf("imageUser(%q) = %+v, %v; want %+v", tc.spec, got, err, tc.want)
		}
	}
	for _, bad := range []string{"old", "nobody", "web:nogroup"} {
		if _, err := imageUser(bad, layers); pando.ErrorKindOf(err) != pando.EInvalid || !strings.Contains(err.Error(), "is not in the image's") {
			t.Errorf("imageUser(%q): %v, want a clear invalid error", bad, err)
		}
	}
}

func TestReadImageFile_honoursWhiteoutsOpaqueDirsAndNoSymlinks(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "whiteout devices and trusted xattrs need root")
	}
	base, mid, top := t.TempDir(), t.TempDir(), t.TempDir()
	writeLayerFile(t, base, "etc/passwd", "base\n")
	writeLayerFile(t, base, "etc/group", "base\n")
	writeLayerFile(t, base, "etc/shadow", "base\n")
	// mid deletes passwd; top adds hosts and a symlink out of the image.
	if err := os.MkdirAll(filepath.Join(mid, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(filepath.Join(mid, "etc", "passwd"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	writeLayerFile(t, top, "etc/hosts", "top\n")
	if err := os.Symlink("/etc/hostname", filepath.Join(top, "etc", "hostname")); err != nil {
		t.Fatal(err)
	}
	layers := []string{base, mid, top}
	for rel, want := range map[string]string{"etc/passwd": "", "etc/group": "base\n", "etc/hosts": "top\n", "etc/hostname": "", "etc/none": ""} {
		if got, err := readImageFile(layers, rel); err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", rel, got, err, want)
		}
	}
	if err := unix.Setxattr(filepath.Join(mid, "etc"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Fatal(err)
	}
	if got, err := readImageFile(layers, "etc/group"); err != nil || got != "" {
		t.Errorf("etc/group below an opaque etc: %q, %v; want nothing", got, err)
	}
}

func TestImageProcess_runsEntrypointAndCmdOrTheUsersCommand(t *testing.T) {
	base := t.TempDir()
	writeLayerFile(t, base, "etc/passwd", "web:x:1000:1000::/srv:/bin/sh\n")
	meta := &pando.ExecutionMetadata{
		Entrypoint: []string{"/bin/server", "--flag"}, Cmd: []string{"arg one"}, Workdir: "/srv", User: "web",
		Env: []string{"PATH=/usr/bin:/bin", "GREETING=image", "IMAGE_ONLY=yes"},
	}
	lrp := pando.DesiredLRP{Image: "r/x@sha256:ab", Docker: meta}
	args, dir, user, env, err := imageProcess(lrp.Image, lrp.Docker, lrp.StartCommand, []string{base}, []string{"GREETING=app", "PORT=8000"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(args, []string{"/bin/server", "--flag", "arg one"}) || dir != "/srv" || user != (container.User{UID: 1000, GID: 1000}) {
		t.Errorf("args %q dir %q user %+v", args, dir, user)
	}
	if want := []string{"PATH=/usr/bin:/bin", "GREETING=app", "IMAGE_ONLY=yes", "PORT=8000", "HOME=/srv"}; !slices.Equal(env, want) {
		t.Errorf("env %q, want %q (the app's over the image's)", env, want)
	}
	lrp.StartCommand = "echo $GREETING"
	if args, _, _, _, err := imageProcess(lrp.Image, lrp.Docker, lrp.StartCommand, []string{base}, nil); err != nil || !slices.Equal(args, []string{"/bin/sh", "-c", "echo $GREETING"}) {
		t.Errorf("with a user command: %q, %v", args, err)
	}
	// Nothing to run, or an unknown user: a clear error.
	if _, _, _, _, err := imageProcess("r/x@sha256:ab", &pando.ExecutionMetadata{}, "", nil, nil); pando.ErrorKindOf(err) != pando.EInvalid {
		t.Errorf("no command: %v", err)
	}
	lrp.Docker = &pando.ExecutionMetadata{Cmd: []string{"x"}, User: "ghost"}
	if _, _, _, _, err := imageProcess(lrp.Image, lrp.Docker, lrp.StartCommand, []string{base}, nil); err == nil || !strings.Contains(err.Error(), `"ghost"`) {
		t.Errorf("unknown user: %v", err)
	}
	// Defaults: root in /.
	lrp.Docker = &pando.ExecutionMetadata{Cmd: []string{"x"}}
	lrp.StartCommand = ""
	if _, dir, user, env, err := imageProcess(lrp.Image, lrp.Docker, lrp.StartCommand, nil, nil); err != nil || dir != "/" || user != (container.User{}) || !slices.Equal(env, []string{"HOME=/"}) {
		t.Errorf("defaults: dir %q user %+v env %q, %v", dir, user, env, err)
	}
	// An image's own HOME stays.
	lrp.Docker = &pando.ExecutionMetadata{Cmd: []string{"x"}, User: "web", Env: []string{"HOME=/data"}}
	if _, _, _, env, err := imageProcess(lrp.Image, lrp.Docker, "", []string{base}, nil); err != nil || !slices.Equal(env, []string{"HOME=/data"}) {
		t.Errorf("image HOME: env %q, %v", env, err)
	}
}
