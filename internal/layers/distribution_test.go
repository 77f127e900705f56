package layers_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pandoplatform/pando/internal/layers"
	"github.com/pandoplatform/pando/internal/registry"
	"github.com/pandoplatform/pando/internal/registry/registrytest"
)

func TestDistribution_resolvesAndFetchesFromAPrivateRegistry(t *testing.T) {
	requireRoot(t)
	const user, pass = "developer", "distribution-Pa55"
	host := registrytest.Distribution(t, user, pass)
	img := appImage(t)
	want := registrytest.Push(t, host+"/team/app:1.0", img, user, pass)
	c, err := registry.New(registry.Options{Insecure: []string{host}})
	if err != nil {
		t.Fatal(err)
	}
	cache, err := layers.Open(filepath.Join(t.TempDir(), "cache"), layers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()

	creds := &registry.Credentials{Username: user, Password: pass}
	resolved, dirs, err := pull(t, c, cache, host+"/team/app:1.0", creds)
	if err != nil {
		t.Fatal(err)
	}
	if resolved.Digest != want.String() || resolved.Config.WorkingDir != "/srv" || len(resolved.Config.ExposedPorts) != 1 || resolved.Config.ExposedPorts[0].Port != 8000 {
		t.Fatalf("resolved %+v", resolved)
	}
	checkPulled(t, dirs)

	start := time.Now()
	_, err = c.Resolve(context.Background(), host+"/team/app:1.0", &registry.Credentials{Username: user, Password: "not-" + pass})
	if registry.KindOf(err) != registry.Unauthorized || strings.Contains(err.Error(), pass) {
		t.Fatalf("wrong password: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("wrong password refused after %v", d)
	}
	for _, ref := range []string{host + "/team/app:nosuchtag", host + "/team/nosuchrepo:1"} {
		if _, err := c.Resolve(context.Background(), ref, creds); registry.KindOf(err) != registry.NotFound {
			t.Fatalf("%s: %v (kind %q)", ref, err, registry.KindOf(err))
		}
	}
}
