package headbudget

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const small = 16 << 10

// serve runs an http.Server as the API's (64 KiB heads) on a loopback
// port through b (none: no budget); its handler answers the length of the
// query and of the body it read.
func serve(t *testing.T, b *Budget) string {
	t.Helper()
	return serveHooked(t, b, nil)
}

// serveHooked is serve with the server's ConnState hook.
func serveHooked(t *testing.T, b *Budget, hook func(net.Conn, http.ConnState)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, _ := io.Copy(io.Discard, r.Body)
			fmt.Fprintf(w, "query %d body %d", len(r.URL.RawQuery), n)
		}),
		ReadHeaderTimeout: time.Minute,
		MaxHeaderBytes:    64 << 10,
		ConnState:         hook,
	}
	served := ln
	if b != nil {
		served = b.Wrap(srv, ln)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(served) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	return ln.Addr().String()
}

// dial connects from 127.0.x.y, so that tests can stand for many clients.
func dial(t *testing.T, addr string, from net.IP) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: from}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func client(i int) net.IP { return net.IPv4(127, 0, byte(1+i/200), byte(1+i%200)) }

// eventually polls cond until it holds, failing after 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not so within 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// longQuery is a cf-CLI-like list of n guids in a URL query.
func longQuery(n int) string {
	guids := make([]string, n)
	for i := range guids {
		guids[i] = fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)
	}
	return "guids=" + strings.Join(guids, "%2C")
}

// get sends a GET of /v3/apps?query on c, with a token-sized
// Authorization header, and reads the answer.
func get(t *testing.T, c net.Conn, br *bufio.Reader, query string) (int, string) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET /v3/apps?%s HTTP/1.1\r\nHost: api\r\nAuthorization: bearer %s\r\n\r\n", query, strings.Repeat("t", 1500))
	return answer(t, br)
}

func answer(t *testing.T, br *bufio.Reader) (int, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// stall sends a large head that never ends.
func stall(t *testing.T, c net.Conn, size int) {
	t.Helper()
	if _, err := fmt.Fprintf(c, "GET /v3/apps HTTP/1.1\r\nHost: api\r\nX-Big: %s\r\n", strings.Repeat("b", size)); err != nil {
		t.Fatal(err)
	}
}

// Heads past Small take one of the slots until their request ends; past
// them a large head gets an immediate 503 that says why, while small heads
// (and large bodies behind them) are served as ever.
func TestBudget_largeHeadsPastTheSlotsGet503AndSmallOnesPass(t *testing.T) {
	b := New(Config{Small: small, Slots: 4, What: "the API"})
	addr := serve(t, b)
	for i := range 4 {
		stall(t, dial(t, addr, client(i)), small+1024)
	}
	eventually(t, "4 slots held", func() bool { return b.Held() == 4 })

	c := dial(t, addr, client(4))
	code, body := get(t, c, bufio.NewReader(c), longQuery(500))
	if code != 503 || !strings.Contains(body, "the API is reading too many large request heads (over 16 KiB) at once; retry, or send a smaller head") {
		t.Fatalf("a large head past the slots: %d %q", code, body)
	}
	if b.Refused() != 1 {
		t.Errorf("refused %d, want 1", b.Refused())
	}

	// A head just under Small, then a 256 KiB body in the same writes.
	c = dial(t, addr, client(5))
	br := bufio.NewReader(c)
	query := longQuery(300)
	if code, body := get(t, c, br, query); code != 200 || body != fmt.Sprintf("query %d body 0", len(query)) {
		t.Fatalf("a small head while the slots are taken: %d %q", code, body)
	}
	head := fmt.Sprintf("POST /v3/apps?%s HTTP/1.1\r\nHost: api\r\nContent-Length: %d\r\n\r\n", query, 256<<10)
	if len(head) > small {
		t.Fatalf("test head of %d bytes is not small", len(head))
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	go io.WriteString(c, head+strings.Repeat("x", 256<<10))
	if code, body := answer(t, br); code != 200 || body != fmt.Sprintf("query %d body %d", len(query), 256<<10) {
		t.Fatalf("a small head with a large body while the slots are taken: %d %q", code, body)
	}
	if b.Held() != 4 || b.Refused() != 1 {
		t.Fatalf("small heads changed the count: held %d, refused %d", b.Held(), b.Refused())
	}
}

// A cf-CLI-like URL listing 1500 guids (about 55 KB) is served; on a
// kept-alive connection its slot is given back when its request ends,
// not when the connection does. A head past 64 KiB is still net/http's
// to refuse.
func TestBudget_longURLIsServedAndGivesItsSlotBackPerRequest(t *testing.T) {
	b := New(Config{Small: small, Slots: 1, What: "the API"})
	addr := serve(t, b)
	c := dial(t, addr, client(0))
	br := bufio.NewReader(c)
	query := longQuery(1500)
	for range 3 {
		if code, body := get(t, c, br, query); code != 200 || body != fmt.Sprintf("query %d body 0", len(query)) {
			t.Fatalf("a long URL: %d %q", code, body)
		}
		eventually(t, "slot given back", func() bool { return b.Held() == 0 })
	}
	// The connection's slot is free for another client.
	c2 := dial(t, addr, client(1))
	if code, _ := get(t, c2, bufio.NewReader(c2), query); code != 200 {
		t.Fatalf("a long URL from another client: %d", code)
	}
	// Past MaxHeaderBytes net/http's own 431 still comes, and the slot
	// comes back.
	eventually(t, "slot given back", func() bool { return b.Held() == 0 })
	c3 := dial(t, addr, client(2))
	if code, _ := get(t, c3, bufio.NewReader(c3), longQuery(2000)); code != 431 {
		t.Fatalf("a head past 64 KiB: %d, want 431", code)
	}
	eventually(t, "slot given back", func() bool { return b.Held() == 0 })
}

// One client address holds at most PerClient of the slots.
func TestBudget_oneAddressTakesAtMostItsShare(t *testing.T) {
	b := New(Config{Small: small, Slots: 8, PerClient: 2, What: "the API"})
	addr := serve(t, b)
	one := net.IPv4(127, 0, 0, 1)
	stall(t, dial(t, addr, one), small+1024)
	stall(t, dial(t, addr, one), small+1024)
	eventually(t, "2 slots held", func() bool { return b.Held() == 2 })
	c := dial(t, addr, one)
	code, body := get(t, c, bufio.NewReader(c), longQuery(500))
	if code != 503 || !strings.Contains(body, "too many large request heads (over 16 KiB) from 127.0.0.1 at once (limit 2)") {
		t.Fatalf("a third large head from one address: %d %q", code, body)
	}
	stall(t, dial(t, addr, client(1)), small+1024)
	eventually(t, "another address's head holds a slot", func() bool { return b.Held() == 3 })
}

// 400 connections trickling 60 KB heads that never end hold the server's
// heap to the slots' share: without the budget they take about 30 MB, and
// that grows with the connections.
func TestBudget_boundsTheMemoryOfTrickledHeads(t *testing.T) {
	const n, slots = 400, 8
	b := New(Config{Small: small, Slots: slots, What: "the API"})
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapInuse
	var closed atomic.Int64
	addr := serveHooked(t, b, func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			closed.Add(1)
		}
	})
	for i := range n {
		stall(t, dial(t, addr, client(i)), 60<<10)
	}
	// A refused connection is closed after its 503 and at most 2 s of
	// reading what the client still sends.
	eventually(t, "all heads held or refused and closed", func() bool {
		return b.Held() == slots && b.Refused() == n-slots && closed.Load() == n-slots
	})
	runtime.GC()
	runtime.GC() // and the pools' victims
	runtime.ReadMemStats(&ms)
	grew := int64(ms.HeapInuse) - int64(before)
	t.Logf("heap grew %.1f MB for %d connections", float64(grew)/1e6, n)
	if grew > 12e6 {
		t.Fatalf("heap grew %.1f MB for %d trickled 60 KB heads, want under 12 MB", float64(grew)/1e6, n)
	}
}

// The blank line that ends a head is found however the reads split it,
// with CRLF or bare LF line ends.
func TestEndScan_findsTheHeadsEnd(t *testing.T) {
	for _, tc := range []struct {
		in   string
		head int // bytes of the head, -1: not ended
	}{
		{"GET / HTTP/1.1\r\nHost: x\r\n\r\nbody\r\n\r\n", 27},
		{"GET / HTTP/1.1\nHost: x\n\nbody", 24},
		{"GET / HTTP/1.1\r\nHost: x\n\r\nbody", 26},
		{"GET / HTTP/1.1\r\nHost: x\r\n", -1},
		{"GET / HTTP/1.1\r\nHost: x\r\n\r", -1},
		{"GET / HTTP/1.1\r\nX: \r\r\n", -1},
	} {
		for split := range len(tc.in) + 1 {
			var s endScan
			got := -1
			k, ended := s.feed([]byte(tc.in[:split]))
			if ended {
				got = k
			} else if k, ended = s.feed([]byte(tc.in[split:])); ended {
				got = split + k
			}
			if got != tc.head {
				t.Errorf("%q split at %d: head of %d bytes, want %d", tc.in, split, got, tc.head)
			}
		}
	}
}
