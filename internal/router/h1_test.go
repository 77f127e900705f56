package router

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func parseRequest(raw string) (*reqHead, error) {
	var h reqHead
	err := h.readRequest(bufio.NewReaderSize(strings.NewReader(raw), 4096), &headCount{})
	return &h, err
}

func headStatus(err error) int {
	var he *headError
	if errors.As(err, &he) {
		return he.status
	}
	return 0
}

// Hostile and malformed request heads are refused with the status
// net/http would give (or a stricter 400), never parsed into a request.
func TestReadRequest_refusesHostileHeads(t *testing.T) {
	long := strings.Repeat("a", maxHeadBytes)
	for _, tc := range []struct {
		name, raw string
		status    int
	}{
		{"CL and TE together", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"TE and CL together", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400},
		{"differing CLs", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400},
		{"CL with sign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", 400},
		{"CL list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", 400},
		{"CL hex", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", 400},
		{"CL overflow", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", 400},
		{"empty CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", 400},
		{"TE gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
		{"TE chunked twice in a list", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 501},
		{"TE in two lines", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"TE with junk", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", 501},
		{"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", 400},
		{"obs-fold with tab", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n", 400},
		{"space before colon", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n", 400},
		{"space in name", "GET / HTTP/1.1\r\nHost: a\r\nX A: b\r\n\r\n", 400},
		{"no colon", "GET / HTTP/1.1\r\nHost: a\r\nX-A\r\n\r\n", 400},
		{"empty name", "GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", 400},
		{"NUL in value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n", 400},
		{"bare CR in value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", 400},
		{"DEL in value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x7fc\r\n\r\n", 400},
		{"missing Host", "GET / HTTP/1.1\r\n\r\n", 400},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		{"bad Host byte", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
		{"Host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
		{"bad method", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"no target", "GET HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"extra space", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"control in target", "GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"relative target", "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"star not OPTIONS", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"bad escape", "GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"ftp target", "GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"HTTP/2", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
		{"h2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505},
		{"bad version", "GET / HTTP/1.1x\r\nHost: a\r\n\r\n", 400},
		{"lower-case version", "GET / http/1.1\r\nHost: a\r\n\r\n", 400},
		{"CONNECT", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 405},
		{"head too large", "GET / HTTP/1.1\r\nHost: a\r\nX-A: " + long + "\r\n\r\n", 431},
		{"request line too large", "GET /" + long + " HTTP/1.1\r\nHost: a\r\n\r\n", 431},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseRequest(tc.raw)
			if got := headStatus(err); got != tc.status {
				t.Errorf("status %d (%v), want %d", got, err, tc.status)
			}
		})
	}
}

func TestReadRequest_parsesWhatItForwards(t *testing.T) {
	h, err := parseRequest("\r\nPOST /a%2Fb/c?q=1 HTTP/1.1\r\nHost:  MyApp.example:8080 \r\nContent-Length: 5\r\n" +
		"Content-Length: 5\r\nConnection: keep-alive, X-Hop\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-For: 5.6.7.8\r\n" +
		"Expect: 100-continue\r\nUser-Agent: ua/1\r\nX-Empty:\r\nX-Obs: caf\xc3\xa9\r\n\r\nhello")
	if err != nil {
		t.Fatal(err)
	}
	if string(h.method) != "POST" || h.uri != "/a%2Fb/c?q=1" || h.path != "/a/b/c" || h.host != "MyApp.example:8080" {
		t.Errorf("method %q uri %q path %q host %q", h.method, h.uri, h.path, h.host)
	}
	if h.length != 5 || h.chunked || !h.expectContinue || !h.keepAlive() || h.minor != 1 {
		t.Errorf("length %d chunked %v expect %v keep %v minor %d", h.length, h.chunked, h.expectContinue, h.keepAlive(), h.minor)
	}
	if len(h.xff) != 2 || string(h.xff[1]) != "5.6.7.8" || string(h.ua) != "ua/1" {
		t.Errorf("xff %q ua %q", h.xff, h.ua)
	}
	if len(h.connection) != 2 || string(h.connection[1]) != "X-Hop" {
		t.Errorf("connection tokens %q", h.connection)
	}
	if len(h.fields) != 10 || string(h.fields[8].name) != "X-Empty" || len(h.fields[8].value) != 0 {
		t.Errorf("fields %q", h.fields)
	}

	h, err = parseRequest("GET http://Other.example/p?x HTTP/1.1\nHost: ignored.example\n\n")
	if err != nil {
		t.Fatal(err)
	}
	if h.host != "Other.example" || h.uri != "/p?x" || h.path != "/p" {
		t.Errorf("absolute form: host %q uri %q path %q", h.host, h.uri, h.path)
	}

	h, err = parseRequest("GET / HTTP/1.0\r\n\r\n")
	if err != nil || h.keepAlive() || h.host != "" {
		t.Errorf("HTTP/1.0: %v keep %v host %q", err, h.keepAlive(), h.host)
	}
	h, err = parseRequest("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
	if err != nil || !h.keepAlive() {
		t.Errorf("HTTP/1.0 keep-alive: %v keep %v", err, h.keepAlive())
	}
	h, err = parseRequest("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	if err != nil || !h.isUpgrade() {
		t.Errorf("upgrade: %v %v", err, h.isUpgrade())
	}
	if _, err := parseRequest("GET / HTTP/1.1\r\nHost: a\r\n"); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut-off head: %v", err)
	}
	if _, err := parseRequest(""); err != io.EOF {
		t.Errorf("no request: %v", err)
	}
}

func TestReadResponse_framing(t *testing.T) {
	for _, tc := range []struct {
		raw     string
		status  int
		length  int64
		chunked bool
		keep    bool
		bad     bool
	}{
		{raw: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", status: 200, length: 3, keep: true},
		{raw: "HTTP/1.1 204\r\n\r\n", status: 204, length: -1, keep: true},
		{raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", status: 200, length: -1, chunked: true, keep: true},
		{raw: "HTTP/1.0 200 OK\r\n\r\n", status: 200, length: -1},
		{raw: "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", status: 200, length: -1},
		{raw: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", bad: true},
		{raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", bad: true},
		{raw: "HTTP/1.1 20 OK\r\n\r\n", bad: true},
		{raw: "HTTP/1.1 2000 OK\r\n\r\n", bad: true},
		{raw: "HTTP/2 200 OK\r\n\r\n", bad: true},
		{raw: "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", bad: true},
		{raw: "HTTP/1.1 200 O\x00K\r\n\r\n", bad: true},
	} {
		var h respHead
		err := h.readResponse(bufio.NewReader(strings.NewReader(tc.raw)), nil)
		if tc.bad {
			if !errors.Is(err, errBadResponse) {
				t.Errorf("%q: err %v, want a malformed head", tc.raw, err)
			}
			continue
		}
		if err != nil || h.status != tc.status || h.length != tc.length || h.chunked != tc.chunked || h.keepAlive() != tc.keep {
			t.Errorf("%q: %v status %d length %d chunked %v keep %v", tc.raw, err, h.status, h.length, h.chunked, h.keepAlive())
		}
	}
}

// FuzzReadRequest: no input panics the parser, and whatever it accepts
// has the properties the router relies on when it forwards header bytes.
func FuzzReadRequest(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /x?y HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET http://h/p HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n",
		"GET /%41 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		h, err := parseRequest(raw)
		if err != nil {
			return
		}
		if h.chunked && h.length >= 0 {
			t.Fatal("accepted both Content-Length and chunked")
		}
		if !validHost([]byte(h.host)) || strings.ContainsAny(h.uri, " \r\n") {
			t.Fatalf("accepted host %q uri %q", h.host, h.uri)
		}
		for _, fd := range h.fields {
			if !isToken(fd.name) || bytes.ContainsAny(fd.value, "\r\n\x00") {
				t.Fatalf("accepted field %q: %q", fd.name, fd.value)
			}
		}
	})
}
