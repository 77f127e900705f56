package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pandoplatform/pando/internal/headbudget"
)

// testTimeouts are short so the tests are quick; the server scales the
// same way at the defaults.
var testTimeouts = APITimeouts{
	ReadHeader:   300 * time.Millisecond,
	Idle:         300 * time.Millisecond,
	BodyWindow:   300 * time.Millisecond,
	BodyMinBytes: 1 << 10,
}

// serveAPI runs newAPIServer (its heads bounded as the platform does) on a loopback port with h and testTimeouts
// and returns its address.
func serveAPI(t *testing.T, h http.Handler) string {
	t.Helper()
	return serveAPIWith(t, h, testTimeouts)
}

// serveAPIWith is serveAPI with timeouts to.
func serveAPIWith(t *testing.T, h http.Handler, to APITimeouts) string {
	t.Helper()
	addr, _ := serveAPIHeads(t, h, to)
	return addr
}

// serveAPIHeads is serveAPIWith that returns the budget of its heads too.
func serveAPIHeads(t *testing.T, h http.Handler, to APITimeouts) (string, *headbudget.Budget) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newAPIServer(h, to, nil)
	heads := apiHeads()
	served := heads.Wrap(srv, ln)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(served) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	return ln.Addr().String(), heads
}

// bodyReader is a handler that reads the whole body and reports how it
// ended.
type bodyReader struct {
	errs chan error
}

func (b bodyReader) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n, err := io.Copy(io.Discard, r.Body)
	b.errs <- err
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "read %d bytes", n)
}

// waitClosed reads from conn until the server closes it, and fails if
// that takes longer than within.
func waitClosed(t *testing.T, conn net.Conn, within time.Duration) string {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(within))
	got, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server kept the connection open for %s (read so far %q)", within, got)
	}
	return string(got)
}

func TestAPIServer_cutsOffABodyTrickledAByteAtATime(t *testing.T) {
	h := bodyReader{errs: make(chan error, 1)}
	addr := serveAPI(t, h)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v3/packages/x/upload HTTP/1.1\r\nHost: api\r\nContent-Length: 1000\r\n\r\n")
	// One byte every 100ms: 3 bytes per 300ms window, far below 1 KiB.
	var wg sync.WaitGroup
	ctx, stop := context.WithCancel(context.Background())
	defer func() { stop(); wg.Wait() }()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 1000 && ctx.Err() == nil; i++ {
			if _, err := conn.Write([]byte("x")); err != nil {
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	select {
	case err := <-h.errs:
		if err == nil || !strings.Contains(err.Error(), "request body too slow") {
			t.Fatalf("the handler's body read ended with %v, want the slow-body error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a body of one byte per 100ms was not cut off within 10s")
	}
	stop()
	if resp := waitClosed(t, conn, 5*time.Second); !strings.Contains(resp, "400 Bad Request") {
		t.Errorf("response %q, want a 400 saying the body was too slow", resp)
	}
}

func TestAPIServer_slowButSteadyUploadCompletes(t *testing.T) {
	h := bodyReader{errs: make(chan error, 1)}
	// 2 KiB every 100ms: slow, yet more than 1 KiB per 1s window, for
	// three windows in a row. The window is wider than testTimeouts' so a
	// stall of this test's process on a loaded machine (the sender or the
	// server descheduled for a few hundred ms) is not taken for a slow
	// client: only one longer than the window is.
	to := testTimeouts
	to.BodyWindow = time.Second
	addr := serveAPIWith(t, h, to)
	const chunks = 30
	pr, pw := io.Pipe()
	go func() {
		chunk := strings.Repeat("y", 2<<10)
		for range chunks {
			if _, err := io.WriteString(pw, chunk); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", "http://"+addr+"/upload", pr)
	req.ContentLength = chunks * 2 << 10
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != fmt.Sprintf("read %d bytes", chunks*2<<10) {
		t.Fatalf("slow upload: %s %q", resp.Status, body)
	}
	if err := <-h.errs; err != nil {
		t.Fatal(err)
	}
}

func TestAPIServer_handlersOutliveTheBodyDeadline(t *testing.T) {
	// A handler that reads its body, then works for several windows
	// (assembling a package), and one that streams for several windows
	// (a log stream): neither is cut off.
	mux := http.NewServeMux()
	mux.HandleFunc("POST /work", func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(4 * testTimeouts.BodyWindow):
		}
		io.WriteString(w, "done")
	})
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		for i := range 8 {
			fmt.Fprintf(w, "data: %d\n\n", i)
			if err := rc.Flush(); err != nil {
				return
			}
			select {
			case <-r.Context().Done():
				return
			case <-time.After(testTimeouts.BodyWindow / 2):
			}
		}
	})
	addr := serveAPI(t, mux)
	resp, err := http.Post("http://"+addr+"/work", "application/octet-stream", strings.NewReader("some bits"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "done" {
		t.Errorf("work after the body: %s %q", resp.Status, body)
	}
	resp, err = http.Get("http://" + addr + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	events := 0
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") {
			events++
		}
	}
	resp.Body.Close()
	if events != 8 {
		t.Errorf("stream delivered %d of 8 events (err %v)", events, sc.Err())
	}
}

func TestAPIServer_closesSlowHeadersAndIdleConnections(t *testing.T) {
	addr := serveAPI(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: api\r\n") // never ends its headers
	waitClosed(t, conn, 5*time.Second)

	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	fmt.Fprintf(idle, "GET / HTTP/1.1\r\nHost: api\r\n\r\n")
	if got := waitClosed(t, idle, 5*time.Second); !strings.Contains(got, "200 OK") {
		t.Errorf("kept-alive connection: read %q, want a 200 and then the close", got)
	}
}

// TestAPIServer_clientThatStopsReadingIsCutOff: a response too big for the
// socket buffers, to a client that reads nothing, fails its write within
// the window instead of holding the handler.
func TestAPIServer_clientThatStopsReadingIsCutOff(t *testing.T) {
	done := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 64<<10)
		for range 4096 { // 256 MiB: far past any socket buffer
			if _, err := w.Write(chunk); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	})
	// A window well above the slow reader's 20ms pauses below, so that a
	// stall of this process on a loaded machine is not taken for a client
	// that stopped reading.
	to := testTimeouts
	to.WriteWindow = time.Second
	conn, err := net.Dial("tcp", serveAPIWith(t, h, to))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("256 MiB written to a client that read nothing")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the handler is still writing to a client that stopped reading")
	}
	// A client that reads, slowly, gets everything.
	done2 := make(chan error, 1)
	h2 := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 64<<10)
		for range 32 {
			if _, err := w.Write(chunk); err != nil {
				done2 <- err
				return
			}
		}
		done2 <- nil
	})
	addr := serveAPIWith(t, h2, to)
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 256<<10)
	total := 0
	for {
		n, err := resp.Body.Read(buf)
		total += n
		if err != nil {
			break
		}
		time.Sleep(20 * time.Millisecond) // a slow reader, well inside the window
	}
	if err := <-done2; err != nil || total != 32*64<<10 {
		t.Fatalf("slow reader got %d bytes, handler: %v", total, err)
	}
}

// The API's listener reads at most apiLargeHeads heads past 16 KiB at
// once, apiLargeHeadsPerClient from one address: past them a large head
// gets an immediate 503 that says why, while small heads are served, and
// a cf-CLI-like URL of 1500 guids is served once a slot is free.
func TestAPIServer_boundsLargeHeadsAndServesLongURLs(t *testing.T) {
	addr, heads := serveAPIHeads(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%d guids", len(strings.Split(r.URL.Query().Get("guids"), ",")))
	}), APITimeouts{})
	dial := func(ip net.IP) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	guids := make([]string, 1500)
	for i := range guids {
		guids[i] = fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)
	}
	long := "/v3/apps?guids=" + strings.Join(guids, ",")
	get := func(c net.Conn, path string) (int, string) {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: api\r\nAuthorization: bearer %s\r\n\r\n", path, strings.Repeat("t", 1500))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	waitHeld := func(want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for heads.Held() != want {
			if time.Now().After(deadline) {
				t.Fatalf("large-head slots held: %d, want %d", heads.Held(), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if code, body := get(dial(net.IPv4(127, 0, 3, 1)), long); code != 200 || body != "1500 guids" {
		t.Fatalf("a long URL: %d %q", code, body)
	}
	waitHeld(0)

	// Large heads that never end, from a few addresses; one more from
	// the same address is refused.
	var stalled []net.Conn
	for i := range apiLargeHeads {
		c := dial(net.IPv4(127, 0, 4, byte(1+i/apiLargeHeadsPerClient)))
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: api\r\n", long)
		stalled = append(stalled, c)
	}
	waitHeld(apiLargeHeads)
	if code, body := get(dial(net.IPv4(127, 0, 4, 1)), long); code != 503 ||
		!strings.Contains(body, fmt.Sprintf("too many large request heads (over 16 KiB) from 127.0.4.1 at once (limit %d)", apiLargeHeadsPerClient)) {
		t.Fatalf("a large head past one address's share: %d %q", code, body)
	}
	if code, body := get(dial(net.IPv4(127, 0, 3, 2)), long); code != 503 ||
		!strings.Contains(body, "the API is reading too many large request heads (over 16 KiB) at once; retry, or send a smaller head") {
		t.Fatalf("a large head past the slots: %d %q", code, body)
	}
	if code, body := get(dial(net.IPv4(127, 0, 3, 3)), "/v3/apps?guids="+strings.Join(guids[:300], ",")); code != 200 || body != "300 guids" {
		t.Fatalf("a small head while the large-head slots are taken: %d %q", code, body)
	}
	stalled[0].Close()
	waitHeld(apiLargeHeads - 1)
	if code, body := get(dial(net.IPv4(127, 0, 3, 4)), long); code != 200 || body != "1500 guids" {
		t.Fatalf("a long URL once a slot is free: %d %q", code, body)
	}
}
