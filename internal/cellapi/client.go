package cellapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/cellauth"
)

// DefaultHeartbeat is how often a joined cell renews its presence until
// the server names its presence TTL: a third of the default TTL (6 s,
// three missed renewals), so a lost cell is noticed in seconds.
const DefaultHeartbeat = 2 * time.Second

// minHeartbeat bounds the renewals a short TTL asks for.
const minHeartbeat = 50 * time.Millisecond

// heartbeatFor is the renewal period for a presence TTL: three renewals
// may fail before the presence expires.
func heartbeatFor(ttl time.Duration) time.Duration { return max(ttl/3, minHeartbeat) }

// ServerClient is a joined cell's link to the server: it reports to the
// BBS (pando.CellReporter), keeps the cell's presence, and reads and
// writes the blobstore (Get, Put, Exists: the rep's cell.BlobStore), all
// over mutual TLS.
type ServerClient struct {
	// base is the server's cell API URL; failover (nil: none) may move
	// it to another API replica's.
	base     atomic.Pointer[string]
	failover func(ctx context.Context, unreachable string) (string, error)
	hc       *http.Client
	log      *slog.Logger
	// session tells this process's presences from those of an earlier
	// run of the same cell (Presence.Session).
	session string
	// retry is how blob downloads wait for an unavailable server.
	retry blobRetry
	// failingSince is when presence renewals began failing in a row
	// (unix nanoseconds; 0 while they succeed).
	failingSince atomic.Int64
	// registrations counts the renewals that registered the cell again
	// (the server had forgotten it: restarted, or lost the cell).
	registrations atomic.Int64
}

var (
	_ pando.CellReporter = (*ServerClient)(nil)
)

// NewServerClient talks to the server's cell API with the cell's
// credentials.
func NewServerClient(creds *cellauth.Credentials, log *slog.Logger) *ServerClient {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tr := &http.Transport{
		TLSClientConfig:     cellauth.ClientTLS(&creds.Cert, creds.Pool, cellauth.ServerName),
		Proxy:               nil,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	var sess [16]byte
	_, _ = rand.Read(sess[:]) // crypto/rand.Read does not fail (Go 1.24)
	c := &ServerClient{hc: &http.Client{Transport: tr}, log: log,
		session: hex.EncodeToString(sess[:]), retry: defaultBlobRetry}
	c.setBase(creds.CellAPI)
	return c
}

// baseURL is the cell API URL of the server the client talks to now.
func (c *ServerClient) baseURL() string { return *c.base.Load() }

func (c *ServerClient) setBase(u string) {
	u = strings.TrimRight(u, "/")
	c.base.Store(&u)
}

// SetFailover makes the client move to another server when a presence
// renewal cannot reach the current one: find returns the cell API URL of
// the server to use (the unreachable one when no other answers). The API
// replicas sharing one database share its CA, so the cell's certificate
// stays valid. Call it before KeepPresence.
func (c *ServerClient) SetFailover(find func(ctx context.Context, unreachable string) (string, error)) {
	c.failover = find
}

// report sends a report, retrying while the server is unreachable until
// ctx ends: a report lost to a server restart would leave the BBS wrong.
func (c *ServerClient) report(ctx context.Context, path string, body any) error {
	backoff := 100 * time.Millisecond
	for {
		err := call(ctx, c.hc, "POST", c.baseURL()+path, body, nil)
		if err == nil || pando.ErrorKindOf(err) != pando.EUnavailable {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

func (c *ServerClient) ActualLRPChanged(ctx context.Context, a pando.ActualLRP) error {
	return c.report(ctx, actualChangedPath, a)
}

func (c *ServerClient) ActualLRPRemoved(ctx context.Context, processGUID, instanceGUID string) error {
	return c.report(ctx, actualRemovedPath, removedReport{ProcessGUID: processGUID, InstanceGUID: instanceGUID})
}

func (c *ServerClient) TaskCompleted(ctx context.Context, t pando.Task) error {
	return c.report(ctx, taskCompletedPath, t)
}

// ReportInventory sends what the cell runs (after registering with a
// server that did not know it), retrying while the server is unreachable
// until ctx ends.
func (c *ServerClient) ReportInventory(ctx context.Context, inv pando.CellInventory) error {
	return c.report(ctx, inventoryPath, inv)
}

// SyncCell sends the cell's periodic inventory (cell.RunSync) and
// returns the server's answer: what to stop, what it adopted. The server
// knows the cell by its certificate, not by cellID.
func (c *ServerClient) SyncCell(ctx context.Context, _ string, inv pando.CellInventory) (pando.CellSyncAnswer, error) {
	var ans pando.CellSyncAnswer
	err := call(ctx, c.hc, "POST", c.baseURL()+syncPath, inv, &ans)
	return ans, err
}

// KeepPresence registers the cell with its rep URL and renews it every
// interval (zero: a third of the presence TTL the server answers with,
// DefaultHeartbeat until it has) until ctx ends; state gives the
// capacity sent along. When the server had forgotten the cell (it was lost, e.g. partitioned, and its
// instances were placed elsewhere), reregistered runs, in its own
// goroutine: the cell reports its instances again so that the server
// stops the ones it replaced. A renewal in flight when ctx ends is
// finished, not cut off: once KeepPresence has returned, no renewal of it
// can reach the server after a Leave.
func (c *ServerClient) KeepPresence(ctx context.Context, repURL string, interval time.Duration, state func(context.Context) (pando.CellState, error), reregistered func()) {
	derive := interval <= 0
	if derive {
		interval = DefaultHeartbeat
	}
	// Renewals keep a fixed cadence: a slow one does not push the next
	// one back, so only several failures in a row let the presence
	// expire.
	tick := time.NewTicker(interval)
	defer tick.Stop()
	failing, warned := false, ""
	for {
		st, _ := state(ctx)
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), interval)
		var ans PresenceAnswer
		err := call(cctx, c.hc, "POST", c.baseURL()+presencePath, Presence{RepURL: repURL, State: st, Session: c.session}, &ans)
		cancel()
		if d := heartbeatFor(time.Duration(ans.TTLMillis) * time.Millisecond); err == nil && derive && ans.TTLMillis > 0 && d != interval {
			c.log.Info("cell presence renewed at a third of the server's presence TTL", "ttl", time.Duration(ans.TTLMillis)*time.Millisecond, "every", d)
			interval = d
			tick.Reset(d)
		}
		if err == nil && ans.Registered {
			c.registrations.Add(1)
		}
		if err == nil && ans.Registered && reregistered != nil {
			c.log.Warn("the server had forgotten this cell (lost): reporting its instances again", "server", c.baseURL())
			go reregistered()
		}
		if err != nil && ctx.Err() == nil && c.failover != nil && pando.ErrorKindOf(err) == pando.EUnavailable {
			c.moveOn(ctx, interval)
		}
		switch {
		case err != nil && ctx.Err() == nil:
			c.failingSince.CompareAndSwap(0, time.Now().UnixNano())
		case err == nil:
			c.failingSince.Store(0)
		}
		switch {
		case err != nil && ctx.Err() == nil && (!failing || err.Error() != warned):
			// The first failure in a row, or another reason (the server
			// back, but with a new CA): retries for one reason are quiet.
			c.log.Warn("cell presence not renewed (retrying)", "server", c.baseURL(), "err", err)
			failing, warned = true, err.Error()
		case err == nil && failing:
			c.log.Info("cell presence renewed again", "server", c.baseURL())
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// moveOn asks failover for a server to use instead of the unreachable
// one; the next renewal goes there.
func (c *ServerClient) moveOn(ctx context.Context, interval time.Duration) {
	fctx, cancel := context.WithTimeout(ctx, max(interval, 10*time.Second))
	defer cancel()
	from := c.baseURL()
	to, err := c.failover(fctx, from)
	if err != nil || strings.TrimRight(to, "/") == from {
		return
	}
	c.setBase(to)
	c.hc.CloseIdleConnections()
}

// PresenceFailingFor says how long the cell's presence renewals
// (KeepPresence) have been failing in a row: 0 while they succeed.
func (c *ServerClient) PresenceFailingFor() time.Duration {
	since := c.failingSince.Load()
	if since == 0 {
		return 0
	}
	return time.Since(time.Unix(0, since))
}

// Registrations counts KeepPresence's renewals that registered the cell
// again: the server had forgotten it (it restarted, or had lost the cell)
// and with it anything it had been asked, such as a drain.
func (c *ServerClient) Registrations() int64 { return c.registrations.Load() }

// Drain asks the server to evacuate the cell: its instances get
// replacements elsewhere, and the server stops each one here once its
// replacement is RUNNING, or after a short grace those no other cell can
// take (the answer lists them).
func (c *ServerClient) Drain(ctx context.Context) (DrainAnswer, error) {
	var a DrainAnswer
	err := call(ctx, c.hc, "POST", c.baseURL()+drainPath, nil, &a)
	return a, err
}

// Register sends the presence once (at start-up, to fail fast when the
// server refuses the cell).
func (c *ServerClient) Register(ctx context.Context, repURL string, st pando.CellState) error {
	return call(ctx, c.hc, "POST", c.baseURL()+presencePath, Presence{RepURL: repURL, State: st, Session: c.session}, nil)
}

func (c *ServerClient) blobURL(key string) string { return c.baseURL() + blobsPath + key }

// Put streams r to the blobstore with its SHA-256 in a trailer.
func (c *ServerClient) Put(ctx context.Context, key string, r io.Reader) (pando.BlobInfo, error) {
	h := sha256.New()
	pr, pw := io.Pipe()
	req, err := http.NewRequestWithContext(ctx, "PUT", c.blobURL(key), pr)
	if err != nil {
		return pando.BlobInfo{}, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Trailer = http.Header{checksumTrailer: nil}
	go func() {
		_, err := io.Copy(io.MultiWriter(pw, h), r)
		if err == nil {
			req.Trailer.Set(checksumTrailer, hex.EncodeToString(h.Sum(nil)))
		}
		pw.CloseWithError(err)
	}()
	resp, err := c.hc.Do(req)
	pr.CloseWithError(errors.New("upload ended")) // stops the copy if Do returned early
	if err != nil {
		return pando.BlobInfo{}, pando.Errorf(pando.EUnavailable, "put blob %s: %v", key, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return pando.BlobInfo{}, errorFrom("put blob "+key, resp)
	}
	var info pando.BlobInfo
	if err := decodeJSON(resp.Body, &info); err != nil {
		return pando.BlobInfo{}, fmt.Errorf("put blob %s: %w", key, err)
	}
	return info, nil
}

// Exists asks whether a blob is there.
func (c *ServerClient) Exists(ctx context.Context, key string) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, "HEAD", c.blobURL(key), nil)
	if err != nil {
		return false, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return false, pando.Errorf(pando.EUnavailable, "blob %s: %v", key, err)
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNoContent, http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, pando.Errorf(pando.EForbidden, "blob %s: %s", key, resp.Status)
}

// Leave unregisters the cell (at shutdown, once its instances are
// stopped and reported).
func (c *ServerClient) Leave(ctx context.Context) error {
	return call(ctx, c.hc, "DELETE", c.baseURL()+presencePath, nil, nil)
}
