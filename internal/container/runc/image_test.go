package runc

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/pandoplatform/pando/internal/container"
	"github.com/pandoplatform/pando/internal/testenv"
)

// imageLayers makes a two-layer image as internal/layers leaves it: a base
// with a static busybox, its own passwd and group, and files the top layer
// hides with a whiteout (a 0:0 character device) and an opaque directory.
func imageLayers(t *testing.T) []string {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		testenv.Missing(t, "busybox is not installed")
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	base, top := t.TempDir(), t.TempDir()
	write := func(root, rel, content string, mode os.FileMode) {
		t.Helper()
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	write(base, "bin/busybox", string(data), 0o755)
	if err := os.Symlink("busybox", filepath.Join(base, "bin", "sh")); err != nil {
		t.Fatal(err)
	}
	write(base, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/app:/bin/sh\n", 0o644)
	write(base, "etc/group", "root:x:0:\napp:x:1000:\n", 0o644)
	write(base, "a/gone", "lower\n", 0o644)
	write(base, "a/kept", "lower\n", 0o644)
	write(base, "dir/old", "lower\n", 0o644)
	if err := os.Mkdir(filepath.Join(base, "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(base, "app"), 1000, 1000); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(top, "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(filepath.Join(top, "a", "gone"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	write(top, "dir/new", "upper\n", 0o644)
	if err := unix.Setxattr(filepath.Join(top, "dir"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Fatal(err)
	}
	return []string{base, top}
}

func TestRun_imageLayersRunAsRootInsideOnly(t *testing.T) {
	b := newBackend(t, t.TempDir())
	ctx := testCtx(t)
	layers := imageLayers(t)
	// Root has the image capabilities inside: chown, and reading another
	// user's private file.
	script := `id -u; id -g; pwd; ls /a; ls /dir; cat /etc/passwd; test -e /home/vcap || echo no home; ` +
		`echo secret > /app/private && chown 1000:1000 /app/private && chmod 600 /app/private && stat -c %u /app/private && cat /app/private; ` +
		`echo x > /rootfile && echo wrote; exec sleep 1000`
	var out syncBuffer
	c, err := b.Run(ctx, container.Spec{
		ID: "image-root", Layers: layers, User: &container.User{}, Args: []string{"/bin/sh", "-c", script},
		Env: []string{"PATH=/bin"}, Stdout: &out, Stderr: &out,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Destroy(ctx)
	got := waitOutput(t, &out, "wrote\n")
	want := "0\n0\n/\nkept\nnew\nroot:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/app:/bin/sh\nno home\n1000\nsecret\nwrote\n"
	if got != want {
		t.Fatalf("container said:\n%s\nwant:\n%s", got, want)
	}
	// Root inside is the base of an unprivileged host id block.
	if u := initUID(t, b, "image-root"); u < DefaultHostIDBase || u%idBlockSize != 0 {
		t.Fatalf("image root runs as host uid %d, want the base of a block from %d", u, DefaultHostIDBase)
	}
	for _, l := range layers {
		if _, err := os.Stat(filepath.Join(l, "rootfile")); err == nil {
			t.Fatalf("a write reached layer %s", l)
		}
	}
}

func TestRun_imageLayersKeepTheirIDsForAnyUser(t *testing.T) {
	b := newBackend(t, t.TempDir())
	layers := imageLayers(t)
	out, errOut, st := runToEnd(t, b, container.Spec{
		ID: "image-app", Layers: layers, User: &container.User{UID: 1000, GID: 1000}, Dir: "/app",
		Args: []string{"/bin/sh", "-c", `id -u; id -g; pwd; echo hi > /app/f && stat -c %u /app/f; echo x > /etc/x || echo ro; chown 0 /app/f || echo no chown`},
		Env:  []string{"PATH=/bin"},
	})
	if want := "1000\n1000\n/app\n1000\nro\nno chown\n"; st.Code != 0 || out != want {
		t.Fatalf("status %+v stderr %q stdout:\n%s\nwant:\n%s", st, errOut, out, want)
	}
}
