package runc

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/pandoplatform/pando/internal/container"
)

// leaseFree reports whether nobody holds the host id block at base (its
// lock is free and its lease file released).
func leaseFree(t *testing.T, b *Backend, base uint32) bool {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(b.ids.dir, strconv.FormatUint(uint64(base), 10)), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return false
	}
	defer unix.Flock(int(f.Fd()), unix.LOCK_UN)
	fi, err := f.Stat()
	return err == nil && fi.Size() == 0
}

func TestPrepare_runStartsFromThePreparedIdsAndAnUnusedPreparationIsGivenBack(t *testing.T) {
	b := newBackend(t, t.TempDir())
	ctx := testCtx(t)

	release, err := b.Prepare(ctx, "prepared")
	if err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	p := b.prepared["prepared"]
	b.mu.Unlock()
	if p == nil {
		t.Fatal("nothing prepared")
	}
	var out syncBuffer
	c, err := b.Run(ctx, container.Spec{ID: "prepared", Args: []string{"sh", "-c", "id -u"}, Stdout: &out, Stderr: &out})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.(*Container).lease; got != p.lease {
		t.Fatalf("the container runs on host ids %d, not the prepared %d", got.base, p.lease.base)
	}
	if p.userns.cmd.ProcessState == nil {
		t.Error("the prepared namespace's holder still runs after the start")
	}
	if st, err := c.Wait(ctx); err != nil || st.Code != 0 || out.String() != strconv.Itoa(DefaultUID)+"\n" {
		t.Fatalf("exit %+v, %v, output %q", st, err, out.String())
	}
	// Taken by the Run: releasing it leaves the container's ids alone.
	release()
	if leaseFree(t, b, p.lease.base) {
		t.Fatal("releasing a preparation Run took freed the container's host ids")
	}
	if err := c.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	if !leaseFree(t, b, p.lease.base) {
		t.Fatal("the destroyed container's host ids are still held")
	}

	// Prepared but never run: release kills the holder and frees the ids.
	release, err = b.Prepare(ctx, "never-run")
	if err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	p = b.prepared["never-run"]
	b.mu.Unlock()
	if leaseFree(t, b, p.lease.base) {
		t.Fatal("prepared host ids are not held")
	}
	release()
	release()
	if !leaseFree(t, b, p.lease.base) || p.userns.cmd.ProcessState == nil {
		t.Fatal("a released preparation keeps its host ids or its namespace's holder")
	}
	if _, err := b.Prepare(ctx, "../bad"); err == nil {
		t.Fatal("a bad container id was prepared")
	}
}
