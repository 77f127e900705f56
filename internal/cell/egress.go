package cell

import (
	"context"
	"net"
	"strconv"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/egress"
)

// stagingProxyPort is where a staging container finds its egress proxy,
// on its own loopback (each staging has a network namespace of its own).
const stagingProxyPort = 3128

// DefaultStagingEgressMaxBytes bounds a staging's downloads through its
// egress proxy: far above what npm, pip or bundler fetch for a web app,
// below the default staging disk.
const DefaultStagingEgressMaxBytes = 2 << 30

// stagingEgressURL is the proxy URL staging containers get.
var stagingEgressURL = "http://127.0.0.1:" + strconv.Itoa(stagingProxyPort)

// netnsListener is a container the cell can listen in (runc's can).
type netnsListener interface {
	Listen(ctx context.Context, port int) (net.Listener, error)
}

// serveStagingEgress serves the staging's egress proxy inside ctr's
// network namespace until ctx ends (the staging's end, or its timeout).
// The returned func stops it and waits; it reports the bytes relayed.
func (r *Rep) serveStagingEgress(ctx context.Context, req *pando.StagingRequest, ctr any) func() int64 {
	// Without a proxy the builder says so in the staging output, once it
	// has waited for it; a container that has already exited needs none.
	nl, ok := ctr.(netnsListener)
	if !ok {
		r.log.Warn("staging egress proxy: the container backend cannot listen in containers", "app_guid", req.AppGUID)
		return func() int64 { return 0 }
	}
	ln, err := nl.Listen(ctx, stagingProxyPort)
	if err != nil {
		r.log.Warn("staging egress proxy", "app_guid", req.AppGUID, "error", err)
		return func() int64 { return 0 }
	}
	maxBytes := r.cfg.StagingEgressMaxBytes
	switch {
	case maxBytes == 0:
		maxBytes = DefaultStagingEgressMaxBytes
	case maxBytes < 0:
		maxBytes = 0 // no bound
	}
	p := egress.New(egress.Config{
		Upstream:  r.egressUpstream,
		DenyPorts: r.egressDeny,
		MaxBytes:  maxBytes,
		OnLimit: func(max int64) {
			r.stagingLog(req, "ERR", "Staging egress: this staging has downloaded %s, the most one staging may (the operator's --staging-egress-max-bytes): the download in progress was cut off and further downloads are refused", humanSize(max))
		},
		OnDenied: func(target string) {
			r.stagingLog(req, "ERR", "Staging egress: refused %s, the platform's own listener or a link-local (cloud metadata) address: npm and pip show this as 403 Forbidden, bundler as \"Authentication is required\"", target)
		},
		Log: r.log.With("component", "staging-egress", "app_guid", req.AppGUID),
	})
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := p.Serve(ctx, ln); err != nil {
			r.log.Warn("staging egress proxy", "app_guid", req.AppGUID, "error", err)
		}
	}()
	return func() int64 {
		cancel()
		<-done
		return p.Bytes()
	}
}
