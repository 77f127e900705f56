package router

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
)

// The router's HTTP/1.1 parsing: request heads from clients and response
// heads from instances are read into a reused buffer and split into
// fields that point into it, so a request costs no header map. It is as
// strict as net/http where strictness guards against request smuggling
// (RFC 9112): one Content-Length or one Transfer-Encoding (chunked), never
// both; no obs-fold; no space before a field's colon; only token bytes in
// names and no control bytes in values; bounded lines and heads.

// maxHeadBytes bounds a request's head, request line included (net/http's
// default MaxHeaderBytes of 1 MiB and its 4 KiB of slack).
const maxHeadBytes = 1<<20 + 4096

// headError is a malformed head: the client gets status and the reason.
type headError struct {
	status int
	reason string
}

func (e *headError) Error() string { return fmt.Sprintf("%d: %s", e.status, e.reason) }

func badRequest(format string, args ...any) error {
	return &headError{status: 400, reason: fmt.Sprintf(format, args...)}
}

var errHeadTooLarge = &headError{status: 431, reason: "request header fields too large"}

// field is one header field; name and value point into the head buffer,
// the value without surrounding whitespace.
type field struct {
	name, value []byte
}

// readHead appends the lines of a head (a start line and fields, up to
// and including the empty line that ends it) from br to buf, ending each
// with "\n" only. Empty lines before the start line are skipped. Its
// bytes are counted into cnt (errHeadTooLarge, errHeadsBusy); a reader
// error (EOF before any byte: io.EOF) is returned as is.
func readHead(br *bufio.Reader, buf []byte, cnt *headCount) ([]byte, error) {
	buf = buf[:0]
	start := true
	for {
		line, err := readLine(br, cnt)
		if err != nil {
			if err == io.EOF && (len(buf) > 0 || cnt.total > 0) {
				err = io.ErrUnexpectedEOF
			}
			return buf, err
		}
		if len(line) == 0 {
			if start {
				continue
			}
			return append(buf, '\n'), nil
		}
		start = false
		buf = append(buf, line...)
		buf = append(buf, '\n')
	}
}

// readLine reads one line without its "\r\n" or "\n", counting its bytes
// into cnt. A line longer than the reader's buffer is put together in a
// fresh slice.
func readLine(br *bufio.Reader, cnt *headCount) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if cerr := cnt.add(len(line)); cerr != nil {
		return nil, cerr
	}
	if err == bufio.ErrBufferFull {
		long := append([]byte(nil), line...)
		for err == bufio.ErrBufferFull {
			line, err = br.ReadSlice('\n')
			if cerr := cnt.add(len(line)); cerr != nil {
				return nil, cerr
			}
			long = append(long, line...)
		}
		line = long
	}
	if err != nil {
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// tokenTable marks the bytes of an RFC 9110 token (field names, methods).
var tokenTable = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tokenTable[c] {
			return false
		}
	}
	return true
}

// validValue refuses control bytes other than tab (CR, LF and NUL
// included); obs-text (0x80-0xff) is allowed, as net/http allows it.
func validValue(b []byte) bool {
	for _, c := range b {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// hostTable marks the bytes net/http allows in a Host header.
var hostTable = func() (t [256]bool) {
	for c := 0x21; c < 0x7f; c++ {
		t[c] = true
	}
	for _, c := range "\"#/<>?@\\^`{|}" {
		t[c] = false
	}
	return t
}()

func validHost(b []byte) bool {
	for _, c := range b {
		if !hostTable[c] {
			return false
		}
	}
	return true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// splitFields parses the field lines of head (after its start line) into
// fields, appended to dst.
func splitFields(head []byte, dst []field) ([]field, error) {
	for len(head) > 0 {
		i := bytes.IndexByte(head, '\n')
		line := head[:i]
		head = head[i+1:]
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return dst, badRequest("obsolete line folding in header")
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			return dst, badRequest("malformed header line")
		}
		name := line[:colon]
		if !isToken(name) {
			return dst, badRequest("invalid header name %q", name)
		}
		value := trimOWS(line[colon+1:])
		if !validValue(value) {
			return dst, badRequest("invalid value of header %q", name)
		}
		dst = append(dst, field{name: name, value: value})
	}
	return dst, nil
}

// equalFold compares ASCII b with the lower-case name.
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// parseLength parses a Content-Length value: digits only, no sign, at
// most 18 of them.
func parseLength(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// eachToken calls fn with each comma-separated token of a list value,
// trimmed, empty ones skipped.
func eachToken(v []byte, fn func(tok []byte)) {
	for len(v) > 0 {
		var t []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			t, v = v[:i], v[i+1:]
		} else {
			t, v = v, nil
		}
		if t = trimOWS(t); len(t) > 0 {
			fn(t)
		}
	}
}

// framing is what a head says about its body.
type framing struct {
	length  int64 // -1: none given
	chunked bool
	// connection: the Connection header's tokens (hop-by-hop names).
	connection     [][]byte
	close, keep    bool   // "close" / "keep-alive" among them
	upgradeToken   bool   // "upgrade" among them
	transferCoding []byte // the Transfer-Encoding header, when present
}

func (f *framing) reset() {
	*f = framing{length: -1, connection: f.connection[:0]}
}

// noteFraming records a framing or connection header; it reports whether
// the field was one.
func (f *framing) note(fd field) (bool, error) {
	switch len(fd.name) {
	case 10:
		if !equalFold(fd.name, "connection") {
			return false, nil
		}
		eachToken(fd.value, func(tok []byte) {
			switch {
			case equalFold(tok, "close"):
				f.close = true
			case equalFold(tok, "keep-alive"):
				f.keep = true
			case equalFold(tok, "upgrade"):
				f.upgradeToken = true
			}
			f.connection = append(f.connection, tok)
		})
		return true, nil
	case 14:
		if !equalFold(fd.name, "content-length") {
			return false, nil
		}
		n, ok := parseLength(fd.value)
		if !ok {
			return true, badRequest("invalid Content-Length %q", fd.value)
		}
		if f.length >= 0 && f.length != n {
			return true, badRequest("differing Content-Length values")
		}
		f.length = n
		return true, nil
	case 17:
		if !equalFold(fd.name, "transfer-encoding") {
			return false, nil
		}
		if f.transferCoding != nil {
			return true, badRequest("more than one Transfer-Encoding")
		}
		f.transferCoding = fd.value
		if !equalFold(fd.value, "chunked") {
			return true, &headError{status: 501, reason: fmt.Sprintf("unsupported Transfer-Encoding %q", fd.value)}
		}
		f.chunked = true
		return true, nil
	}
	return false, nil
}

// reqHead is a parsed request head. Its byte slices point into buf and
// are valid until the next request on the connection is read.
type reqHead struct {
	buf    []byte
	fields []field
	framing

	method, target []byte
	minor          int // HTTP/1.minor
	// host is the Host header (or an absolute-form target's authority);
	// uri the origin-form target sent on; path the decoded path routed on.
	host, uri, path string
	upgrade         []byte // the Upgrade header, when present
	expectContinue  bool
	xff             [][]byte // X-Forwarded-For values, in order
	xfp             []byte   // X-Forwarded-Proto
	referer, ua     []byte
}

// proto is the request's protocol as it came in.
func (h *reqHead) proto() string {
	if h.minor == 0 {
		return "HTTP/1.0"
	}
	return "HTTP/1.1"
}

// keepAlive reports whether the client wants the connection kept.
func (h *reqHead) keepAlive() bool {
	if h.minor == 0 {
		return h.keep && !h.close
	}
	return !h.close
}

// isUpgrade reports a request to switch protocols (websockets).
func (h *reqHead) isUpgrade() bool { return len(h.upgrade) > 0 && h.upgradeToken }

// hasBody reports a request with a body still to read.
func (h *reqHead) hasBody() bool { return h.chunked || h.length > 0 }

// readRequest reads and parses the next request head from br into h,
// counting it into cnt. An io.EOF before any byte means the client closed
// a keep-alive connection.
func (h *reqHead) readRequest(br *bufio.Reader, cnt *headCount) error {
	buf, err := readHead(br, h.buf, cnt)
	h.buf = buf
	if err != nil {
		return err
	}
	return h.parse()
}

// parse parses the head in h.buf.
func (h *reqHead) parse() error {
	fields, buf := h.fields[:0], h.buf
	*h = reqHead{buf: buf, fields: fields, framing: h.framing, xff: h.xff[:0]}
	h.framing.reset()
	i := bytes.IndexByte(buf, '\n')
	if err := h.parseRequestLine(buf[:i]); err != nil {
		return err
	}
	var err error
	if h.fields, err = splitFields(buf[i+1:], h.fields); err != nil {
		return err
	}
	var host []byte
	hosts := 0
	for _, fd := range h.fields {
		if ok, err := h.framing.note(fd); ok {
			if err != nil {
				return err
			}
			continue
		}
		switch len(fd.name) {
		case 4:
			if equalFold(fd.name, "host") {
				host = fd.value
				hosts++
			}
		case 6:
			if equalFold(fd.name, "expect") && equalFold(fd.value, "100-continue") {
				h.expectContinue = true
			}
		case 7:
			switch {
			case equalFold(fd.name, "upgrade"):
				h.upgrade = fd.value
			case equalFold(fd.name, "referer"):
				h.referer = fd.value
			}
		case 10:
			if equalFold(fd.name, "user-agent") {
				h.ua = fd.value
			}
		case 15:
			if equalFold(fd.name, "x-forwarded-for") {
				h.xff = append(h.xff, fd.value)
			}
		case 17:
			if equalFold(fd.name, "x-forwarded-proto") {
				h.xfp = fd.value
			}
		}
	}
	switch {
	case hosts > 1:
		return badRequest("more than one Host header")
	case hosts == 0 && h.minor == 1:
		return badRequest("missing required Host header")
	case !validHost(host):
		return badRequest("invalid Host header")
	case h.chunked && h.length >= 0:
		return badRequest("both Content-Length and Transfer-Encoding")
	case h.transferCoding != nil && h.minor == 0:
		return badRequest("Transfer-Encoding in an HTTP/1.0 request")
	}
	if h.host == "" { // not set by an absolute-form target
		h.host = string(host)
	}
	return nil
}

// parseRequestLine parses "METHOD target HTTP/1.x".
func (h *reqHead) parseRequestLine(line []byte) error {
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return badRequest("malformed request line")
	}
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 {
		return badRequest("malformed request line")
	}
	h.method, h.target = line[:sp1], rest[:sp2]
	version := rest[sp2+1:]
	if !isToken(h.method) {
		return badRequest("invalid method")
	}
	switch string(version) {
	case "HTTP/1.1":
		h.minor = 1
	case "HTTP/1.0":
		h.minor = 0
	default:
		if len(version) == 8 && bytes.HasPrefix(version, []byte("HTTP/")) && version[6] == '.' &&
			'0' <= version[5] && version[5] <= '9' && '0' <= version[7] && version[7] <= '9' {
			if version[5] == '1' { // a later HTTP/1.x speaks 1.1
				h.minor = 1
				break
			}
			return &headError{status: 505, reason: "HTTP version not supported"}
		}
		return badRequest("malformed HTTP version %q", version)
	}
	for _, c := range h.target {
		if c <= ' ' || c == 0x7f {
			return badRequest("invalid request target")
		}
	}
	if string(h.method) == "CONNECT" {
		return &headError{status: 405, reason: "CONNECT is not supported"}
	}
	return h.parseTarget()
}

// parseTarget sets uri and path from the target: origin-form as it is,
// absolute-form ("http://host/p") turned into origin-form with its
// authority as the host, "*" for OPTIONS.
func (h *reqHead) parseTarget() error {
	t := h.target
	switch {
	case t[0] == '/':
		if bytes.IndexByte(t, '%') < 0 {
			h.uri = string(t)
			h.path = h.uri
			if q := bytes.IndexByte(t, '?'); q >= 0 {
				h.path = h.uri[:q]
			}
			return nil
		}
		u, err := url.ParseRequestURI(string(t))
		if err != nil {
			return badRequest("invalid request target")
		}
		h.uri, h.path = string(t), u.Path
		return nil
	case len(t) == 1 && t[0] == '*':
		if string(h.method) != "OPTIONS" {
			return badRequest("invalid request target")
		}
		h.uri, h.path = "*", "/"
		return nil
	}
	u, err := url.ParseRequestURI(string(t))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return badRequest("invalid request target")
	}
	if !validHost([]byte(u.Host)) {
		return badRequest("invalid host in request target")
	}
	h.uri, h.path, h.host = u.RequestURI(), u.Path, u.Host
	if h.path == "" {
		h.path = "/"
	}
	return nil
}

// respHead is a parsed response head from an instance.
type respHead struct {
	buf    []byte
	fields []field
	framing

	status int
	// rest is the status line after "HTTP/1.x " ("200 OK").
	rest        []byte
	minor       int
	contentType []byte
	hasDate     bool
	trailer     bool // a Trailer header was sent
}

var errBadResponse = errors.New("malformed response head")

// readResponse reads and parses a response head from br; a large one
// takes a slot of slots while it is read.
func (h *respHead) readResponse(br *bufio.Reader, slots *headSlots) error {
	cnt := headCount{slots: slots}
	buf, err := readHead(br, h.buf, &cnt)
	cnt.done()
	h.buf = buf
	if err != nil {
		return err
	}
	fields, framing := h.fields[:0], h.framing
	*h = respHead{buf: buf, fields: fields, framing: framing}
	h.framing.reset()
	i := bytes.IndexByte(buf, '\n')
	line := buf[:i]
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[7] < '0' || line[7] > '9' ||
		line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
		return fmt.Errorf("%w: status line %q", errBadResponse, line)
	}
	h.minor = int(line[7] - '0')
	h.rest = line[9:]
	code := line[9:12]
	for _, c := range code {
		if c < '0' || c > '9' {
			return fmt.Errorf("%w: status line %q", errBadResponse, line)
		}
	}
	h.status = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	if h.status < 100 {
		return fmt.Errorf("%w: status %d", errBadResponse, h.status)
	}
	if !validValue(h.rest) {
		return fmt.Errorf("%w: status line %q", errBadResponse, line)
	}
	if h.fields, err = splitFields(buf[i+1:], h.fields); err != nil {
		return fmt.Errorf("%w: %v", errBadResponse, err)
	}
	for _, fd := range h.fields {
		if ok, err := h.framing.note(fd); ok {
			if err != nil {
				return fmt.Errorf("%w: %v", errBadResponse, err)
			}
			continue
		}
		switch len(fd.name) {
		case 4:
			if equalFold(fd.name, "date") {
				h.hasDate = true
			}
		case 7:
			if equalFold(fd.name, "trailer") {
				h.trailer = true
			}
		case 12:
			if equalFold(fd.name, "content-type") {
				h.contentType = fd.value
			}
		}
	}
	if h.chunked {
		h.length = -1 // Transfer-Encoding overrides Content-Length (RFC 9112 6.3)
	}
	return nil
}

// keepAlive reports whether the instance lets the connection be reused.
func (h *respHead) keepAlive() bool {
	if h.minor == 0 {
		return h.keep && !h.close
	}
	return !h.close
}
