package runc

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pandoplatform/pando/internal/container"
	"golang.org/x/sys/unix"
)

// unixPair is a connected pair of unix stream sockets, as the backend and
// a shim hold.
func unixPair(t *testing.T) (shimEnd, serverEnd net.Conn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) net.Conn {
		f := os.NewFile(uintptr(fd), "pair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	return conn(fds[0]), conn(fds[1])
}

// received is what a server read from a shim.
type received struct {
	stdout, stderr syncBuffer
	mu             sync.Mutex
	droppedLines   uint64
	droppedBytes   uint64
}

func (r *received) output() container.Output {
	return container.Output{Stdout: &r.stdout, Stderr: &r.stderr, Dropped: func(lines, bytes uint64) {
		r.mu.Lock()
		r.droppedLines += lines
		r.droppedBytes += bytes
		r.mu.Unlock()
	}}
}

// serveShim reads conn as the backend does, in the background.
func serveShim(t *testing.T, conn net.Conn, rcv *received) <-chan shimStatus {
	t.Helper()
	out := make(chan shimStatus, 1)
	go func() {
		st, err := readFrames(conn, nil, rcv.output(), discardLog{})
		conn.Close()
		if err != nil {
			st = shimStatus{Code: -99}
		}
		out <- st
	}()
	return out
}

type discardLog struct{}

func (discardLog) Warn(string, ...any) {}

// writeLines writes n numbered lines to w (a pipe the relay pumps) and
// reports when they are all written.
func writeLines(w *os.File, stream string, n int) <-chan error {
	done := make(chan error, 1)
	go func() {
		bw := bufio.NewWriterSize(w, 4096)
		for i := range n {
			fmt.Fprintf(bw, "%s line %06d of the app's output\n", stream, i)
		}
		err := bw.Flush()
		w.Close()
		done <- err
	}()
	return done
}

func pumpPipe(t *testing.T, r *relay, typ byte) (*os.File, *sync.WaitGroup) {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); r.pump(pr, typ) }()
	return pw, &wg
}

func within(t *testing.T, what string, d time.Duration, ch <-chan error) {
	t.Helper()
	select {
	case err := <-ch:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(d):
		t.Fatalf("%s did not finish within %s", what, d)
	}
}

func TestRelay_deliversEveryLineInOrderWhileAServerReads(t *testing.T) {
	shimEnd, serverEnd := unixPair(t)
	r := newRelay(16<<10, false) // small: the writers must wait for the reader, not lose lines
	r.attach(shimEnd, true)
	var rcv received
	status := serveShim(t, serverEnd, &rcv)
	outW, outDone := pumpPipe(t, r, frameStdout)
	errW, errDone := pumpPipe(t, r, frameStderr)
	const n = 20000
	within(t, "writing stdout", 30*time.Second, writeLines(outW, "out", n))
	within(t, "writing stderr", 30*time.Second, writeLines(errW, "err", n))
	outDone.Wait()
	errDone.Wait()
	r.finish(shimStatus{Code: 3})
	select {
	case st := <-status:
		if st.Code != 3 {
			t.Fatalf("exit status %+v, want code 3", st)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit frame")
	}
	for stream, got := range map[string]string{"out": rcv.stdout.String(), "err": rcv.stderr.String()} {
		lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
		if len(lines) != n {
			t.Fatalf("%s: %d lines, want %d", stream, len(lines), n)
		}
		for i, l := range lines {
			if want := fmt.Sprintf("%s line %06d of the app's output", stream, i); l != want {
				t.Fatalf("%s line %d is %q, want %q", stream, i, l, want)
			}
		}
	}
	if rcv.droppedLines != 0 {
		t.Fatalf("%d lines dropped with a server reading", rcv.droppedLines)
	}
	select {
	case <-r.delivered:
	case <-time.After(10 * time.Second):
		t.Fatal("the relay does not know the exit was delivered")
	}
}

func TestRelay_floodWithNobodyReadingNeverBlocksAndCountsTheDrops(t *testing.T) {
	const backlog = 64 << 10
	shimEnd, serverEnd := unixPair(t)
	r := newRelay(backlog, false)
	r.attach(shimEnd, true)
	// The server dies: its end closes; the relay notices at its next write.
	serverEnd.Close()
	outW, outDone := pumpPipe(t, r, frameStdout)
	const n = 100000 // ~4 MB: 60 times the backlog
	// The app writes everything, though nobody reads: never blocked.
	within(t, "writing with nobody reading", 30*time.Second, writeLines(outW, "out", n))
	outDone.Wait()

	// A new server connects and gets the backlog, the count, the exit.
	r.finish(shimStatus{Code: 0})
	shim2, server2 := unixPair(t)
	var rcv received
	status := serveShim(t, server2, &rcv)
	r.attach(shim2, false)
	select {
	case st := <-status:
		if st.Code != 0 {
			t.Fatalf("exit status %+v", st)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit frame for the second server")
	}
	got := rcv.stdout.String()
	if len(got) > backlog+shimReadChunk+frameHeader {
		t.Fatalf("received %d bytes of backlog, more than the bound %d", len(got), backlog)
	}
	delivered := uint64(strings.Count(got, "\n"))
	if rcv.droppedLines == 0 || delivered == 0 {
		t.Fatalf("delivered %d lines and dropped %d, want some of each", delivered, rcv.droppedLines)
	}
	// Whole reads are dropped: a line cut between two reads is counted
	// in both, so the count may exceed the lines lost by one per drop.
	if delivered+rcv.droppedLines < n {
		t.Fatalf("delivered %d + dropped %d lines < the %d written: lines lost without being counted", delivered, rcv.droppedLines, n)
	}
	if rcv.droppedBytes+uint64(len(got)) != uint64(n*len("out line 000000 of the app's output\n")) {
		t.Fatalf("delivered %d + dropped %d bytes, want the %d written", len(got), rcv.droppedBytes, n*len("out line 000000 of the app's output\n"))
	}
}

func TestShimState_roundTripsAndRejectsBadFiles(t *testing.T) {
	dir := t.TempDir()
	want := containerState{LeaseBase: 0x70010000, CgPath: "/pando/x/app-1", Limit: 64 << 20,
		Volume: "/data/cell/instances/g", RWMounts: []string{"/data/cell/instances/g/home"}, Overlay: true}
	if err := writeState(dir, want); err != nil {
		t.Fatal(err)
	}
	got, err := readState(dir)
	if err != nil || got.LeaseBase != want.LeaseBase || got.CgPath != want.CgPath || got.Limit != want.Limit ||
		got.Volume != want.Volume || len(got.RWMounts) != 1 || !got.Overlay {
		t.Fatalf("read %+v, %v; want %+v", got, err, want)
	}
	for name, body := range map[string]string{
		"not json":     "{",
		"no lease":     `{"cgroup":"/pando/x/a"}`,
		"unaligned":    `{"lease_base":12345,"cgroup":"/pando/x/a"}`,
		"relative cg":  `{"lease_base":1879048192,"cgroup":"pando/x"}`,
		"escaping cg":  `{"lease_base":1879048192,"cgroup":"/pando/../etc"}`,
		"relative vol": `{"lease_base":1879048192,"cgroup":"/pando/x/a","volume":"cell/x"}`,
	} {
		if err := os.WriteFile(filepath.Join(dir, stateFile), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := readState(dir); err == nil {
			t.Errorf("%s: %s read without error", name, body)
		}
	}
	if err := writeShimStatus(filepath.Join(dir, exitFile), shimStatus{Code: 137, Signaled: true}); err != nil {
		t.Fatal(err)
	}
	if st, err := readShimStatus(filepath.Join(dir, exitFile)); err != nil || st.Code != 137 || !st.Signaled {
		t.Fatalf("status %+v, %v", st, err)
	}
}

func TestReadFrames_refusesOversizedAndUnknownFrames(t *testing.T) {
	for name, data := range map[string][]byte{
		"oversized": {frameStdout, 0x7f, 0, 0, 0},
		"unknown":   encodeFrame('?', []byte("x")),
		"dropped":   encodeFrame(frameDropped, []byte("short")),
		"truncated": encodeFrame(frameStdout, []byte("hello"))[:7],
	} {
		if _, err := readFrames(bytes.NewReader(data), nil, container.Output{}, discardLog{}); err == nil {
			t.Errorf("%s: read without error", name)
		}
	}
}

// BenchmarkShim_startOverhead measures what the shim adds to a container
// start: running `true` through a shim (the job sent to the spare shim,
// settled, the exit frame read) against running it directly, and through
// a shim started on the spot (no spare ready: the exec of the binary). The shim
// is this test binary (TestMain), or the pando binary at $PANDO_BIN.
//
//	go test -run '^$' -bench BenchmarkShim_startOverhead ./internal/container/runc
func BenchmarkShim_startOverhead(b *testing.B) {
	truePath, err := exec.LookPath("true")
	if err != nil {
		b.Skip("no true binary")
	}
	shim := os.Getenv("PANDO_BIN")
	if shim == "" {
		if shim, err = os.Executable(); err != nil {
			b.Fatal(err)
		}
	}
	be := &Backend{shim: shim, shimDir: b.TempDir(), stateDir: b.TempDir(), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	defer be.closeSpare()
	d := bundle{dir: b.TempDir()}
	through := func(i int) time.Duration {
		began := time.Now()
		_, conn, err := be.startShim(fmt.Sprint("c", i), d, exec.Command(truePath))
		if err != nil {
			b.Fatal(err)
		}
		st, err := readFrames(conn, conn, container.Output{}, discardLog{})
		conn.Close()
		if err != nil || st.Code != 0 {
			b.Fatalf("through the shim: %+v %v", st, err)
		}
		return time.Since(began)
	}
	var direct, spare, cold time.Duration
	for i := 0; b.Loop(); i++ {
		began := time.Now()
		if err := exec.Command(truePath).Run(); err != nil {
			b.Fatal(err)
		}
		direct += time.Since(began)

		// With the spare ready, as a container start usually finds it.
		for {
			be.spareMu.Lock()
			ready := be.spare != nil
			be.spareMu.Unlock()
			if ready {
				break
			}
			be.refillSpare()
			time.Sleep(time.Millisecond)
		}
		// Started is not yet waiting: a container start finds a spare
		// that has had the time since the previous one.
		time.Sleep(300 * time.Millisecond)
		spare += through(2 * i)

		// Without one.
		be.spareMu.Lock()
		if be.spare != nil {
			be.spare.conn.Close()
			be.spare = nil
		}
		be.spareClosed = true
		be.spareMu.Unlock()
		cold += through(2*i + 1)
		be.spareMu.Lock()
		be.spareClosed = false
		be.spareMu.Unlock()
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
	b.ReportMetric(ms(direct), "direct-ms/op")
	b.ReportMetric(ms(spare), "spare-shim-ms/op")
	b.ReportMetric(ms(cold), "cold-shim-ms/op")
}
