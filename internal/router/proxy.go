package router

import (
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
)

// hopHeaders are the hop-by-hop headers (RFC 9110 7.6.1): they describe
// one connection and are never forwarded.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// removeHopHeaders drops the hop-by-hop headers and those that
// "Connection" names, in place.
func removeHopHeaders(h http.Header) {
	for _, v := range h["Connection"] {
		for _, f := range strings.Split(v, ",") {
			if f = textproto.TrimString(f); f != "" {
				delete(h, textproto.CanonicalMIMEHeaderKey(f))
			}
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
}

// serveProxy forwards a plain (not upgrading) request: the inbound request,
// its hop-by-hop headers removed and the router's own headers set, is sent
// as it is (the server hands it to this handler alone), and the answer is
// copied back, streamed when it has no length. This is the reverse
// proxy's job without its per-request copies of the request.
func (r *Router) serveProxy(w *recorder, req *http.Request, st *request) {
	h := req.Header
	// The router's own headers are set after the hop-by-hop ones go: a
	// client naming them in "Connection" must not make the router drop
	// them. (The chain was read when the request came in.)
	removeHopHeaders(h)
	setForwarded(h, st, req.Host)
	h.Set("X-Vcap-Request-Id", st.requestID)
	h.Set("X-Request-Start", strconv.FormatInt(r.now().UnixMilli(), 10))
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = []string{""} // send none rather than Go's
	}
	if req.ContentLength == 0 {
		req.Body = http.NoBody
	}
	req.URL.Scheme = "http"
	resp, err := r.retry.roundTrip(req, st)
	if err != nil {
		r.proxyError(w, req, st, err)
		return
	}
	defer resp.Body.Close()
	removeHopHeaders(resp.Header)
	out := w.Header()
	for k, v := range resp.Header {
		out[k] = v
	}
	if len(resp.Trailer) > 0 {
		names := make([]string, 0, len(resp.Trailer))
		for k := range resp.Trailer {
			names = append(names, k)
		}
		out["Trailer"] = []string{strings.Join(names, ", ")}
	}
	w.WriteHeader(resp.StatusCode)
	if err := r.copyBody(w, resp); err != nil {
		// The status is out: all that is left is to end the connection,
		// which net/http does when a handler panics with ErrAbortHandler.
		r.log.Debug("copy response body", "host", req.Host, "err", err)
		panic(http.ErrAbortHandler)
	}
	for k, v := range resp.Trailer {
		out[http.TrailerPrefix+k] = v
	}
}

func isEventStream(contentType string) bool {
	const es = "text/event-stream"
	ct := strings.TrimSpace(contentType)
	return len(ct) >= len(es) && strings.EqualFold(ct[:len(es)], es) && (len(ct) == len(es) || ct[len(es)] == ';' || ct[len(es)] == ' ')
}

// copyBody copies the response body, flushing after each read when the
// answer is a stream (no length, or an event stream) so that events reach
// the client at once.
func (r *Router) copyBody(w *recorder, resp *http.Response) error {
	stream := resp.ContentLength == -1 || isEventStream(resp.Header.Get("Content-Type"))
	buf := r.buffers.Get()
	defer r.buffers.Put(buf)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			if stream {
				w.Flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}
