package router

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// sysBufSize is how much of a system answer is held back to be sent with
// a Content-Length; a longer one, or one flushed early, goes chunked
// (close-delimited to an HTTP/1.0 client).
const sysBufSize = 4096

// sysWriter is the http.ResponseWriter of a system request, writing on
// the client connection. Through http.ResponseController it flushes
// (log streams, long polls) and sets the connection's read and write
// deadlines; it cannot be hijacked. Each write has WriteTimeout unless
// the handler set a deadline itself.
type sysWriter struct {
	cc     *clientConn
	header http.Header
	sent   http.Header // header as of WriteHeader
	status int
	head   bool // a HEAD request: the body is not sent

	committed   bool // the answer's head is written
	chunked     bool
	noBody      bool  // 204, 304: no body allowed
	declared    int64 // the handler's Content-Length, -1 none
	written     int64
	buf         []byte // the body held back until committed
	ownDeadline bool   // the handler set the write deadline
	err         error
}

func (w *sysWriter) Header() http.Header { return w.header }

func (w *sysWriter) WriteHeader(code int) {
	if w.committed || w.status != 0 {
		return
	}
	if code < 100 || code > 999 {
		panic("router: invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		w.informational(code)
		return
	}
	w.status = code
	w.sent = w.header.Clone()
	w.noBody = code == http.StatusNoContent || code == http.StatusNotModified
	if cl := w.sent.Get("Content-Length"); cl != "" {
		if n, ok := parseLength([]byte(strings.TrimSpace(cl))); ok {
			w.declared = n
		}
	}
}

// informational sends a 1xx answer (103 Early Hints) at once.
func (w *sysWriter) informational(code int) {
	w.arm()
	b := w.cc.bw.AvailableBuffer()
	b = appendStatusLine(b, code)
	b = appendFields(b, w.header)
	b = append(b, "\r\n"...)
	if _, err := w.cc.bw.Write(b); err == nil {
		err = w.cc.bw.Flush()
		w.fail(err)
	}
}

func (w *sysWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.noBody {
		return 0, http.ErrBodyNotAllowed
	}
	if w.declared >= 0 && w.written+int64(len(p)) > w.declared {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if w.head {
		return len(p), nil
	}
	if !w.committed {
		if len(w.buf)+len(p) <= sysBufSize {
			w.buf = append(w.buf, p...)
			return len(p), nil
		}
		w.commit(false, p)
		if w.err != nil {
			return 0, w.err
		}
	}
	w.writeBody(p)
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

// commit writes the answer's head and the body held back; final says the
// handler is done, so the body held back is all of it. sniff is the
// first body bytes, for a Content-Type the handler did not set.
func (w *sysWriter) commit(final bool, sniff []byte) {
	cc := w.cc
	w.committed = true
	cc.beginAnswer()
	// A request body the handler left unread is read and dropped (up to
	// 256 KiB) so the connection can be kept, as net/http does.
	if !cc.discardBody() {
		cc.closeAfter = true
	}
	h := w.sent
	for _, v := range h["Connection"] {
		if strings.Contains(strings.ToLower(v), "close") {
			cc.closeAfter = true
		}
	}
	var length int64 = -1
	switch {
	case w.noBody:
	case w.declared >= 0:
		length = w.declared
	case final && (!w.head || w.written > 0):
		length = w.written
	case w.head:
	case cc.head.minor == 1:
		w.chunked = true
	default:
		cc.closeAfter = true // the body ends with the connection
	}
	w.arm()
	b := cc.bw.AvailableBuffer()
	b = appendStatusLine(b, w.status)
	b = appendFields(b, h)
	if _, ok := h["Date"]; !ok {
		b = cc.appendDate(b)
	}
	if _, ok := h["Content-Type"]; !ok && !w.noBody {
		if len(w.buf) > 0 {
			sniff = w.buf
		}
		if len(sniff) > 0 {
			b = append(b, "Content-Type: "...)
			b = append(b, http.DetectContentType(sniff)...)
			b = append(b, "\r\n"...)
		}
	}
	switch {
	case length >= 0:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, length, 10)
		b = append(b, "\r\n"...)
	case w.chunked:
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	if cc.closeAfter {
		b = append(b, "Connection: close\r\n"...)
	} else if cc.head.minor == 0 {
		b = append(b, "Connection: keep-alive\r\n"...)
	}
	b = append(b, "\r\n"...)
	if _, err := cc.bw.Write(b); err != nil {
		w.fail(err)
		return
	}
	if len(w.buf) > 0 {
		held := w.buf
		w.buf = nil
		w.writeBody(held)
	}
}

// writeBody writes body bytes in the answer's framing.
func (w *sysWriter) writeBody(p []byte) {
	if len(p) == 0 || w.err != nil {
		return
	}
	w.arm()
	bw := w.cc.bw
	if w.chunked {
		b := bw.AvailableBuffer()
		b = strconv.AppendInt(b, int64(len(p)), 16)
		b = append(b, "\r\n"...)
		if _, err := bw.Write(b); err != nil {
			w.fail(err)
			return
		}
	}
	_, err := bw.Write(p)
	if err == nil && w.chunked {
		_, err = bw.WriteString("\r\n")
	}
	w.fail(err)
}

// FlushError sends what was written so far; http.ResponseController's
// Flush calls it.
func (w *sysWriter) FlushError() error {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(false, nil)
	}
	if w.err == nil {
		w.arm()
		w.fail(w.cc.bw.Flush())
	}
	return w.err
}

// Flush is http.Flusher's.
func (w *sysWriter) Flush() { _ = w.FlushError() }

// SetWriteDeadline is http.ResponseController's: it replaces the
// router's WriteTimeout for the rest of the answer.
func (w *sysWriter) SetWriteDeadline(t time.Time) error {
	w.ownDeadline = true
	return w.cc.c.SetWriteDeadline(t)
}

// SetReadDeadline is http.ResponseController's (bodyrate uses it).
func (w *sysWriter) SetReadDeadline(t time.Time) error { return w.cc.c.SetReadDeadline(t) }

// arm gives the next write WriteTimeout, unless the handler chose.
func (w *sysWriter) arm() {
	if !w.ownDeadline {
		w.cc.armWrite()
	}
}

func (w *sysWriter) fail(err error) {
	if err != nil && w.err == nil {
		w.err = err
		w.cc.closeAfter = true
	}
}

// finish ends the answer once the handler has returned.
func (w *sysWriter) finish() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(true, nil)
	} else if w.chunked && w.err == nil {
		_, err := w.cc.bw.WriteString("0\r\n\r\n")
		w.fail(err)
	}
	if w.declared >= 0 && w.written < w.declared && !w.head && !w.noBody {
		w.cc.closeAfter = true // the client waits for bytes that will not come
	}
	if w.err == nil {
		w.arm()
		w.fail(w.cc.bw.Flush())
	}
}

func appendStatusLine(b []byte, code int) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	if text := http.StatusText(code); text != "" {
		b = append(b, text...)
	} else {
		b = append(b, "status code "...)
		b = strconv.AppendInt(b, int64(code), 10)
	}
	return append(b, "\r\n"...)
}

// appendFields appends a handler's header fields, leaving out the
// framing and connection ones the writer sets itself and names that are
// not tokens; CR and LF in values become spaces, as net/http does, so a
// value cannot add a field.
func appendFields(b []byte, h http.Header) []byte {
	for k, vs := range h {
		switch k {
		case "Content-Length", "Transfer-Encoding", "Connection":
			continue
		}
		if !isToken([]byte(k)) {
			continue
		}
		for _, v := range vs {
			b = append(b, k...)
			b = append(b, ": "...)
			for i := 0; i < len(v); i++ {
				c := v[i]
				if c == '\r' || c == '\n' {
					c = ' '
				}
				b = append(b, c)
			}
			b = append(b, "\r\n"...)
		}
	}
	return b
}
