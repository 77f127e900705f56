package cc

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/pandoplatform/pando/internal/uaa"
)

// TestLogin_concurrentBadLoginsDoNotSlowTheAPI: 30 bad logins in flight at
// once, from 30 addresses, with bcrypt at its real cost, while GET /v3/info
// is timed on the same server. The per-address rate limit is opened up so
// the only defence left is the bound on concurrent password checks: the
// worst case, an attacker with many addresses.
func TestLogin_concurrentBadLoginsDoNotSlowTheAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real-cost bcrypt for a few seconds")
	}
	e := ctNew(t, ctOpts{noLogin: true, uaaMod: func(c *uaa.Config) {
		c.BcryptCost = bcrypt.DefaultCost
		c.LoginBurst = 1 << 20
		// Every login waits for its turn instead of being refused: all 30
		// stay in flight for the whole measurement.
		c.BcryptQueue = 64
		c.BcryptMaxWait = time.Minute
	}})
	const workers = 30
	ctx, stop := context.WithCancel(context.Background())
	var (
		wg       sync.WaitGroup
		checked  atomic.Int64 // bad logins answered 401
		failures = make(chan string, workers)
	)
	form := url.Values{"grant_type": {"password"}, "username": {"admin"}, "password": {"wrong"}}.Encode()
	for i := range workers {
		src := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(10+i))}
		client := &http.Client{Transport: &http.Transport{
			DialContext: (&net.Dialer{LocalAddr: src}).DialContext,
		}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer client.CloseIdleConnections()
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, "POST", e.base+"/oauth/token", strings.NewReader(form))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth("cf", "")
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						failures <- err.Error()
					}
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized {
					failures <- fmt.Sprintf("bad login from %s: status %d, want 401", src.IP, resp.StatusCode)
					return
				}
				checked.Add(1)
			}
		}()
	}
	defer func() { stop(); wg.Wait() }()

	// The attack is on once password checks are being answered.
	deadline := time.Now().Add(30 * time.Second)
	for checked.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatal("no bad login was answered within 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	info := &http.Client{Transport: &http.Transport{}}
	defer info.CloseIdleConnections()
	get := func() time.Duration {
		began := time.Now()
		resp, err := info.Get(e.base + "/v3/info")
		if err != nil {
			t.Fatalf("GET /v3/info: %v", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /v3/info: status %d", resp.StatusCode)
		}
		return time.Since(began)
	}
	get() // connect
	// Sample until several password checks have run meanwhile: the
	// samples then span the attack, not a gap between two checks.
	before := checked.Load()
	var took []time.Duration
	for len(took) < 50 || checked.Load()-before < 5 {
		if time.Now().After(deadline.Add(30 * time.Second)) {
			t.Fatalf("only %d bad logins were checked in 30s", checked.Load()-before)
		}
		took = append(took, get())
		time.Sleep(5 * time.Millisecond)
	}
	during := checked.Load() - before
	select {
	case f := <-failures:
		t.Fatal(f)
	default:
	}
	slices.Sort(took)
	t.Logf("GET /v3/info under %d concurrent bad logins (%d checked meanwhile): median %s, p90 %s, max %s",
		workers, during, took[len(took)/2], took[len(took)*9/10], took[len(took)-1])
	if during < 1 {
		t.Fatalf("no bad login was checked while /v3/info was timed: the test measured nothing")
	}
	// The median, not a tail: on a machine loaded by other work (2 cores at
	// load 20) a tenth of the samples may wait tens of ms for a CPU
	// whatever this server does, while without the bound on password
	// checks every GET waits behind them (unbounded, on 2 cores at load
	// 20, not even 50 GETs were answered in 30s).
	if median := took[len(took)/2]; median > 50*time.Millisecond {
		t.Errorf("GET /v3/info took %s (median of %d) while %d bad logins ran, want under 50ms; all: %v", median, len(took), workers, took)
	}
}
