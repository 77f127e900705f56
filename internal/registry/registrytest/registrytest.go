// Package registrytest starts container registries on loopback for tests:
// go-containerregistry's in-process one, and Debian's docker-registry
// (distribution 2.8) with htpasswd auth, the real registry CI's acceptance
// tests use. Both speak plain HTTP: list their HOST:PORT as insecure.
package registrytest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"

	"github.com/pandoplatform/pando/internal/testenv"
)

// InProcess serves an in-memory registry behind wrap (nil: none) until the
// test ends, and returns its HOST:PORT.
func InProcess(t testing.TB, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	var h http.Handler = ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// Push writes img to ref over plain HTTP, with basic auth when user is
// set, and returns its digest.
func Push(t testing.TB, ref string, img v1.Image, user, pass string) v1.Hash {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	auth := authn.Anonymous
	if user != "" {
		auth = &authn.Basic{Username: user, Password: pass}
	}
	if err := remote.Write(r, img, remote.WithAuth(auth)); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// RandomImage is an image of n random layers of size bytes each, for
// linux/arch, its config cfg.
func RandomImage(t testing.TB, size, n int64, arch string, cfg v1.Config) v1.Image {
	t.Helper()
	img, err := random.Image(size, n)
	if err != nil {
		t.Fatal(err)
	}
	return withConfig(t, img, arch, cfg)
}

// ImageOf is a linux/amd64 image of layers, its config cfg.
func ImageOf(t testing.TB, cfg v1.Config, layers ...v1.Layer) v1.Image {
	t.Helper()
	return ArchImageOf(t, "amd64", cfg, layers...)
}

// ArchImageOf is a linux/arch image of layers, its config cfg.
func ArchImageOf(t testing.TB, arch string, cfg v1.Config, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	return withConfig(t, img, arch, cfg)
}

// withConfig is img for linux/arch with cfg, its layers' diff ids kept.
func withConfig(t testing.TB, img v1.Image, arch string, cfg v1.Config) v1.Image {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Config = "linux", arch, cfg
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

// Distribution runs Debian's docker-registry on loopback, storing in a
// temporary directory, with htpasswd auth for user:pass, until the test
// ends; it returns its HOST:PORT. Without the binary the test skips, or
// fails in CI (testenv.Missing).
func Distribution(t testing.TB, user, pass string) string {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		testenv.Missing(t, "docker-registry is not installed (apt-get install docker-registry)")
	}
	addr, stop, err := StartDistribution(context.Background(), bin, t.TempDir(), user, pass)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return addr
}

// StartDistribution starts the docker-registry binary bin on a free
// loopback port, storing under dir, with htpasswd auth for user:pass, and
// waits until it answers. stop kills it. Tests use Distribution; benchmarks
// call this directly.
func StartDistribution(ctx context.Context, bin, dir, user, pass string) (addr string, stop func(), err error) {
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		return "", nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		return "", nil, err
	}
	// The port is picked by listening and closing: another process may
	// take it before the registry binds, so try a few.
	for attempt := 0; ; attempt++ {
		addr, stop, out, err := tryDistribution(ctx, bin, dir)
		if err == nil {
			return addr, stop, nil
		}
		if attempt == 2 || !strings.Contains(out, "address already in use") {
			return "", nil, fmt.Errorf("docker-registry on %s did not start: %w\n%s", addr, err, out)
		}
	}
}

func tryDistribution(ctx context.Context, bin, dir string) (addr string, stop func(), out string, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, "", err
	}
	addr = ln.Addr().String()
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
		return addr, nil, "", err
	}
	var buf bytes.Buffer
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		return addr, nil, "", err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop = func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				return addr, stop, "", nil
			}
		}
		select {
		case <-exited:
			return addr, nil, buf.String(), fmt.Errorf("exited")
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			stop()
			return addr, nil, buf.String(), fmt.Errorf("not answering: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // polling for the registry, with a deadline
	}
}
