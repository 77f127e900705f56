package server

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pandoplatform/pando/internal/cellauth"
)

// testReplicas is one API URL as a router or cell takes it.
func testReplicas(t *testing.T, apiURL string, tok cellauth.Token) *apiReplicas {
	t.Helper()
	urls, err := parseAPIURLs("--api", apiURL)
	if err != nil {
		t.Fatal(err)
	}
	return newAPIReplicas(urls, tok, slog.New(slog.DiscardHandler))
}

func TestParseAPIURLs_takesOneOrSeveral(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  string
	}{
		{in: "http://10.0.0.1:9022", want: []string{"http://10.0.0.1:9022"}},
		{in: "http://a:9022/, https://b:9022", want: []string{"http://a:9022", "https://b:9022"}},
		{in: "", err: "want the URL of the Pando API"},
		{in: "http://a:9022,10.0.0.2:9022", err: `"10.0.0.2:9022": want http(s)://HOST[:PORT]`},
		{in: strings.Repeat("http://a,", maxAPIURLs+1), err: "at most 16"},
	} {
		urls, err := parseAPIURLs("--join", tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.HasPrefix(err.Error(), "--join") {
				t.Errorf("%q: %v, want an error with %q", tc.in, err, tc.err)
			}
			continue
		}
		var got []string
		for _, u := range urls {
			got = append(got, u.String())
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%q: %v %v, want %v", tc.in, got, err, tc.want)
		}
	}
}

// The replica in use is tried first; when it does not answer the next
// that does is used from then on; a failover tries the others first and
// the one in use last.
func TestAPIReplicas_moveToTheNextThatAnswers(t *testing.T) {
	urls, err := parseAPIURLs("--join", "http://a,http://b,http://c")
	if err != nil {
		t.Fatal(err)
	}
	r := newAPIReplicas(urls, cellauth.Token{}, slog.New(slog.DiscardHandler))
	var tried []string
	answering := map[string]bool{}
	try := func(_ context.Context, u *url.URL) error {
		tried = append(tried, u.Host)
		if !answering[u.Host] {
			return errors.New(u.Host + " refused")
		}
		return nil
	}
	ctx := t.Context()

	answering["b"] = true
	if err := r.each(ctx, false, try); err != nil || !slices.Equal(tried, []string{"a", "b"}) || r.current().Host != "b" {
		t.Fatalf("first search: %v, tried %v, in use %s", err, tried, r.current().Host)
	}
	tried = nil
	if err := r.each(ctx, false, try); err != nil || !slices.Equal(tried, []string{"b"}) {
		t.Fatalf("the replica in use answers: %v, tried %v", err, tried)
	}
	tried = nil
	answering["a"] = true
	if err := r.each(ctx, true, try); err != nil || !slices.Equal(tried, []string{"c", "a"}) || r.current().Host != "a" {
		t.Fatalf("failover: %v, tried %v, in use %s", err, tried, r.current().Host)
	}
	tried = nil
	answering = map[string]bool{}
	err = r.each(ctx, true, try)
	if err == nil || !strings.Contains(err.Error(), "no API replica answers") || !strings.Contains(err.Error(), "c refused") || !slices.Equal(tried, []string{"b", "c", "a"}) {
		t.Fatalf("none answers: %v, tried %v", err, tried)
	}
	if r.current().Host != "a" {
		t.Errorf("in use after none answered: %s, want a (unchanged)", r.current().Host)
	}
}

// Replicas that never answer (a dead machine's address swallowing
// packets) share the caller's deadline with the others: the one that
// answers is reached within it even when it comes last, as a cell's
// presence failover (10 s for every replica) needs with several dead.
func TestAPIReplicas_silentReplicasLeaveTheLastItsTurn(t *testing.T) {
	urls, err := parseAPIURLs("--join", "http://a,http://b,http://c,http://d,http://e")
	if err != nil {
		t.Fatal(err)
	}
	r := newAPIReplicas(urls, cellauth.Token{}, slog.New(slog.DiscardHandler))
	try := func(ctx context.Context, u *url.URL) error {
		if u.Host == "e" {
			return nil
		}
		<-ctx.Done() // silent
		return ctx.Err()
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	if err := r.each(ctx, true, try); err != nil || r.current().Host != "e" {
		t.Fatalf("failover past three silent replicas: %v, in use %s; want e", err, r.current().Host)
	}
}
