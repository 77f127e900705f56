package runc

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pandoplatform/pando/internal/container"
)

// dyingWriter is the output side of a server that is killed between two
// frames: the first Write once it has taken killAt bytes (with a
// connection given: kill) closes the server's connection, as the kernel
// does for a dead process, and from then on it takes nothing.
type dyingWriter struct {
	killAt int
	kill   chan net.Conn // the connection to close, given when known

	mu   sync.Mutex
	buf  bytes.Buffer
	dead bool
}

func newDyingWriter(killAt int) *dyingWriter {
	return &dyingWriter{killAt: killAt, kill: make(chan net.Conn, 1)}
}

func (w *dyingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.dead && w.buf.Len() >= w.killAt {
		(<-w.kill).Close()
		w.dead = true
	}
	if !w.dead {
		w.buf.Write(p)
	}
	return len(p), nil
}

func (w *dyingWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// readAcking reads conn as a backend that acknowledges does, in the
// background; hello says so first (a server that connects to a shim).
func readAcking(t *testing.T, conn net.Conn, hello bool, out container.Output) <-chan error {
	t.Helper()
	if hello {
		if _, err := conn.Write(helloFrame()); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() {
		st, err := readFrames(conn, conn, out, discardLog{})
		conn.Close()
		if err == nil && st.Code != 0 {
			err = fmt.Errorf("exit %+v", st)
		}
		done <- err
	}()
	return done
}

// awaitDetached waits until the relay has let go of its server (read its
// last acks and its end).
func awaitDetached(t *testing.T, r *relay) {
	t.Helper()
	eventuallyRunc(t, "the relay lets go of the dead server", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.conn == nil && r.draining == 0
	})
}

func allLines(stream string, n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "%s line %06d of the app's output\n", stream, i)
	}
	return b.String()
}

func TestRelay_replaysWhatAKilledServerReadButNeverPassedOn(t *testing.T) {
	r := newRelay(1<<20, true)
	shim1, server1 := unixPair(t)
	r.attach(shim1, true)
	w1 := newDyingWriter(100 << 10)
	w1.kill <- server1
	first := readAcking(t, server1, false, container.Output{Stdout: w1})
	outW, outDone := pumpPipe(t, r, frameStdout)
	const n = 20000 // ~720 KB: within the bound, past where the server dies
	within(t, "writing stdout", 30*time.Second, writeLines(outW, "out", n))
	if err := <-first; err == nil {
		t.Fatal("the killed server read to the end")
	}
	outDone.Wait()
	r.finish(shimStatus{Code: 0})
	awaitDetached(t, r)

	shim2, server2 := unixPair(t)
	var out2 syncBuffer
	second := readAcking(t, server2, true, container.Output{Stdout: &out2})
	r.attach(shim2, false)
	within(t, "the second server reads to the exit", 10*time.Second, second)

	got, want := w1.String()+out2.String(), allLines("out", n)
	if got != want {
		t.Fatalf("the two servers passed on %d bytes (%d + %d), want the %d written, each once, in order",
			len(got), len(w1.String()), len(out2.String()), len(want))
	}
	if len(w1.String()) == 0 || len(out2.String()) == 0 {
		t.Fatalf("first server %d bytes, second %d: the kill was not mid-stream", len(w1.String()), len(out2.String()))
	}
	select {
	case <-r.delivered:
	case <-time.After(10 * time.Second):
		t.Fatal("the relay does not know the exit was delivered")
	}
}

func TestRelay_anExitReadButNotAcknowledgedWaitsForTheNextServer(t *testing.T) {
	r := newRelay(1<<20, true)
	shim1, server1 := unixPair(t)
	r.attach(shim1, true)
	r.push(frameStdout, []byte("the staging's last words\n"))
	r.finish(shimStatus{Code: 223})
	// The server reads the frames, then is killed before passing them on.
	br := bufio.NewReader(server1)
	if _, err := br.Peek(frameHeader); err != nil {
		t.Fatal(err)
	}
	server1.Close()
	awaitDetached(t, r)
	select {
	case <-r.delivered:
		t.Fatal("output nobody acknowledged taken as delivered")
	default:
	}
	shim2, server2 := unixPair(t)
	var out2 syncBuffer
	if _, err := server2.Write(helloFrame()); err != nil {
		t.Fatal(err)
	}
	r.attach(shim2, false)
	st, err := readFrames(server2, server2, container.Output{Stdout: &out2}, discardLog{})
	server2.Close()
	if err != nil || st.Code != 223 || out2.String() != "the staging's last words\n" {
		t.Fatalf("second server: %q, exit %+v, %v", out2.String(), st, err)
	}
	select {
	case <-r.delivered:
	case <-time.After(10 * time.Second):
		t.Fatal("the relay does not know the exit was delivered")
	}
}

func TestRelay_floodWithNoServerKeepsTheNewestAndCountsTheOldest(t *testing.T) {
	const backlog = 64 << 10
	r := newRelay(backlog, true)
	shim1, server1 := unixPair(t)
	r.attach(shim1, true)
	var events syncBuffer // "o" for output, "d" for a count, in order
	w1 := newDyingWriter(1)
	w1.kill <- server1
	first := readAcking(t, server1, false, container.Output{Stdout: w1})
	outW, outDone := pumpPipe(t, r, frameStdout)
	const n = 100000 // ~3.6 MB: 55 times the backlog
	within(t, "writing with nobody reading", 30*time.Second, writeLines(outW, "out", n))
	<-first
	outDone.Wait()
	r.finish(shimStatus{Code: 0})
	awaitDetached(t, r)

	shim2, server2 := unixPair(t)
	var out2 syncBuffer
	var droppedLines, droppedBytes uint64
	second := readAcking(t, server2, true, container.Output{
		Stdout: io.MultiWriter(&out2, writerFunc(func(p []byte) { events.Write([]byte("o")) })),
		Dropped: func(lines, bytes uint64) {
			droppedLines += lines
			droppedBytes += bytes
			events.Write([]byte("d"))
		}})
	r.attach(shim2, false)
	within(t, "the second server reads to the exit", 10*time.Second, second)

	got, all := out2.String(), allLines("out", n)
	if len(got) > backlog {
		t.Fatalf("the relay held %d bytes, more than its bound %d", len(got), backlog)
	}
	if !strings.HasSuffix(all, got) || len(got) == 0 {
		t.Fatalf("the second server got %d bytes that are not the newest output", len(got))
	}
	if ev := events.String(); !strings.HasPrefix(ev, "d") || strings.Count(ev, "d") != 1 {
		t.Fatalf("events %q: want one count of the dropped output, before what is left", ev)
	}
	if total := uint64(len(w1.String())) + droppedBytes + uint64(len(got)); total != uint64(len(all)) {
		t.Fatalf("first %d + dropped %d + second %d bytes, want the %d written", len(w1.String()), droppedBytes, len(got), len(all))
	}
	// Whole reads are dropped: a line cut between two reads is counted
	// in both.
	if lines := uint64(strings.Count(w1.String()+got, "\n")) + droppedLines; lines < n {
		t.Fatalf("%d lines passed on or counted, want at least the %d written", lines, n)
	}
}

func TestRelay_aServerThatNeverSaysHelloGetsProtocolOne(t *testing.T) {
	r := newRelay(1<<20, true) // started by a server that acknowledges
	r.helloWait = 50 * time.Millisecond
	shim1, server1 := unixPair(t)
	r.attach(shim1, true)
	server1.Close() // it died at once
	r.push(frameStdout, []byte("one\n"))
	r.push(frameStderr, []byte("two\n"))
	r.finish(shimStatus{Code: 7})
	awaitDetached(t, r)
	// An older server adopts it: it reads frames and says nothing.
	shim2, server2 := unixPair(t)
	r.attach(shim2, false)
	frames, err := readProtocolOne(server2)
	server2.Close()
	if err != nil || frames != `o"one\n" e"two\n" x{"code":7,"signaled":false}` {
		t.Fatalf("the older server read %s, %v", frames, err)
	}
	select {
	case <-r.delivered:
	case <-time.After(10 * time.Second):
		t.Fatal("the relay does not know the exit was delivered")
	}
}

// readProtocolOne reads frames as a server of protocol 1 did, refusing
// any other, until the exit frame; it returns them in a line.
func readProtocolOne(r io.Reader) (string, error) {
	var got []string
	for {
		var hdr [frameHeader]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return strings.Join(got, " "), err
		}
		p := make([]byte, int(hdr[1])<<24|int(hdr[2])<<16|int(hdr[3])<<8|int(hdr[4]))
		if _, err := io.ReadFull(r, p); err != nil {
			return strings.Join(got, " "), err
		}
		switch hdr[0] {
		case frameStdout, frameStderr:
			got = append(got, fmt.Sprintf("%c%q", hdr[0], p))
		case frameExit:
			return strings.Join(append(got, fmt.Sprintf("%c%s", hdr[0], p)), " "), nil
		default:
			return strings.Join(got, " "), fmt.Errorf("frame type %q", hdr[0])
		}
	}
}

func TestReadFrames_acknowledgesNumberedFramesOnlyAndDropsRepeats(t *testing.T) {
	numbered := func(typ byte, seq uint64, data string) []byte {
		return append(encodeHeader(entry{seq: seq, typ: typ, data: []byte(data)}, true), data...)
	}
	var stream bytes.Buffer
	stream.Write(numbered(frameStdout, 1, "a"))
	stream.Write(numbered(frameStderr, 2, "b"))
	stream.Write(numbered(frameStderr, 2, "b"))
	stream.Write(numbered(frameStdout, 1, "a"))
	stream.Write(numbered(frameStdout, 4, "c"))
	stream.Write(encodeFrame(frameExit, []byte(`{"code":0}`)))
	var out, errOut, acks bytes.Buffer
	if _, err := readFrames(&stream, &acks, container.Output{Stdout: &out, Stderr: &errOut}, discardLog{}); err != nil {
		t.Fatal(err)
	}
	if out.String() != "ac" || errOut.String() != "b" {
		t.Fatalf("stdout %q stderr %q, want each frame once", out.String(), errOut.String())
	}
	want := string(encodeAck(1)) + string(encodeAck(2)) + string(encodeAck(4))
	if acks.String() != want {
		t.Fatalf("acks %q, want %q", acks.String(), want)
	}

	// An older shim's frames: nothing goes back (it never reads).
	stream.Reset()
	acks.Reset()
	stream.Write(encodeFrame(frameStdout, []byte("old\n")))
	stream.Write(encodeFrame(frameExit, []byte(`{"code":0}`)))
	out.Reset()
	if _, err := readFrames(&stream, &acks, container.Output{Stdout: &out}, discardLog{}); err != nil || out.String() != "old\n" {
		t.Fatalf("read %q, %v", out.String(), err)
	}
	if acks.Len() != 0 {
		t.Fatalf("acks %q sent to a shim of protocol 1", acks.String())
	}
}

type writerFunc func(p []byte)

func (f writerFunc) Write(p []byte) (int, error) { f(p); return len(p), nil }

func TestAwaitCollection_waitsLongerWhileItHoldsOutputNobodyAcknowledged(t *testing.T) {
	bundle := t.TempDir()
	idle := newRelay(1<<20, true)
	idle.finish(shimStatus{Code: 0})
	began := time.Now()
	if why := awaitCollection(idle, bundle, 20*time.Millisecond, 10*time.Second); why == "" || time.Since(began) >= 10*time.Second {
		t.Fatalf("with nothing held: %q after %s, want a timeout after the short linger", why, time.Since(began))
	}

	holding := newRelay(1<<20, true)
	holding.push(frameStdout, []byte("the only copy\n"))
	holding.finish(shimStatus{Code: 0})
	began = time.Now()
	const held = 300 * time.Millisecond
	if why := awaitCollection(holding, bundle, 20*time.Millisecond, held); !strings.Contains(why, "output held") || time.Since(began) < held {
		t.Fatalf("holding output: %q after %s, want the timeout of the longer linger %s", why, time.Since(began), held)
	}

	// A server takes it all meanwhile: done at once.
	shim, server := unixPair(t)
	holding.attach(shim, false)
	var out syncBuffer
	done := readAcking(t, server, true, container.Output{Stdout: &out})
	if why := awaitCollection(holding, bundle, 10*time.Second, 20*time.Second); why != "" {
		t.Fatalf("with a server collecting: %q", why)
	}
	within(t, "the server reads to the exit", 10*time.Second, done)
	if out.String() != "the only copy\n" {
		t.Fatalf("the server got %q", out.String())
	}
}
