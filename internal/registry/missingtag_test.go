package registry_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/pandoplatform/pando/internal/registry"
	"github.com/pandoplatform/pando/internal/registry/registrytest"
)

// A missing tag names the tags the repository has; a missing repository
// says so, although distribution answers MANIFEST_UNKNOWN for both.
func TestResolve_aMissingTagOrRepositorySaysWhich(t *testing.T) {
	host := registrytest.Distribution(t, "walker", "walkpass")
	creds := &registry.Credentials{Username: "walker", Password: "walkpass"}
	img := testImage(t, "amd64", v1.Config{})
	for _, tag := range []string{"v1", "v2"} {
		registrytest.Push(t, host+"/team/web:"+tag, img, "walker", "walkpass")
	}
	c := newClient(t, registry.Options{Insecure: []string{host}})
	for ref, want := range map[string]string{
		host + "/team/web:nope": host + `/team/web:nope not found: repository ` + host + `/team/web has no tag "nope" (its tags: v1, v2)`,
		host + "/team/web":      host + `/team/web not found: repository ` + host + `/team/web has no tag "latest" (its tags: v1, v2)`,
		host + "/team/gone:v1":  host + `/team/gone:v1 not found: registry ` + host + ` has no repository team/gone`,
	} {
		_, err := c.Resolve(context.Background(), ref, creds)
		if registry.KindOf(err) != registry.NotFound || err.Error() != want {
			t.Errorf("%s: %v (kind %q)\nwant %s", ref, err, registry.KindOf(err), want)
		}
	}
	// A digest that is not there is not about tags.
	ref := host + "/team/web@sha256:" + strings.Repeat("ab", 32)
	if _, err := c.Resolve(context.Background(), ref, creds); registry.KindOf(err) != registry.NotFound || strings.Contains(err.Error(), "tags") {
		t.Errorf("%s: %v", ref, err)
	}
}

// A registry's tags answer is read up to a bound: an endless list leaves
// the plain "not found", and a tag name of any length is cut when named.
func TestResolve_aHostileTagsAnswerIsBounded(t *testing.T) {
	var served atomic.Int64
	tags := func(w http.ResponseWriter, long bool) {
		w.Header().Set("Content-Type", "application/json")
		if long {
			fmt.Fprintf(w, `{"name":"team/web","tags":[%q]}`, strings.Repeat("t", 5000))
			return
		}
		io.WriteString(w, `{"name":"team/web","tags":["v1"`)
		chunk := []byte(strings.Repeat(`,"vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"`, 100))
		for range 10000 { // ~100 MB, were it all read
			n, err := w.Write(chunk)
			served.Add(int64(n))
			if err != nil {
				return
			}
		}
		io.WriteString(w, `]}`)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v2/":
			w.WriteHeader(http.StatusOK)
		case strings.HasSuffix(r.URL.Path, "/manifests/nope"):
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`)
		case r.URL.Path == "/v2/team/web/tags/list":
			tags(w, false)
		case r.URL.Path == "/v2/team/long/tags/list":
			tags(w, true)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	c := newClient(t, registry.Options{Insecure: []string{host}})

	_, err := c.Resolve(context.Background(), host+"/team/web:nope", nil)
	if registry.KindOf(err) != registry.NotFound || strings.Contains(err.Error(), "its tags") {
		t.Errorf("endless tags list: %v, want the plain not found", err)
	}
	// The client reads 256 KiB; the kernel's socket buffers on loopback
	// take more before the server's writes fail (send and receive, at
	// most tcp_wmem's and tcp_rmem's maximum: 4 and 32 MiB here), but far
	// less than the ~100 MB a client that read it all would take.
	if n := served.Load(); n > 48<<20 {
		t.Errorf("the server wrote %d bytes of tags before the client stopped reading", n)
	}
	_, err = c.Resolve(context.Background(), host+"/team/long:nope", nil)
	if registry.KindOf(err) != registry.NotFound || !strings.Contains(err.Error(), "its tags: "+strings.Repeat("t", 128)+"...)") {
		t.Errorf("a 5000-character tag: %v, want it cut at 128", err)
	}
}
