package server

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pandoplatform/pando/internal/sqlstore/pgtest"
)

// cfAnswer is a request's status and, for an error, its first CF error.
type cfAnswer struct {
	status        int
	title, detail string
}

func (c *client) ask(method, path, body string) cfAnswer {
	c.t.Helper()
	req, _ := http.NewRequest(method, "http://"+c.api+path, strings.NewReader(body))
	req.Header.Set("Authorization", "bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: bootTimeout}).Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var e struct {
		Errors []struct{ Title, Detail string } `json:"errors"`
	}
	a := cfAnswer{status: resp.StatusCode}
	if json.Unmarshal(raw, &e) == nil && len(e.Errors) > 0 {
		a.title, a.detail = e.Errors[0].Title, e.Errors[0].Detail
	}
	return a
}

// `pando api` on PostgreSQL rides out a PostgreSQL restart: requests
// during it get 503 CF-ServiceUnavailable at once, and the API serves
// again by itself when PostgreSQL is back, holding its claim again.
func TestRunAPI_onPostgreSQLAnswers503DuringARestartAndRecovers(t *testing.T) {
	k := pgtest.Own(t)
	ready := make(chan [2]string, 1)
	cfg := platformConfig(t, ready)
	cfg.DatabaseURL = k.URL(t)
	cfg.DatabaseClaimInterval = 50 * time.Millisecond
	api, addrs := boot(t, func(ctx context.Context) error { return RunAPI(ctx, cfg) }, ready)
	c := login(t, addrs[0], cfg.AdminPassword)
	if a := c.ask(http.MethodGet, "/v3/organizations", ""); a.status != http.StatusOK {
		t.Fatalf("GET /v3/organizations: %+v", a)
	}

	k.Stop(t)
	for _, r := range [][3]string{
		{http.MethodGet, "/v3/organizations", ""},
		{http.MethodPost, "/v3/organizations", `{"name":"while-down"}`},
		{http.MethodGet, "/v3/apps", ""},
	} {
		began := time.Now()
		a := c.ask(r[0], r[1], r[2])
		if a.status != http.StatusServiceUnavailable || a.title != "CF-ServiceUnavailable" || !strings.Contains(a.detail, "database cannot be reached") {
			t.Errorf("%s %s with PostgreSQL down: %+v; want 503 CF-ServiceUnavailable saying the database cannot be reached", r[0], r[1], a)
		}
		if d := time.Since(began); d > 5*time.Second {
			t.Errorf("%s %s with PostgreSQL down took %s; want an answer at once", r[0], r[1], d)
		}
	}

	// A login too: UAA's users are in the CCDB.
	form := url.Values{"grant_type": {"password"}, "username": {"admin"}, "password": {cfg.AdminPassword}}
	req, _ := http.NewRequest(http.MethodPost, "http://"+addrs[0]+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("cf", "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var oauth struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	json.NewDecoder(resp.Body).Decode(&oauth)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || oauth.Error != "temporarily_unavailable" || !strings.Contains(oauth.Description, "database cannot be reached") {
		t.Errorf("a login with PostgreSQL down: %d %+v; want 503 temporarily_unavailable saying the database cannot be reached", resp.StatusCode, oauth)
	}

	k.Start(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		a := c.ask(http.MethodPost, "/v3/organizations", `{"name":"after-restart"}`)
		if a.status == http.StatusCreated {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("POST /v3/organizations 30s after PostgreSQL came back: %+v", a)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if a := c.ask(http.MethodGet, "/v3/organizations?names=after-restart", ""); a.status != http.StatusOK {
		t.Fatalf("GET /v3/organizations after the restart: %+v", a)
	}
	for !claimHeld(t, k.Admin()) {
		if time.Now().After(deadline) {
			t.Fatal("the API did not take its claim on the database again")
		}
		time.Sleep(20 * time.Millisecond)
	}
	api.stop(t)
}

// A server whose claim session ends while another server waits for the
// database stops, saying why, instead of sharing it.
func TestRunAPI_onPostgreSQLStopsWhenAnotherServerTookItsDatabase(t *testing.T) {
	k := pgtest.Own(t)
	ready := make(chan [2]string, 1)
	cfg := platformConfig(t, ready)
	cfg.DatabaseURL = k.URL(t)
	cfg.DatabaseClaimInterval = 50 * time.Millisecond
	api, _ := boot(t, func(ctx context.Context) error { return RunAPI(ctx, cfg) }, ready)

	// The rival queues for the claim's lock: PostgreSQL gives it the lock
	// the moment the API's session ends, before the API can take it back.
	rival, err := sql.Open("pgx", cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer rival.Close()
	conn, err := rival.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	got := make(chan error, 1)
	go func() { _, err := conn.ExecContext(t.Context(), "SELECT pg_advisory_lock($1)", claimKey); got <- err }()
	waitFor(t, "the rival waiting for the claim", func() bool {
		var n int
		err := k.Admin().QueryRowContext(t.Context(), "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").Scan(&n)
		return err == nil && n == 1
	})
	if _, err := k.Admin().ExecContext(t.Context(), `SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND ((classid::bigint << 32) | objid::bigint) = $1`, claimKey); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("the rival's claim: %v", err)
	}
	select {
	case err := <-api.done:
		api.done = nil
		if err == nil || !strings.Contains(err.Error(), "another Pando server took this PostgreSQL database") {
			t.Fatalf("RunAPI returned %v; want it to say another server took its database", err)
		}
	case <-time.After(bootTimeout):
		t.Fatal("the API kept running on a database another server claimed")
	}
}

// claimKey is sqlstore's claim lock ("pando" in ASCII, plus one).
const claimKey int64 = 0x70616e646f + 1

func claimHeld(t *testing.T, admin *sql.DB) bool {
	t.Helper()
	var n int
	err := admin.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND ((classid::bigint << 32) | objid::bigint) = $1`, claimKey).Scan(&n)
	if err != nil {
		t.Fatalf("read pg_locks: %v", err)
	}
	return n > 0
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 30s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
