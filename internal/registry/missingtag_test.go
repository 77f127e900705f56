package registry_test

import (
	"context"
	"strings"
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
