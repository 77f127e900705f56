package router

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"strconv"
)

// relay writes the instance's answer, whose head is in bc.resp, to the
// client: its status line and end-to-end headers as they came, the
// framing the router chooses, and the body copied through one pooled
// buffer. A body of unknown length goes to an HTTP/1.1 client chunked
// (trailers included) and is flushed after each read, as is an event
// stream, so that it streams; an HTTP/1.0 client gets it until the close.
// It reports the status, the body bytes written and whether the instance
// connection may be reused.
func (cc *clientConn) relay(bc *backendConn) (int, int64, bool) {
	h := &cc.head
	rh := &bc.resp
	r := cc.r
	cc.beginAnswer()
	if h.hasBody() && !cc.body.finished.Load() {
		// The instance answered before it had the whole body (413,
		// 401): the rest is not read, and the connection ends after
		// the answer.
		cc.closeAfter = true
	}
	isHead := string(h.method) == http.MethodHead
	noBody := isHead || rh.status == 204 || rh.status == 304 || rh.status < 200
	unknown := !noBody && rh.length < 0
	chunkOut := unknown && h.minor == 1
	if unknown && !chunkOut {
		cc.closeAfter = true // an HTTP/1.0 client reads to the close
	}
	reuse := rh.keepAlive() && (noBody || rh.length >= 0 || rh.chunked)

	b := cc.bw.AvailableBuffer()
	b = append(b, "HTTP/1.1 "...)
	b = append(b, rh.rest...)
	b = append(b, "\r\n"...)
	for _, f := range rh.fields {
		if notRelayed.has(f.name) || listed(rh.connection, f.name) {
			continue
		}
		if !chunkOut && len(f.name) == 7 && equalFold(f.name, "trailer") {
			continue
		}
		b = append(b, f.name...)
		b = append(b, ": "...)
		b = append(b, f.value...)
		b = append(b, "\r\n"...)
	}
	if !rh.hasDate {
		b = cc.appendDate(b)
	}
	switch {
	case noBody:
		// A HEAD or 304 answer keeps the length of what it describes.
		if rh.length >= 0 && rh.status != 204 && rh.status >= 200 {
			b = append(b, "Content-Length: "...)
			b = strconv.AppendInt(b, rh.length, 10)
			b = append(b, "\r\n"...)
		}
	case rh.length >= 0:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, rh.length, 10)
		b = append(b, "\r\n"...)
	case chunkOut:
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	if cc.closeAfter {
		b = append(b, "Connection: close\r\n"...)
	} else if h.minor == 0 {
		b = append(b, "Connection: keep-alive\r\n"...)
	}
	b = append(b, "\r\n"...)
	cc.armWrite()
	if _, err := cc.bw.Write(b); err != nil {
		cc.closeAfter = true
		return rh.status, 0, false
	}
	if noBody {
		if err := cc.bw.Flush(); err != nil {
			cc.closeAfter = true
		}
		return rh.status, 0, reuse
	}
	n, err := cc.copyBody(bc, chunkOut)
	if err == nil {
		cc.armWrite()
		err = cc.bw.Flush()
	}
	if err != nil {
		// The status is out: all that is left is to end the connection.
		r.log.Debug("relay response body", "host", h.host, "err", err)
		cc.closeAfter = true
		return rh.status, n, false
	}
	return rh.status, n, reuse
}

// copyBody copies the answer's body from bc to the client, chunking it
// when chunkOut.
func (cc *clientConn) copyBody(bc *backendConn, chunkOut bool) (int64, error) {
	rh := &bc.resp
	stream := rh.length < 0 || isEventStream(string(rh.contentType))
	var (
		src       io.Reader = bc.br // read to the close
		remaining           = rh.length
	)
	if rh.chunked {
		src = httputil.NewChunkedReader(bc.br)
	}
	bufp := cc.r.buffers.Get()
	defer cc.r.buffers.Put(bufp)
	buf := *bufp
	var written int64
	for {
		p := buf
		if remaining >= 0 && int64(len(p)) > remaining {
			p = p[:remaining]
		}
		var (
			n    int
			rerr error
		)
		if len(p) > 0 {
			n, rerr = src.Read(p)
		} else {
			rerr = io.EOF
		}
		if n > 0 {
			if remaining >= 0 {
				remaining -= int64(n)
			}
			if chunkOut {
				hdr := strconv.AppendInt(cc.bw.AvailableBuffer(), int64(n), 16)
				cc.bw.Write(append(hdr, "\r\n"...))
			}
			if _, err := cc.bw.Write(buf[:n]); err != nil {
				return written, err
			}
			written += int64(n)
			if chunkOut {
				cc.bw.WriteString("\r\n")
			}
			if stream {
				cc.armWrite()
				if err := cc.bw.Flush(); err != nil {
					return written, err
				}
			}
		}
		if rerr == io.EOF {
			if remaining > 0 {
				return written, fmt.Errorf("answer body ended %d bytes early: %w", remaining, io.ErrUnexpectedEOF)
			}
			break
		}
		if rerr != nil {
			return written, fmt.Errorf("read answer body from %s: %w", bc.addr, rerr)
		}
	}
	if !chunkOut {
		if rh.chunked {
			return written, skipTrailer(bc.br, cc.r.heads)
		}
		return written, nil
	}
	cc.bw.WriteString("0\r\n")
	if rh.chunked {
		if err := cc.relayTrailer(bc); err != nil {
			return written, err
		}
	}
	_, err := cc.bw.WriteString("\r\n")
	return written, err
}

// relayTrailer passes the trailer fields of a chunked answer on; a
// malformed one ends the answer.
func (cc *clientConn) relayTrailer(bc *backendConn) error {
	cnt := headCount{slots: cc.r.heads}
	defer cnt.done()
	for {
		line, err := readLine(bc.br, &cnt)
		if err != nil {
			return fmt.Errorf("read answer trailer: %w", err)
		}
		if len(line) == 0 {
			return nil
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !isToken(line[:colon]) || !validValue(line[colon+1:]) {
			return fmt.Errorf("malformed answer trailer %q", line)
		}
		cc.bw.Write(line)
		cc.bw.WriteString("\r\n")
	}
}
