package server

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/pandoplatform/pando/internal/cellauth"
)

// maxAPIURLs bounds the API URLs a cell or router takes.
const maxAPIURLs = 16

// discoverTimeout bounds asking one API replica where its cell API is: a
// replica on a dead machine does not hold the search for the others.
const discoverTimeout = 5 * time.Second

// parseAPIURLs reads --join or --api: one API URL, or several (comma
// separated) of API replicas sharing one database.
func parseAPIURLs(flag, s string) ([]*url.URL, error) {
	var urls []*url.URL
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimRight(strings.TrimSpace(part), "/")
		if part == "" {
			continue
		}
		u, err := url.Parse(part)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("%s %q: want http(s)://HOST[:PORT] of the Pando API", flag, part)
		}
		urls = append(urls, u)
	}
	switch {
	case len(urls) == 0:
		return nil, fmt.Errorf("%s: want the URL of the Pando API", flag)
	case len(urls) > maxAPIURLs:
		return nil, fmt.Errorf("%s: %d URLs, at most %d", flag, len(urls), maxAPIURLs)
	}
	return urls, nil
}

// apiReplicas are the API URLs a cell or router was given. It talks to
// one at a time, the leader; when that one cannot be reached (a standby
// keeps its listeners closed) it moves to the next that answers.
type apiReplicas struct {
	urls []*url.URL
	tok  cellauth.Token
	hc   *http.Client
	log  *slog.Logger

	mu  sync.Mutex
	cur int // index of the replica in use
}

func newAPIReplicas(urls []*url.URL, tok cellauth.Token, log *slog.Logger) *apiReplicas {
	return &apiReplicas{urls: urls, tok: tok, hc: &http.Client{Timeout: 30 * time.Second}, log: log}
}

// current is the API URL in use.
func (r *apiReplicas) current() *url.URL {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.urls[r.cur]
}

// each tries try on the replicas in turn, the one in use first (or last,
// with skipCurrent), until one succeeds, each for discoverTimeout at most
// and a fair share of what ctx's deadline leaves; it then uses that one,
// saying so once when it is another. The error is every replica's.
func (r *apiReplicas) each(ctx context.Context, skipCurrent bool, try func(ctx context.Context, u *url.URL) error) error {
	r.mu.Lock()
	start := r.cur
	r.mu.Unlock()
	n := len(r.urls)
	var errs []error
	for i := range n {
		idx := (start + i) % n
		if skipCurrent {
			idx = (start + 1 + i) % n
		}
		tctx, cancel := ctx, context.CancelFunc(func() {})
		if n > 1 {
			d := discoverTimeout
			if dl, ok := ctx.Deadline(); ok {
				// What ctx leaves is shared by the replicas not tried
				// yet: silent ones do not keep the last from its turn.
				d = min(d, time.Until(dl)/time.Duration(n-i))
			}
			tctx, cancel = context.WithTimeout(ctx, d)
		}
		err := try(tctx, r.urls[idx])
		cancel()
		if err == nil {
			r.mu.Lock()
			moved := r.cur != idx
			from := r.urls[r.cur]
			r.cur = idx
			r.mu.Unlock()
			if moved {
				r.log.Warn("switched to another API replica (the one in use is unreachable or a standby)", "api", r.urls[idx].String(), "from", from.String())
			}
			return nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	if n == 1 {
		return errs[0]
	}
	return fmt.Errorf("no API replica answers: %w", errors.Join(errs...))
}

// discover finds the cell API of the first replica that answers (see
// each): its URL and the pinned CA's pool.
func (r *apiReplicas) discover(ctx context.Context, skipCurrent bool) (pool *x509.CertPool, cellAPI string, err error) {
	err = r.each(ctx, skipCurrent, func(ctx context.Context, u *url.URL) error {
		var err error
		pool, cellAPI, err = cellauth.Discover(ctx, r.hc, u.String(), r.tok)
		return err
	})
	return pool, cellAPI, err
}

// failover is a joined cell's cellapi.ServerClient.SetFailover: the cell
// API of another replica that answers, else the unreachable one.
func (r *apiReplicas) failover(ctx context.Context, unreachable string) (string, error) {
	if len(r.urls) == 1 {
		return unreachable, nil
	}
	_, cellAPI, err := r.discover(ctx, true)
	if err != nil {
		return unreachable, err
	}
	return cellAPI, nil
}
