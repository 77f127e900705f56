package pipe

import (
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"
)

// pair returns the two ends of a loopback TCP connection.
func pair(t testing.TB, ln net.Listener) (net.Conn, net.Conn) {
	t.Helper()
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			ch <- nil
			return
		}
		ch <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-ch
	if b == nil {
		t.Fatal("accept failed")
	}
	return a, b
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// join wires client <-> [a | Join | b] <-> server and returns the outer ends.
func join(t testing.TB, ln net.Listener, opts Options) (client, server net.Conn, done chan struct{}) {
	client, a := pair(t, ln)
	b, server := pair(t, ln)
	done = make(chan struct{})
	go func() {
		Join(a, b, opts)
		a.Close()
		b.Close()
		close(done)
	}()
	return client, server, done
}

func TestJoin_copiesBothWaysAndHalfCloses(t *testing.T) {
	ln := listen(t)
	client, server, done := join(t, ln, Options{})
	defer client.Close()
	defer server.Close()
	go func() {
		b, _ := io.ReadAll(server) // until the client's half-close arrives
		server.Write(append([]byte("pong:"), b...))
		server.Close()
	}()
	big := make([]byte, 3*bufSize+7) // more than one buffer
	for i := range big {
		big[i] = byte(i)
	}
	if _, err := client.Write(big); err != nil {
		t.Fatal(err)
	}
	client.(*net.TCPConn).CloseWrite()
	client.SetDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(client)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "pong:"+string(big) {
		t.Fatalf("got %d bytes back, want %d", len(got), len(big)+5)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Join did not return after both sides ended")
	}
}

func TestJoin_idleTimeoutClosesBoth(t *testing.T) {
	ln := listen(t)
	client, server, done := join(t, ln, Options{IdleTimeout: 400 * time.Millisecond})
	defer client.Close()
	defer server.Close()
	// Traffic keeps the pair open well past the timeout (12 x 100 ms
	// against 400 ms).
	for range 12 {
		client.Write([]byte("x"))
		server.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(server, make([]byte, 1)); err != nil {
			t.Fatalf("pair closed while active: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // activity spaced under the timeout
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("idle pair not closed")
	}
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := client.Read(make([]byte, 1)); err == nil {
		t.Fatal("client side still open")
	}
}

// TestJoin_idlePairsHoldNoBuffers: a thousand idle joined pairs cost far
// less heap than a copy buffer each.
func TestJoin_idlePairsHoldNoBuffers(t *testing.T) {
	ln := listen(t)
	const n = 500
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapInuse
	var ends []net.Conn
	var dones []chan struct{}
	for range n {
		c, s, d := join(t, ln, Options{})
		ends = append(ends, c, s)
		dones = append(dones, d)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	perPair := (int64(ms.HeapInuse) - int64(before)) / n
	if perPair > bufSize/2 {
		t.Errorf("an idle pair costs %d bytes of heap; a copy buffer is %d", perPair, bufSize)
	}
	var wg sync.WaitGroup
	for _, c := range ends {
		wg.Add(1)
		go func() { defer wg.Done(); c.Close() }()
	}
	wg.Wait()
	for _, d := range dones {
		<-d
	}
}
