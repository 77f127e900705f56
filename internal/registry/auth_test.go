package registry_test

import (
	"context"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/pandoplatform/pando/internal/registry"
	"github.com/pandoplatform/pando/internal/registry/registrytest"
)

// TestBlobs_reuseTheTransportResolveMadeForTheRepository: after a Resolve,
// the layers' downloads (a prefetch's and an instance's) neither ping the
// registry nor fetch a token again; other credentials get their own, and a
// refused one is not kept.
func TestBlobs_reuseTheTransportResolveMadeForTheRepository(t *testing.T) {
	const user, pass = "dev", "share-Pa55"
	var tokenURL string
	var pings, tokens atomic.Int32
	counted := func(next http.Handler) http.Handler {
		inner := tokenAuth(user, pass, &tokenURL)(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/v2/":
				pings.Add(1)
			case "/token":
				tokens.Add(1)
			}
			inner.ServeHTTP(w, r)
		})
	}
	host := registrytest.InProcess(t, counted)
	tokenURL = "http://" + host + "/token"
	registrytest.Push(t, host+"/private/app:1", testImage(t, "amd64", v1.Config{}), user, pass)
	pings.Store(0)
	tokens.Store(0)
	c := newClient(t, registry.Options{Insecure: []string{host}})
	creds := &registry.Credentials{Username: user, Password: pass}
	got, err := c.Resolve(context.Background(), host+"/private/app:1", creds)
	if err != nil {
		t.Fatal(err)
	}
	// The blobs' handshake starts with the Resolve, before any pull.
	deadline := time.Now().Add(5 * time.Second)
	for pings.Load() < 2 || tokens.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("after a Resolve: %d pings and %d tokens, want the blobs' handshake too (2 and 2)", pings.Load(), tokens.Load())
		}
		time.Sleep(time.Millisecond)
	}
	for range 2 {
		blobs, err := c.Blobs(got.Pinned, &registry.Credentials{Username: user, Password: pass})
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range got.Layers {
			rc, err := blobs.OpenBlob(context.Background(), l.Digest)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, rc); err != nil {
				t.Fatal(err)
			}
			rc.Close()
		}
	}
	// Resolve's own handshake, and the one it started for the blobs.
	if p, tk := pings.Load(), tokens.Load(); p != 2 || tk != 2 {
		t.Fatalf("a Resolve and two pulls of its layers: %d pings and %d tokens, want 2 and 2", p, tk)
	}

	bad := &registry.Credentials{Username: user, Password: "bad-" + pass}
	for range 2 {
		blobs, err := c.Blobs(got.Pinned, bad)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := blobs.OpenBlob(context.Background(), got.Layers[0].Digest); registry.KindOf(err) != registry.Unauthorized {
			t.Fatalf("wrong password: %v", err)
		}
	}
	if tk := tokens.Load(); tk != 4 {
		t.Fatalf("two pulls with a wrong password asked for %d tokens, want 2 (a refusal is not kept)", tk-2)
	}
}
