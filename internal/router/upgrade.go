package router

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/pandoplatform/pando/internal/pipe"
)

// isUpgrade reports a request to switch protocols (websockets).
func isUpgrade(req *http.Request) bool {
	return req.Header.Get("Upgrade") != "" && headerHasToken(req.Header, "Connection", "upgrade")
}

func headerHasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for len(v) > 0 {
			var t string
			t, v, _ = cut(v, ',')
			if equalFoldTrim(t, token) {
				return true
			}
		}
	}
	return false
}

func cut(s string, sep byte) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func equalFoldTrim(s, t string) bool {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	if len(s) != len(t) {
		return false
	}
	for i := 0; i < len(s); i++ {
		a, b := s[i], t[i]
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

// serveUpgrade proxies a protocol switch: it sends the request to a
// backend (trying another when one cannot be reached), relays the answer
// and, on 101, joins the two connections with pipe.Join, which holds no
// buffer while the tunnel is idle and closes it after TunnelIdleTimeout.
func (r *Router) serveUpgrade(w *recorder, req *http.Request, st *request) {
	var (
		conn net.Conn
		ep   *endpoint
		err  error
	)
	for attempt := 0; attempt < r.cfg.MaxAttempts; attempt++ {
		if ep = r.pick(st); ep == nil {
			break
		}
		st.tried = append(st.tried, ep)
		st.served = ep
		dctx, cancel := context.WithTimeout(req.Context(), r.cfg.DialTimeout)
		conn, err = r.cfg.Dial(dctx, "tcp", ep.Addr)
		cancel()
		if err == nil {
			break
		}
		ep.failedUntil.Store(r.now().Add(r.cfg.FailTimeout).UnixNano())
		conn = nil
		if req.Context().Err() != nil {
			break
		}
	}
	if conn == nil {
		if err == nil {
			err = errors.New("no backend left to try")
		}
		r.proxyError(w, req, st, err)
		return
	}
	// Closing conn when the request ends (server shutdown, client gone)
	// also ends the tunnel below.
	stop := context.AfterFunc(req.Context(), func() { conn.Close() })
	defer stop()
	defer conn.Close()

	out := req.Clone(req.Context())
	out.RequestURI = ""
	out.URL.Scheme, out.URL.Host = "http", ep.Addr
	out.Host = req.Host
	setForwarded(out.Header, st, req.Host)
	out.Header.Set("X-Vcap-Request-Id", st.requestID)
	out.Header.Set("X-Request-Start", strconv.FormatInt(r.now().UnixMilli(), 10))
	ep.setHeaders(out.Header)
	_ = conn.SetDeadline(time.Now().Add(r.cfg.DialTimeout + r.cfg.BodyTimeout))
	if err := out.Write(conn); err != nil {
		r.proxyError(w, req, st, err)
		return
	}
	br := bufio.NewReaderSize(conn, 4096)
	resp, err := http.ReadResponse(br, out)
	if err != nil {
		r.proxyError(w, req, st, err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		// The backend declined the switch: relay its answer as is.
		_ = conn.SetDeadline(time.Time{})
		removeHopHeaders(resp.Header)
		copyHeader(w.Header(), resp.Header)
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
		return
	}
	client, crw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		r.proxyError(w, req, st, err)
		return
	}
	defer client.Close()
	w.status = resp.StatusCode
	_ = client.SetDeadline(time.Time{})
	_ = conn.SetDeadline(time.Now().Add(r.cfg.BodyTimeout))
	if _, err := crw.WriteString("HTTP/1.1 101 Switching Protocols\r\n"); err != nil {
		return
	}
	if err := resp.Header.Write(crw); err != nil {
		return
	}
	if _, err := crw.WriteString("\r\n"); err != nil {
		return
	}
	if err := crw.Flush(); err != nil {
		return
	}
	// Bytes either side sent early sit in the readers' buffers.
	if n := crw.Reader.Buffered(); n > 0 {
		early, _ := crw.Reader.Peek(n)
		if _, err := conn.Write(early); err != nil {
			return
		}
	}
	if n := br.Buffered(); n > 0 {
		early, _ := br.Peek(n)
		if _, err := client.Write(early); err != nil {
			return
		}
	}
	_ = conn.SetDeadline(time.Time{})
	pipe.Join(client, conn, pipe.Options{IdleTimeout: r.cfg.TunnelIdleTimeout})
}

func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		dst[k] = append(dst[k][:0:0], vs...)
	}
}
