package drain

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
)

// memSink records what reaches the log store.
type memSink struct {
	mu    sync.Mutex
	lines []pando.LogEnvelope
}

func (s *memSink) Emit(e pando.LogEnvelope) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e.Payload = append([]byte(nil), e.Payload...)
	s.lines = append(s.lines, e)
}

func (s *memSink) find(sourceType, contains string) (pando.LogEnvelope, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.lines {
		if e.SourceType == sourceType && strings.Contains(string(e.Payload), contains) {
			return e, true
		}
	}
	return pando.LogEnvelope{}, false
}

func (s *memSink) all(sourceType string) []pando.LogEnvelope {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []pando.LogEnvelope
	for _, e := range s.lines {
		if e.SourceType == sourceType {
			out = append(out, e)
		}
	}
	return out
}

type staticBindings struct {
	mu sync.Mutex
	bs []Binding
}

func (s *staticBindings) SyslogDrains(context.Context) ([]Binding, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Binding(nil), s.bs...), nil
}

func (s *staticBindings) set(bs ...Binding) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bs = bs
}

// syslogListener accepts connections on 127.0.0.1 and sends each
// octet-counted message it reads on msgs.
func syslogListener(t *testing.T, ln net.Listener) <-chan string {
	msgs, _ := syslogServer(t, ln)
	return msgs
}

// syslogServer is syslogListener with a function that closes the
// listener and every connection it accepted.
func syslogServer(t *testing.T, ln net.Listener) (<-chan string, func()) {
	t.Helper()
	msgs := make(chan string, 1000)
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	closeAll := func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}
	t.Cleanup(closeAll)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					lenStr, err := br.ReadString(' ')
					if err != nil {
						return
					}
					n, err := strconv.Atoi(strings.TrimSuffix(lenStr, " "))
					if err != nil || n <= 0 || n > 1<<20 {
						msgs <- "BAD FRAME " + lenStr
						return
					}
					buf := make([]byte, n)
					if _, err := io.ReadFull(br, buf); err != nil {
						return
					}
					msgs <- string(buf)
				}
			}()
		}
	}()
	return msgs, closeAll
}

func startForwarder(t *testing.T, cfg Config) *Forwarder {
	t.Helper()
	f := New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	if err := f.Refresh(rctx); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	return f
}

func recv(t *testing.T, msgs <-chan string) string {
	t.Helper()
	select {
	case m := <-msgs:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no syslog message within 10s")
		return ""
	}
}

func TestForwarder_syslogTCPSendsCFsRFC5424Format(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	msgs := syslogListener(t, ln)
	sink := &memSink{}
	bindings := &staticBindings{bs: []Binding{{AppGUID: "app-1", URL: "syslog://" + ln.Addr().String(), Hostname: Hostname("my org", "dev", "web")}}}
	f := startForwarder(t, Config{Sink: sink, Bindings: bindings})

	ts := time.Date(2026, 12, 6, 13, 30, 0, 123456000, time.UTC)
	buf := []byte("hello from the app")
	f.Emit(pando.LogEnvelope{Timestamp: ts, SourceID: "app-1", InstanceID: "0", SourceType: pando.LogSourceApp, Type: "OUT", Payload: buf})
	copy(buf, "XXXXX") // the emitter reuses its buffer
	f.Emit(pando.LogEnvelope{Timestamp: ts, SourceID: "app-1", InstanceID: "2", SourceType: pando.LogSourceRouter, Type: "ERR", Payload: []byte("oops\n")})
	f.Emit(pando.LogEnvelope{Timestamp: ts, SourceID: "other-app", SourceType: pando.LogSourceApp, Payload: []byte("not drained")})

	want := []string{
		"<14>1 2026-12-06T13:30:00.123456Z my-org.dev.web app-1 [APP/PROC/WEB/0] - - hello from the app\n",
		"<11>1 2026-12-06T13:30:00.123456Z my-org.dev.web app-1 [RTR/2] - - oops\n",
	}
	for _, w := range want {
		if got := recv(t, msgs); got != w {
			t.Errorf("drain got\n%q\nwant\n%q", got, w)
		}
	}
	if _, ok := sink.find(pando.LogSourceApp, "not drained"); !ok {
		t.Error("lines of apps without drains must still reach the log store")
	}
	if _, ok := sink.find(pando.LogSourceApp, "hello from the app"); !ok {
		t.Error("drained lines must reach the log store too")
	}
}

func TestForwarder_syslogTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(nil) // only for its certificate
	srv.StartTLS()
	defer srv.Close()
	cert := srv.TLS.Certificates[0]
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	msgs := syslogListener(t, ln)
	bindings := &staticBindings{bs: []Binding{{AppGUID: "app-1", URL: "syslog-tls://" + ln.Addr().String(), Hostname: "o.s.a"}}}
	f := startForwarder(t, Config{Sink: &memSink{}, Bindings: bindings, TLS: &tls.Config{RootCAs: pool}})
	f.Emit(pando.LogEnvelope{SourceID: "app-1", InstanceID: "0", SourceType: pando.LogSourceStaging, Payload: []byte("staging line")})
	if got := recv(t, msgs); !strings.HasSuffix(got, " o.s.a app-1 [STG/0] - - staging line\n") {
		t.Errorf("got %q", got)
	}
}

func TestForwarder_httpsPostsEachMessage(t *testing.T) {
	msgs := make(chan string, 10)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		msgs <- r.Method + " " + r.URL.Path + " " + string(b)
	}))
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	bindings := &staticBindings{bs: []Binding{{AppGUID: "app-1", URL: srv.URL + "/logs?token=x", Hostname: "o.s.a"}}}
	f := startForwarder(t, Config{Sink: &memSink{}, Bindings: bindings, TLS: &tls.Config{RootCAs: pool}})
	f.Emit(pando.LogEnvelope{SourceID: "app-1", InstanceID: "1", SourceType: pando.LogSourceApp, Payload: []byte("one")})
	f.Emit(pando.LogEnvelope{SourceID: "app-1", InstanceID: "1", SourceType: pando.LogSourceApp, Payload: []byte("two")})
	for _, w := range []string{"one", "two"} {
		got := recv(t, msgs)
		if !strings.HasPrefix(got, "POST /logs <14>1 ") || !strings.HasSuffix(got, " o.s.a app-1 [APP/PROC/WEB/1] - - "+w+"\n") {
			t.Errorf("got %q, want a POST of the %q message", got, w)
		}
	}
}

// A dead drain neither blocks Emit nor loses lines silently: they are
// dropped past the queue's bound and the app's log says how many.
func TestForwarder_deadDrainDropsAndReports(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: every connect is refused
	sink := &memSink{}
	bindings := &staticBindings{bs: []Binding{{AppGUID: "app-1", URL: "syslog://user:secret@" + addr, Hostname: "o.s.a"}}}
	f := startForwarder(t, Config{Sink: sink, Bindings: bindings, QueueLines: 10, NoticeInterval: 50 * time.Millisecond})

	const n = 5000
	start := time.Now()
	for i := range n {
		f.Emit(pando.LogEnvelope{SourceID: "app-1", SourceType: pando.LogSourceApp, Payload: []byte("line " + strconv.Itoa(i))})
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("emitting %d lines to a dead drain took %v: Emit must not wait for the drain", n, d)
	}
	// Every line is lost (none can be delivered), and the notices add up
	// to all of them.
	deadline := time.Now().Add(10 * time.Second)
	for {
		total, notices := 0, sink.all(SourceTypeDrain)
		for _, e := range notices {
			msg := string(e.Payload)
			if strings.Contains(msg, "secret") {
				t.Fatalf("notice shows the drain's credentials: %q", msg)
			}
			if e.SourceID != "app-1" {
				t.Fatalf("notice went to %q", e.SourceID)
			}
			var dropped int
			if _, err := fmt.Sscanf(msg, "Dropped %d log messages", &dropped); err != nil {
				t.Fatalf("notice %q: %v", msg, err)
			}
			total += dropped
		}
		if total == n {
			break
		}
		if total > n || time.Now().After(deadline) {
			t.Fatalf("notices report %d lines dropped, want %d", total, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A drain that comes back gets the lines queued while it was away.
func TestForwarder_reconnectsAfterDrainRestarts(t *testing.T) {
	// An address of the test's own (127.A.B.C), so no other process on
	// the machine takes the port while the drain is down.
	ip := fmt.Sprintf("127.%d.%d.%d", 1+rand.IntN(254), 1+rand.IntN(254), 2+rand.IntN(253))
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	msgs, stopDrain := syslogServer(t, ln)
	bindings := &staticBindings{bs: []Binding{{AppGUID: "app-1", URL: "syslog://" + addr, Hostname: "o.s.a"}}}
	f := startForwarder(t, Config{Sink: &memSink{}, Bindings: bindings, MaxBackoff: 100 * time.Millisecond})
	f.Emit(pando.LogEnvelope{SourceID: "app-1", SourceType: pando.LogSourceApp, Payload: []byte("first")})
	if got := recv(t, msgs); !strings.HasSuffix(got, "first\n") {
		t.Fatalf("got %q", got)
	}
	stopDrain() // the drain goes away with its connection
	// Restart: a new listener on the same address, once it is free.
	var ln2 net.Listener
	deadline := time.Now().Add(5 * time.Second)
	for ln2 == nil {
		if ln2, err = net.Listen("tcp", addr); err != nil {
			if time.Now().After(deadline) {
				t.Fatalf("address %s not free again: %v", addr, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	msgs2 := syslogListener(t, ln2)
	// Lines keep coming; once a write on the old connection fails, the
	// writer dials the new listener.
	deadline = time.Now().Add(15 * time.Second)
	for i := 0; ; i++ {
		f.Emit(pando.LogEnvelope{SourceID: "app-1", SourceType: pando.LogSourceApp, Payload: []byte("again " + strconv.Itoa(i))})
		select {
		case got := <-msgs2:
			if !strings.Contains(got, "again ") {
				t.Errorf("got %q", got)
			}
			return
		case <-msgs:
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the drain was not reconnected within 15s")
		}
	}
}

func TestForwarder_unbindStopsForwarding(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	msgs := syslogListener(t, ln)
	bindings := &staticBindings{bs: []Binding{{AppGUID: "app-1", URL: "syslog://" + ln.Addr().String(), Hostname: "o.s.a"}}}
	f := startForwarder(t, Config{Sink: &memSink{}, Bindings: bindings})
	bindings.set()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	f.Emit(pando.LogEnvelope{SourceID: "app-1", SourceType: pando.LogSourceApp, Payload: []byte("after unbind")})
	f.mu.RLock()
	n := len(f.byApp["app-1"])
	f.mu.RUnlock()
	if n != 0 {
		t.Fatalf("app still has %d drains after unbind", n)
	}
	select {
	case m := <-msgs:
		t.Errorf("drain got %q after unbind", m)
	default:
	}
}

func TestGuard_refusesPlatformPortsAndLinkLocal(t *testing.T) {
	platform, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer platform.Close()
	_, ps, _ := net.SplitHostPort(platform.Addr().String())
	pn, _ := strconv.Atoi(ps)
	g := Guard{DenyPorts: [][2]int{{pn, pn}}}
	d := net.Dialer{Timeout: time.Second, Control: g.control}
	if _, err := d.Dial("tcp", platform.Addr().String()); !errors.Is(err, ErrDenied) {
		t.Errorf("dial the platform's port on loopback: err %v, want ErrDenied", err)
	}
	if _, err := d.Dial("tcp", "localhost:"+ps); !errors.Is(err, ErrDenied) {
		t.Errorf("dial the platform's port by name: err %v, want ErrDenied", err)
	}
	if _, err := d.Dial("tcp", "169.254.169.254:80"); !errors.Is(err, ErrDenied) {
		t.Errorf("dial the metadata address: err %v, want ErrDenied", err)
	}
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	c, err := d.Dial("tcp", other.Addr().String())
	if err != nil {
		t.Errorf("dial another loopback port: %v", err)
	} else {
		c.Close()
	}
}

func TestForwarder_refusedDrainIsReportedInAppLog(t *testing.T) {
	platform, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer platform.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		c, err := platform.Accept()
		if err == nil {
			accepted <- struct{}{}
			c.Close()
		}
	}()
	_, ps, _ := net.SplitHostPort(platform.Addr().String())
	pn, _ := strconv.Atoi(ps)
	sink := &memSink{}
	bindings := &staticBindings{bs: []Binding{
		{AppGUID: "app-1", URL: "syslog://" + platform.Addr().String(), Hostname: "o.s.a"},
		{AppGUID: "app-2", URL: "ftp://example.com", Hostname: "o.s.b"},
	}}
	f := startForwarder(t, Config{Sink: sink, Bindings: bindings, Guard: Guard{DenyPorts: [][2]int{{pn, pn}}}, NoticeInterval: 20 * time.Millisecond})
	f.Emit(pando.LogEnvelope{SourceID: "app-1", SourceType: pando.LogSourceApp, Payload: []byte("GET /v3/apps HTTP/1.1")})
	if _, ok := sink.find(SourceTypeDrain, "scheme \"ftp\" is not supported"); !ok {
		t.Error("an unsupported drain URL is not reported in the app's log")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := sink.find(SourceTypeDrain, "Dropped 1 log messages"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the line for a refused drain was not reported dropped within 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case <-accepted:
		t.Error("the drain connected to the platform's own port")
	default:
	}
}

// However many drains developers bind, the forwarder runs at most
// MaxDrains of them (each with its bounded queue and one connection).
func TestForwarder_runsAtMostMaxDrains(t *testing.T) {
	var bs []Binding
	for i := range 50 {
		// Low loopback ports nothing listens on: the drains only need to
		// exist, not to connect.
		bs = append(bs, Binding{AppGUID: fmt.Sprintf("app-%d", i%7), URL: fmt.Sprintf("syslog://127.0.0.1:%d", 1+i), Hostname: "o.s.a"})
	}
	f := startForwarder(t, Config{Sink: &memSink{}, Bindings: &staticBindings{bs: bs}, Limits: Limits{MaxDrains: 5}})
	f.mu.RLock()
	running, listed := len(f.drains), 0
	for _, ds := range f.byApp {
		listed += len(ds)
	}
	f.mu.RUnlock()
	if running != 5 || listed != 5 {
		t.Fatalf("%d drains kept, %d forwarded to, want 5 of the 50 bound", running, listed)
	}
}
