package runc

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pandoplatform/pando/internal/container"
)

// abandon makes b let go of c as a killed server would: its connection to
// the shim closes and its lease descriptor goes, the container and its
// volume are left as they are.
func abandon(t *testing.T, b *Backend, c *Container) {
	t.Helper()
	b.mu.Lock()
	delete(b.live, c.id)
	for dir := range b.vols {
		delete(b.vols, dir)
	}
	b.mu.Unlock()
	c.lease.drop()
	c.nsMu.Lock()
	if c.sockets != nil {
		c.sockets.close()
	}
	c.nsMu.Unlock()
}

// lastNumber is the highest "n=N" in s, -1 if none.
func lastNumber(s string) int {
	last := -1
	for _, m := range regexp.MustCompile(`n=(\d+)`).FindAllStringSubmatch(s, -1) {
		if n, _ := strconv.Atoi(m[1]); n > last {
			last = n
		}
	}
	return last
}

func TestAdopt_aRestartedBackendTakesOverOutputDialAndExit(t *testing.T) {
	dir := t.TempDir()
	old := newBackend(t, dir)
	ctx := testCtx(t)
	volDir := filepath.Join(t.TempDir(), "vol")
	vol, err := old.Volume(ctx, volDir, 16<<20)
	if err != nil {
		t.Fatal(err)
	}
	var out1 syncBuffer
	spec := container.Spec{
		ID:     "adoptee",
		Volume: vol.Dir(),
		// A web server, and a line every 20 ms on stdout.
		Args: []string{"sh", "-c", "echo adopted > /tmp/index.html; busybox httpd -p 8080 -h /tmp; " +
			"n=0; while true; do echo n=$n; n=$((n+1)); sleep 0.02; done"},
		MemoryBytes: 64 << 20,
		Stdout:      &out1,
	}
	c1, err := old.Run(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	waitDialable(t, c1, 8080)
	eventuallyRunc(t, "lines reach the first backend", func() bool { return lastNumber(out1.String()) >= 3 })
	rc1 := c1.(*Container)
	// The first server "dies": the connection it read the shim through
	// closes with it. Then a second one starts on the same state dir.
	abandon(t, old, rc1)
	closeShimConn(t, rc1)

	b := newBackend(t, dir)
	v2, err := b.AdoptVolume(ctx, volDir)
	if err != nil {
		t.Fatalf("AdoptVolume: %v", err)
	}
	var out2 syncBuffer
	c2, err := b.Adopt(ctx, "adoptee", container.Output{Stdout: &out2})
	if err != nil {
		t.Fatalf("Adopt: %v", err)
	}
	if err := b.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	// Output goes on, numbered after what the first backend saw.
	seen := lastNumber(out1.String())
	eventuallyRunc(t, "lines reach the adopting backend", func() bool { return lastNumber(out2.String()) > seen+5 })
	if got := get(t, c2); got != "adopted\n" {
		t.Fatalf("GET through the adopted container: %q", got)
	}
	if st, err := c2.Stats(ctx); err != nil || st.MemoryBytes == 0 || st.Pids == 0 || st.DiskBytes == 0 {
		t.Fatalf("stats of the adopted container: %+v, %v", st, err)
	}
	if u, err := v2.Usage(); err != nil || u.SizeBytes == 0 {
		t.Fatalf("usage of the adopted volume: %+v, %v", u, err)
	}
	// Its end is seen, with the status runc reports (sh as PID 1 takes
	// no SIGTERM: SIGKILL's).
	if err := c2.Stop(ctx, 0); err != nil {
		t.Fatal(err)
	}
	st, err := c2.Wait(ctx)
	if err != nil || st.Code != 137 || !st.Signaled || st.OOMKilled {
		t.Fatalf("exit %+v, %v; want SIGKILL's 137", st, err)
	}
	if err := c2.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	if err := v2.Release(ctx); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, b, dir)
}

// closeShimConn closes the first backend's end of its shim connection
// (what the kernel does when the server dies) and waits until the first
// backend's reader has noticed.
func closeShimConn(t *testing.T, c *Container) {
	t.Helper()
	if c.conn == nil {
		t.Fatal("no shim connection recorded")
	}
	c.conn.Close()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the first backend did not notice its connection closed")
	}
}

func TestAdopt_refusesAContainerWhoseShimIsGoneAndCleanupRemovesIt(t *testing.T) {
	dir := t.TempDir()
	old := newBackend(t, dir)
	ctx := testCtx(t)
	c1, err := old.Run(ctx, container.Spec{ID: "orphan", Args: []string{"sleep", "1000"}})
	if err != nil {
		t.Fatal(err)
	}
	rc1 := c1.(*Container)
	abandon(t, old, rc1)
	closeShimConn(t, rc1)
	// The shim is killed too: nothing can watch the container now.
	killShimOf(t, rc1)

	b := newBackend(t, dir)
	if _, err := b.Adopt(ctx, "orphan", container.Output{}); err == nil {
		t.Fatal("adopted a container without its shim")
	}
	if _, err := b.Adopt(ctx, "nosuch", container.Output{}); err == nil {
		t.Fatal("adopted a container that never was")
	}
	if err := b.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, b, dir)
}

func eventuallyRunc(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling, with a deadline
	}
}

// killShimOf kills the container's shim and waits until it is reaped.
func killShimOf(t *testing.T, c *Container) {
	t.Helper()
	pid := c.cmd.Process.Pid
	if err := unix.Kill(pid, unix.SIGKILL); err != nil {
		t.Fatalf("kill shim %d: %v", pid, err)
	}
	eventuallyRunc(t, fmt.Sprintf("shim %d gone", pid), func() bool { return unix.Kill(pid, 0) != nil })
}

func TestShim_exitsOnceTheServerHasTheExit(t *testing.T) {
	b := newBackend(t, t.TempDir())
	ctx := testCtx(t)
	var out syncBuffer
	c, err := b.Run(ctx, container.Spec{ID: "brief", Args: []string{"sh", "-c", "echo bye; sleep 1000"}, Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	rc := c.(*Container)
	if err := c.Stop(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	// Well before shimLinger: the shim saw the server close after the exit.
	pid := rc.cmd.Process.Pid
	deadline := time.Now().Add(5 * time.Second)
	for unix.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("shim %d still running 5s after its container's end was delivered", pid)
		}
		time.Sleep(20 * time.Millisecond) // polling, with a deadline
	}
	if out.String() != "bye\n" {
		t.Fatalf("output %q", out.String())
	}
}

// A staging's or task's container that exited while no server watched
// it: AdoptEnded takes it over with the output its lingering shim held
// and its exit status, or, once the shim is gone too, with the status
// its shim wrote. Either is then destroyed as any container.
func TestAdoptEnded_takesOverAContainerThatExitedWhileNobodyWatched(t *testing.T) {
	for _, shimGone := range []bool{false, true} {
		t.Run(fmt.Sprintf("shim gone %v", shimGone), func(t *testing.T) {
			dir := t.TempDir()
			old := newBackend(t, dir)
			ctx := testCtx(t)
			gate := t.TempDir()
			var out1 syncBuffer
			c1, err := old.Run(ctx, container.Spec{ID: "ender",
				Mounts: []container.Mount{{Source: gate, Destination: "/gate", ReadOnly: true}},
				Args:   []string{"sh", "-c", "echo started; while [ ! -e /gate/go ]; do sleep 0.05; done; echo last words; exit 7"},
				Stdout: &out1})
			if err != nil {
				t.Fatal(err)
			}
			eventuallyRunc(t, "the container started", func() bool { return strings.Contains(out1.String(), "started") })
			rc1 := c1.(*Container)
			abandon(t, old, rc1)
			closeShimConn(t, rc1)
			if err := os.WriteFile(filepath.Join(gate, "go"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			eventuallyRunc(t, "the container's exit status written", func() bool {
				_, err := readShimStatus(filepath.Join(rc1.bundle, exitFile))
				return err == nil
			})
			if shimGone {
				killShimOf(t, rc1)
			}

			b := newBackend(t, dir)
			// (Plain Adopt connects to a lingering shim, which then
			// hands it the output: asked only when the shim is gone.)
			if shimGone {
				if _, err := b.Adopt(ctx, "ender", container.Output{}); err == nil {
					t.Fatal("Adopt took over a container that has exited")
				}
			}
			var out2 syncBuffer
			c2, err := b.AdoptEnded(ctx, "ender", container.Output{Stdout: &out2})
			if err != nil {
				t.Fatalf("AdoptEnded: %v", err)
			}
			if err := b.Cleanup(ctx); err != nil {
				t.Fatal(err)
			}
			st, err := c2.Wait(ctx)
			if err != nil || st.Code != 7 || st.Signaled {
				t.Fatalf("exit %+v, %v; want 7", st, err)
			}
			if got := strings.Contains(out2.String(), "last words"); got == shimGone {
				t.Errorf("output relayed %q (shim gone %v)", out2.String(), shimGone)
			}
			if err := c2.Destroy(ctx); err != nil {
				t.Fatal(err)
			}
			assertNothingLeft(t, b, dir)
		})
	}
}

// A server killed while a container writes loses nothing: the frames it
// had read but not passed on (in its buffers, in the socket) are sent
// again to the server that adopts the container, and nothing it passed on
// is sent twice.
func TestAdopt_everyLineOnceWhenTheReaderDiesMidStream(t *testing.T) {
	dir := t.TempDir()
	old := newBackend(t, dir)
	ctx := testCtx(t)
	const n = 3000 // ~100 KB, in many writes
	w1 := newDyingWriter(40 << 10)
	c1, err := old.Run(ctx, container.Spec{ID: "chatty", Stdout: w1, Args: []string{"sh", "-c",
		`i=0; while [ $i -lt 3000 ]; do echo "line $i of the staging's output"; i=$((i+1)); done`}})
	if err != nil {
		t.Fatal(err)
	}
	rc1 := c1.(*Container)
	// The first server dies past 40 KiB, between two frames: its
	// connection closes with it.
	w1.kill <- rc1.conn
	select {
	case <-rc1.done:
	case <-time.After(20 * time.Second):
		t.Fatal("the first backend did not notice its connection closed")
	}
	abandon(t, old, rc1)

	b := newBackend(t, dir)
	var out2 syncBuffer
	c2, err := b.AdoptEnded(ctx, "chatty", container.Output{Stdout: &out2})
	if err != nil {
		t.Fatalf("AdoptEnded: %v", err)
	}
	if err := b.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := c2.Wait(ctx); err != nil || st.Code != 0 {
		t.Fatalf("exit %+v, %v", st, err)
	}
	var want strings.Builder
	for i := range n {
		fmt.Fprintf(&want, "line %d of the staging's output\n", i)
	}
	first, second := w1.String(), out2.String()
	if first+second != want.String() {
		t.Fatalf("the two backends passed on %d + %d bytes (the first ends %q, the second begins %q), want the %d written, each once, in order",
			len(first), len(second), tail(first, 40), head(second, 40), want.Len())
	}
	if len(first) < 40<<10 || len(second) == 0 {
		t.Fatalf("first backend %d bytes, second %d: the reader did not die mid-stream", len(first), len(second))
	}
	if err := c2.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, b, dir)
}

func head(s string, n int) string { return s[:min(n, len(s))] }
func tail(s string, n int) string { return s[max(0, len(s)-n):] }
