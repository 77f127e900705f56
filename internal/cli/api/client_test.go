package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func jwtWithExp(exp time.Time) string {
	enc := base64.RawURLEncoding
	claims, _ := json.Marshal(map[string]any{"exp": exp.Unix(), "user_name": "admin"})
	return enc.EncodeToString([]byte(`{"alg":"HS256"}`)) + "." + enc.EncodeToString(claims) + ".sig"
}

func newTestClient(t *testing.T, h http.Handler, cfg Config) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg.URL = srv.URL
	cfg.PollMin, cfg.PollMax = time.Millisecond, 5*time.Millisecond
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestList_followsAbsoluteNextHrefs(t *testing.T) {
	var base string
	mux := http.NewServeMux()
	mux.HandleFunc("/v3/stacks", func(w http.ResponseWriter, r *http.Request) {
		page := r.URL.Query().Get("page")
		next := any(nil)
		name := "cflinuxfs4"
		if page == "" {
			next = map[string]string{"href": base + "/v3/stacks?page=2"}
			name = "cflinuxfs3"
		}
		json.NewEncoder(w).Encode(map[string]any{
			"pagination": map[string]any{"next": next},
			"resources":  []any{map[string]string{"name": name}},
		})
	})
	c := newTestClient(t, mux, Config{})
	base = c.URL()
	stacks, err := c.Stacks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(stacks) != 2 || stacks[0].Name != "cflinuxfs3" || stacks[1].Name != "cflinuxfs4" {
		t.Errorf("stacks = %+v", stacks)
	}
}

func TestWaitJob_failedJobCarriesItsErrors(t *testing.T) {
	var polls atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/v3/apps/a1", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "http://"+r.Host+"/v3/jobs/j1")
		w.WriteHeader(202)
	})
	mux.HandleFunc("/v3/jobs/j1", func(w http.ResponseWriter, r *http.Request) {
		state := "PROCESSING"
		if polls.Add(1) > 2 {
			state = "FAILED"
		}
		json.NewEncoder(w).Encode(map[string]any{"guid": "j1", "state": state,
			"errors": []any{map[string]any{"code": 10008, "title": "CF-UnprocessableEntity", "detail": "app is locked"}}})
	})
	c := newTestClient(t, mux, Config{})
	err := c.DeleteApp(context.Background(), "a1")
	if err == nil || err.Error() != "app is locked (CF-UnprocessableEntity)" {
		t.Errorf("err = %v", err)
	}
	if polls.Load() != 3 {
		t.Errorf("polled %d times, want 3", polls.Load())
	}
}

func TestSend_401RenewsOnceAndRetries(t *testing.T) {
	good := jwtWithExp(time.Now().Add(time.Hour))
	var refreshes atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"links": map[string]any{
			"cloud_controller_v3": map[string]any{"href": "http://" + r.Host + "/v3"},
			"login":               map[string]any{"href": "http://" + r.Host},
		}})
	})
	mux.HandleFunc("/oauth/token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		if r.PostForm.Get("grant_type") != "refresh_token" || r.PostForm.Get("refresh_token") != "r1" {
			w.WriteHeader(401)
			return
		}
		refreshes.Add(1)
		json.NewEncoder(w).Encode(map[string]any{"access_token": good, "refresh_token": "r2", "token_type": "bearer"})
	})
	mux.HandleFunc("/v3/stacks", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "bearer "+good {
			w.WriteHeader(401)
			fmt.Fprint(w, `{"errors":[{"code":1000,"title":"CF-InvalidAuthToken","detail":"Invalid Auth Token"}]}`)
			return
		}
		fmt.Fprint(w, `{"pagination":{"next":null},"resources":[]}`)
	})
	var saved Tokens
	// The server rejects this token although it has not expired (e.g. the
	// server's signing key changed).
	c := newTestClient(t, mux, Config{
		Tokens:   Tokens{Access: jwtWithExp(time.Now().Add(time.Hour)) + "x", Refresh: "r1"},
		OnTokens: func(t Tokens) { saved = t },
	})
	if _, err := c.Stacks(context.Background()); err != nil {
		t.Fatal(err)
	}
	if refreshes.Load() != 1 || saved.Access != good || saved.Refresh != "r2" {
		t.Errorf("refreshes = %d, saved = %+v", refreshes.Load(), saved)
	}
}

func TestStreamLogs_parsesServerSentEvents(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/pando/v1/logs/a1/stream", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("source_types") != "STG,APP" || r.URL.Query().Get("start_time") != "42" {
			t.Errorf("query = %s", r.URL.RawQuery)
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, ": hello\n\n")
		fmt.Fprint(w, "event: log\nid: 1\ndata: {\"timestamp\": 1795663555979653120, \"source_type\": \"STG\",\n")
		fmt.Fprint(w, "data: \"instance_id\": \"0\", \"type\": \"OUT\", \"payload\": \"one\"}\n\n")
		fmt.Fprint(w, "data: {\"timestamp\": \"1795663555979653121\", \"source_type\": \"APP/PROC/WEB\", \"instance_id\": \"1\", \"type\": \"ERR\", \"payload\": \"two\"}\n\n")
	})
	c := newTestClient(t, mux, Config{})
	var got []string
	connected := false
	err := c.StreamLogs(context.Background(), "a1", []string{"STG", "APP"}, 42, func() { connected = true }, func(l LogLine) {
		got = append(got, fmt.Sprintf("%d %s/%s %s %s", l.Timestamp, l.SourceType, l.InstanceID, l.Type, l.Payload))
	})
	if err != nil || !connected {
		t.Fatalf("err = %v, connected = %v", err, connected)
	}
	want := "1795663555979653120 STG/0 OUT one|1795663555979653121 APP/PROC/WEB/1 ERR two"
	if strings.Join(got, "|") != want {
		t.Errorf("lines = %q", got)
	}
	if err := c.StreamLogs(context.Background(), "missing", nil, 0, nil, func(LogLine) {}); err != ErrUnsupported {
		t.Errorf("404 stream: err = %v, want ErrUnsupported", err)
	}
}

func TestAwaitBuild_fallsBackToPollingWithoutPandoEndpoint(t *testing.T) {
	var gets atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/v3/builds/b1", func(w http.ResponseWriter, r *http.Request) {
		state := "STAGING"
		if gets.Add(1) >= 3 {
			state = "STAGED"
		}
		fmt.Fprintf(w, `{"guid":"b1","state":%q,"droplet":{"guid":"d1"}}`, state)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(404)
		fmt.Fprint(w, `{"errors":[{"code":10000,"title":"CF-NotFound","detail":"Unknown request"}]}`)
	})
	c := newTestClient(t, mux, Config{})
	b, err := c.AwaitBuild(context.Background(), "b1")
	if err != nil || b.State != "STAGED" || b.DropletGUID() != "d1" {
		t.Fatalf("build = %+v, err = %v", b, err)
	}
}

func TestErrorMessages(t *testing.T) {
	cases := []struct {
		body string
		want string
	}{
		{`{"errors":[{"code":10010,"title":"CF-ResourceNotFound","detail":"App not found"}]}`, "App not found (CF-ResourceNotFound)"},
		{`{"error":"unauthorized","error_description":"Bad credentials"}`, "Bad credentials (unauthorized)"},
		{`<html>oops</html>`, "GET http://x/v3/apps: unexpected status 502 Bad Gateway: <html>oops</html>"},
	}
	for _, c := range cases {
		if got := decodeError("GET", "http://x/v3/apps", 502, []byte(c.body)).Error(); got != c.want {
			t.Errorf("error = %q, want %q", got, c.want)
		}
	}
}

func TestAwaitBuild_goneBuildIsErrBuildGone(t *testing.T) {
	cfError := func(w http.ResponseWriter, code int, title, detail string) {
		w.WriteHeader(404)
		json.NewEncoder(w).Encode(map[string]any{"errors": []any{map[string]any{"code": code, "title": title, "detail": detail}}})
	}
	var v3Polls atomic.Int32
	cases := []struct {
		name string
		// pando answers /pando/v1/builds/b1; nil means the server lacks it.
		pando func(w http.ResponseWriter)
		// v3 answers the n-th GET /v3/builds/b1.
		v3      func(w http.ResponseWriter, n int32)
		gone    bool
		state   string
		v3Polls int32
	}{
		{name: "pando says the build is gone",
			pando: func(w http.ResponseWriter) { cfError(w, 10010, "CF-ResourceNotFound", "Build not found") },
			gone:  true},
		{name: "plain CF: the build disappears while polled",
			v3: func(w http.ResponseWriter, n int32) {
				if n > 1 {
					cfError(w, 10010, "CF-ResourceNotFound", "Build not found")
					return
				}
				json.NewEncoder(w).Encode(map[string]any{"guid": "b1", "state": "STAGING"})
			},
			gone: true, v3Polls: 2},
		{name: "plain CF: the build stages",
			v3: func(w http.ResponseWriter, n int32) {
				state := "STAGING"
				if n > 1 {
					state = "STAGED"
				}
				json.NewEncoder(w).Encode(map[string]any{"guid": "b1", "state": state})
			},
			state: "STAGED", v3Polls: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v3Polls.Store(0)
			mux := http.NewServeMux()
			mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
				cfError(w, 10000, "CF-NotFound", "Unknown request")
			})
			if tc.pando != nil {
				mux.HandleFunc("/pando/v1/builds/b1", func(w http.ResponseWriter, r *http.Request) { tc.pando(w) })
			}
			if tc.v3 != nil {
				mux.HandleFunc("/v3/builds/b1", func(w http.ResponseWriter, r *http.Request) { tc.v3(w, v3Polls.Add(1)) })
			}
			c := newTestClient(t, mux, Config{Tokens: Tokens{Access: jwtWithExp(time.Now().Add(time.Hour))}})
			b, err := c.AwaitBuild(context.Background(), "b1")
			if tc.gone {
				if !errors.Is(err, ErrBuildGone) {
					t.Fatalf("err = %v, want ErrBuildGone", err)
				}
			} else if err != nil || b.State != tc.state {
				t.Fatalf("build = %+v, err = %v", b, err)
			}
			if n := v3Polls.Load(); n != tc.v3Polls {
				t.Errorf("%d polls of /v3/builds, want %d", n, tc.v3Polls)
			}
		})
	}
}

func TestPasswordGrant_waitsOutAShort429(t *testing.T) {
	good := jwtWithExp(time.Now().Add(time.Hour))
	var attempts atomic.Int32
	var retryAfter atomic.Value
	retryAfter.Store("1")
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"links": map[string]any{
			"cloud_controller_v3": map[string]any{"href": "http://" + r.Host + "/v3"},
			"login":               map[string]any{"href": "http://" + r.Host},
		}})
	})
	mux.HandleFunc("/oauth/token", func(w http.ResponseWriter, r *http.Request) {
		if attempts.Add(1) == 1 {
			w.Header().Set("Retry-After", retryAfter.Load().(string))
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"error":"too_many_requests","error_description":"The server is busy checking other logins; try again in 1 second."}`)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"access_token": good, "refresh_token": "r", "token_type": "bearer"})
	})
	c := newTestClient(t, mux, Config{})
	if _, err := c.PasswordGrant(context.Background(), "admin", "pw"); err != nil || attempts.Load() != 2 {
		t.Fatalf("PasswordGrant after a 429 with Retry-After 1: %v (%d attempts), want success on the second", err, attempts.Load())
	}

	// A long wait is the user's to decide: the error says how long.
	attempts.Store(0)
	retryAfter.Store("60")
	_, err := c.PasswordGrant(context.Background(), "admin", "pw")
	if err == nil || !strings.Contains(err.Error(), "try again in") || attempts.Load() != 1 {
		t.Fatalf("PasswordGrant after a 429 with Retry-After 60: %v (%d attempts), want the error at once", err, attempts.Load())
	}
}

// A wait for a build rides out a server that goes away (connections
// refused, then a 503 from its front) and sees the build's end once it
// is back; an outage longer than OutageWait ends the wait with the error.
func TestAwaitBuild_ridesOutAServerRestart(t *testing.T) {
	var polls atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/pando/v1/builds/b1", func(w http.ResponseWriter, r *http.Request) {
		switch n := polls.Add(1); {
		case n == 1:
			fmt.Fprint(w, `{"guid":"b1","state":"STAGING"}`)
		case n < 6: // restarting behind its front
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			fmt.Fprint(w, `{"guid":"b1","state":"STAGED","droplet":{"guid":"d1"}}`)
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ln := srv.Listener.Addr().String()

	c, err := New(Config{URL: srv.URL, PollMin: time.Millisecond, PollMax: 5 * time.Millisecond, OutageWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.AwaitBuild(context.Background(), "b1")
	if err != nil || b.State != "STAGED" || polls.Load() != 6 {
		t.Fatalf("build = %+v after %d polls, err = %v", b, polls.Load(), err)
	}

	// Nobody listens any more: connections are refused until the bound
	// (past a GET's own retries, 600 ms).
	srv.Close()
	const bound = 1500 * time.Millisecond
	c, err = New(Config{URL: "http://" + ln, PollMin: time.Millisecond, PollMax: 5 * time.Millisecond, OutageWait: bound})
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if _, err := c.AwaitBuild(context.Background(), "b1"); err == nil || !strings.Contains(err.Error(), "cannot reach the API") {
		t.Fatalf("outage past the bound: err = %v, want the connection error", err)
	}
	if d := time.Since(began); d < bound {
		t.Fatalf("refused connections ended the wait after %s, before OutageWait", d)
	}
}

// A session whose access token expired while the server is down is not
// "expired": renewing it failed because nothing answered, and the error
// says that (logging in again would fail the same way).
func TestRenew_unreachableServerIsNotAnExpiredSession(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	c, err := New(Config{URL: url, Tokens: Tokens{Access: jwtWithExp(time.Now().Add(-time.Hour)), Refresh: "r1"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Stacks(context.Background())
	if err == nil {
		t.Fatal("no error from a server that is down")
	}
	if msg := err.Error(); strings.Contains(msg, "session expired") || !strings.Contains(msg, "renew the session: ") || !strings.Contains(msg, "cannot reach the API at "+url) {
		t.Errorf("error %q: want a renewal that could not reach the API, not an expired session", msg)
	}
}
