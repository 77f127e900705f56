// Package bodyrate bounds how slowly a client may send a request body to
// the API (on its own listener and on the router's system hosts; the
// router's front end applies the same rule in its own body reader): the
// body must deliver at least minBytes in every window until it ends, else
// the read fails (and the server closes the connection). A slow upload that keeps moving is never cut off; a body
// trickled a byte at a time (slowloris) is.
package bodyrate

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// Guard puts r's body under the rule, with the connection's read deadline
// moved forward by window each time minBytes have arrived. Bodies of
// requests on connections without deadlines (test recorders) are left as
// they are.
func Guard(w http.ResponseWriter, r *http.Request, window time.Duration, minBytes int64) {
	if r.Body == nil || r.Body == http.NoBody || window <= 0 {
		return
	}
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(window)); err != nil {
		return
	}
	r.Body = &body{body: r.Body, rc: rc, window: window, minBytes: max(minBytes, 1)}
}

type body struct {
	body     io.ReadCloser
	rc       *http.ResponseController
	window   time.Duration
	minBytes int64
	since    int64 // bytes read since the deadline last moved
	ended    bool
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	if b.ended {
		return n, err
	}
	b.since += int64(n)
	switch {
	case err == io.EOF:
		// net/http clears the deadline itself when the body ends (it
		// starts its background read then); moving it now would cut off
		// that read and cancel the request's context.
		b.ended = true
	case err != nil && errors.Is(err, os.ErrDeadlineExceeded):
		// The deadline stays: net/http's read of what is left of the body
		// fails at once and it closes the connection.
		b.ended = true
		return n, fmt.Errorf("request body too slow: less than %d bytes in %s: %w", b.minBytes, b.window, err)
	case b.since >= b.minBytes:
		b.since = 0
		_ = b.rc.SetReadDeadline(time.Now().Add(b.window))
	}
	return n, err
}

func (b *body) Close() error { return b.body.Close() }
