package cell

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/container"
)

// listenHintAfter is how long a start check fails before the cell looks at
// what the app listens on instead: long enough for an app to bind $PORT.
const listenHintAfter = 3 * time.Second

// listeningReporter is a container that can say which TCP addresses its
// processes listen on (the runc backend can).
type listeningReporter interface {
	Listening(ctx context.Context) ([]netip.AddrPort, error)
}

// listenHint watches a failing start check: once it has failed for
// listenHintAfter, each failure looks at what the app's processes listen on
// and, the first time they listen but not where the check reaches, logs a
// CELL line naming it. That is then the crash's hint.
type listenHint struct {
	r       *Rep
	i       *instance
	lister  listeningReporter
	port    int
	started time.Time
	looked  time.Time // last look, at most one a second
	said    string
}

func (r *Rep) newListenHint(i *instance, ctr container.Container, port int) *listenHint {
	h := &listenHint{r: r, i: i, port: port, started: time.Now()}
	if i.lrp.HealthCheck.Type == pando.HealthCheckProcess {
		return h
	}
	h.lister, _ = ctr.(listeningReporter)
	return h
}

// failed is called after each failed start check.
func (h *listenHint) failed(ctx context.Context) {
	if h.lister == nil || h.said != "" || time.Since(h.started) < listenHintAfter || time.Since(h.looked) < time.Second {
		return
	}
	h.looked = time.Now()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	addrs, err := h.lister.Listening(ctx)
	if err != nil {
		h.r.log.Debug("listening sockets", "instance_guid", h.i.guid, "error", err)
		return
	}
	if msg := wrongListenMessage(addrs, h.port); msg != "" {
		h.said = msg
		h.r.cellLog(h.i, "ERR", "%s", msg)
	}
}

// explain adds what the app listens on, if seen, to the failure.
func (h *listenHint) explain(f *pando.Failure) *pando.Failure {
	f.Hint = h.said
	return f
}

// wrongListenMessage says what the app listens on when none of it is where
// the cell's check and router reach (port on 0.0.0.0, :: or 127.0.0.1), or
// "" when it listens nowhere or already there (the check fails otherwise).
func wrongListenMessage(addrs []netip.AddrPort, port int) string {
	if len(addrs) == 0 {
		return ""
	}
	names := make([]string, 0, len(addrs))
	for _, a := range addrs {
		if int(a.Port()) == port && (a.Addr().IsUnspecified() || a.Addr() == netip.AddrFrom4([4]byte{127, 0, 0, 1})) {
			return ""
		}
		names = append(names, a.String())
	}
	return fmt.Sprintf("app is listening on %s, not on 0.0.0.0:$PORT=%d: listen on $PORT on all interfaces",
		strings.Join(names, " / "), port)
}
