package layers_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"

	"github.com/pandoplatform/pando/internal/layers"
	"github.com/pandoplatform/pando/internal/registry"
	"github.com/pandoplatform/pando/internal/testenv"
)

// startDistribution runs Debian's docker-registry (distribution 2.8) on
// loopback with htpasswd auth for user:pass and returns its HOST:PORT.
func startDistribution(t *testing.T, user, pass string) string {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		testenv.Missing(t, "docker-registry is not installed (apt-get install docker-registry)")
	}
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The port is picked by listening and closing: another process may
	// take it before the registry binds, so try a few.
	for attempt := 0; ; attempt++ {
		addr, out, ok := tryDistribution(t, bin, dir)
		if ok {
			return addr
		}
		if attempt == 2 || !strings.Contains(out, "address already in use") {
			t.Fatalf("docker-registry on %s did not start:\n%s", addr, out)
		}
	}
}

func tryDistribution(t *testing.T, bin, dir string) (string, string, bool) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	config := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s
  secret: pando-test-secret
auth:
  htpasswd:
    realm: pando-test
    path: %s
`, filepath.Join(dir, "data"), addr, filepath.Join(dir, "htpasswd"))
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				return addr, "", true
			}
		}
		select {
		case <-exited:
			return addr, out.String(), false
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			t.Fatalf("docker-registry not answering on %s: %v\n%s", addr, err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDistribution_resolvesAndFetchesFromAPrivateRegistry(t *testing.T) {
	requireRoot(t)
	const user, pass = "developer", "distribution-Pa55"
	host := startDistribution(t, user, pass)
	img := appImage(t)
	pushTo(t, host+"/team/app:1.0", img, remote.WithAuth(&authn.Basic{Username: user, Password: pass}))
	want, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
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
