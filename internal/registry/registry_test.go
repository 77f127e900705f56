package registry_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/pandoplatform/pando/internal/registry"
	"github.com/pandoplatform/pando/internal/registry/registrytest"
)

func newClient(t *testing.T, opts registry.Options) *registry.Client {
	t.Helper()
	if opts.RequestTimeout == 0 {
		opts.RequestTimeout = 5 * time.Second
	}
	c, err := registry.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// testImage is a random 2-layer image with the given platform and config.
func testImage(t *testing.T, arch string, cfg v1.Config) v1.Image {
	t.Helper()
	return registrytest.RandomImage(t, 512, 2, arch, cfg)
}

func pushIndex(t *testing.T, ref string, imgs map[string]v1.Image) v1.Hash {
	t.Helper()
	var idx v1.ImageIndex = empty.Index
	for _, arch := range []string{"arm64", "amd64", "s390x"} {
		img, ok := imgs[arch]
		if !ok {
			continue
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}},
		})
	}
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatalf("push index %s: %v", ref, err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

var appConfig = v1.Config{
	Entrypoint:   []string{"/bin/server", "--serve"},
	Cmd:          []string{"--port", "8000"},
	Env:          []string{"PATH=/usr/bin:/bin", "GREETING=hello"},
	User:         "1000:1000",
	WorkingDir:   "/srv",
	ExposedPorts: map[string]struct{}{"9000/tcp": {}, "8000/tcp": {}, "53/udp": {}},
}

func TestResolve_pinsTheTagToThePushedDigestAndReadsTheConfig(t *testing.T) {
	host := registrytest.InProcess(t, nil)
	img := testImage(t, "amd64", appConfig)
	want := registrytest.Push(t, host+"/team/app:v1", img, "", "")
	c := newClient(t, registry.Options{Insecure: []string{host}})

	got, err := c.Resolve(context.Background(), host+"/team/app:v1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != want.String() {
		t.Fatalf("digest %s, pushed %s", got.Digest, want)
	}
	if got.Pinned != host+"/team/app@"+want.String() {
		t.Fatalf("pinned %q", got.Pinned)
	}
	if got.IndexDigest != "" {
		t.Fatalf("index digest %q for a plain image", got.IndexDigest)
	}
	cfg := got.Config
	if strings.Join(cfg.Entrypoint, " ") != "/bin/server --serve" || strings.Join(cfg.Cmd, " ") != "--port 8000" ||
		strings.Join(cfg.Env, ",") != "PATH=/usr/bin:/bin,GREETING=hello" || cfg.User != "1000:1000" || cfg.WorkingDir != "/srv" {
		t.Fatalf("config %+v", cfg)
	}
	wantPorts := []registry.Port{{53, "udp"}, {8000, "tcp"}, {9000, "tcp"}}
	if len(cfg.ExposedPorts) != 3 || cfg.ExposedPorts[0] != wantPorts[0] || cfg.ExposedPorts[1] != wantPorts[1] || cfg.ExposedPorts[2] != wantPorts[2] {
		t.Fatalf("ports %+v, want %+v", cfg.ExposedPorts, wantPorts)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Layers) != len(m.Layers) {
		t.Fatalf("%d layers, want %d", len(got.Layers), len(m.Layers))
	}
	for i, l := range m.Layers {
		if got.Layers[i] != (registry.Layer{Digest: l.Digest.String(), Size: l.Size, MediaType: string(l.MediaType)}) {
			t.Fatalf("layer %d: %+v, want %+v", i, got.Layers[i], l)
		}
	}

	byDigest, err := c.Resolve(context.Background(), got.Pinned, nil)
	if err != nil {
		t.Fatal(err)
	}
	if byDigest.Digest != got.Digest || byDigest.ConfigDigest != got.ConfigDigest {
		t.Fatalf("resolving the pinned reference gave %s, want %s", byDigest.Digest, got.Digest)
	}
}

func TestResolve_aMovedTagResolvesAnewWhileThePinHolds(t *testing.T) {
	host := registrytest.InProcess(t, nil)
	c := newClient(t, registry.Options{Insecure: []string{host}})
	first := registrytest.Push(t, host+"/app:latest", testImage(t, "amd64", v1.Config{Cmd: []string{"one"}}), "", "")
	before, err := c.Resolve(context.Background(), host+"/app:latest", nil)
	if err != nil {
		t.Fatal(err)
	}
	second := registrytest.Push(t, host+"/app:latest", testImage(t, "amd64", v1.Config{Cmd: []string{"two"}}), "", "")
	after, err := c.Resolve(context.Background(), host+"/app:latest", nil)
	if err != nil {
		t.Fatal(err)
	}
	if before.Digest != first.String() || after.Digest != second.String() || first == second {
		t.Fatalf("before %s (pushed %s), after %s (pushed %s)", before.Digest, first, after.Digest, second)
	}
	pinned, err := c.Resolve(context.Background(), before.Pinned, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pinned.Digest != first.String() || pinned.Config.Cmd[0] != "one" {
		t.Fatalf("pinned resolved to %s %v", pinned.Digest, pinned.Config.Cmd)
	}
}

func TestResolve_selectsLinuxAMD64FromAnIndex(t *testing.T) {
	host := registrytest.InProcess(t, nil)
	amd := testImage(t, "amd64", v1.Config{Cmd: []string{"amd"}})
	arm := testImage(t, "arm64", v1.Config{Cmd: []string{"arm"}})
	idx := pushIndex(t, host+"/multi:1", map[string]v1.Image{"amd64": amd, "arm64": arm})
	c := newClient(t, registry.Options{Insecure: []string{host}})

	got, err := c.Resolve(context.Background(), host+"/multi:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := amd.Digest()
	if got.Digest != want.String() || got.IndexDigest != idx.String() || got.Config.Cmd[0] != "amd" {
		t.Fatalf("got digest %s index %s cmd %v; want %s, %s, amd", got.Digest, got.IndexDigest, got.Config.Cmd, want, idx)
	}
}

func TestResolve_aOneImageIndexWithoutPlatformTakesTheImagesWord(t *testing.T) {
	host := registrytest.InProcess(t, nil)
	c := newClient(t, registry.Options{Insecure: []string{host}})
	for arch, wantKind := range map[string]registry.Kind{"amd64": "", "arm64": registry.NoPlatform} {
		img := testImage(t, arch, v1.Config{})
		idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img})
		r, err := name.ParseReference(host+"/unlabelled:"+arch, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.WriteIndex(r, idx); err != nil {
			t.Fatal(err)
		}
		got, err := c.Resolve(context.Background(), r.String(), nil)
		if registry.KindOf(err) != wantKind {
			t.Fatalf("%s: %v, want kind %q", arch, err, wantKind)
		}
		if want, _ := img.Digest(); err == nil && got.Digest != want.String() {
			t.Fatalf("%s: digest %s, want %s", arch, got.Digest, want)
		}
	}
}

func TestResolve_anImageWithoutLinuxAMD64FailsClearly(t *testing.T) {
	host := registrytest.InProcess(t, nil)
	pushIndex(t, host+"/armonly:1", map[string]v1.Image{"arm64": testImage(t, "arm64", v1.Config{}), "s390x": testImage(t, "s390x", v1.Config{})})
	registrytest.Push(t, host+"/armimage:1", testImage(t, "arm64", v1.Config{}), "", "")
	c := newClient(t, registry.Options{Insecure: []string{host}})
	for _, ref := range []string{host + "/armonly:1", host + "/armimage:1"} {
		_, err := c.Resolve(context.Background(), ref, nil)
		if registry.KindOf(err) != registry.NoPlatform || !strings.Contains(err.Error(), "no linux/amd64 image in "+ref) {
			t.Fatalf("%s: %v (kind %q)", ref, err, registry.KindOf(err))
		}
	}
}

// An image whose config names no platform says so, not "it is /".
func TestResolve_anImageWithoutPlatformSaysSo(t *testing.T) {
	host := registrytest.InProcess(t, nil)
	img := testImage(t, "amd64", v1.Config{})
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "", ""
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	registrytest.Push(t, host+"/noplatform:1", img, "", "")
	c := newClient(t, registry.Options{Insecure: []string{host}})
	_, err = c.Resolve(context.Background(), host+"/noplatform:1", nil)
	want := `no linux/amd64 image in ` + host + `/noplatform:1 (its config names no platform: os "", architecture ""; the image's builder must set them)`
	if registry.KindOf(err) != registry.NoPlatform || err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v (kind %q), want %q", err, registry.KindOf(err), want)
	}
}

// A plain-HTTP registry not listed as insecure is named with the flag
// that lists it and who sets it (the operator, on the server and cells).
func TestResolve_aPlainHTTPRegistryNotListedNamesTheOperatorsFlag(t *testing.T) {
	host := registrytest.InProcess(t, nil)
	registrytest.Push(t, host+"/plain:1", testImage(t, "amd64", v1.Config{}), "", "")
	c := newClient(t, registry.Options{})
	_, err := c.Resolve(context.Background(), host+"/plain:1", nil)
	want := "registry " + host + " answers only plain HTTP, which Pando allows only for registries its operator lists as insecure (pando server --insecure-registry " + host + ", and the same on each pando cell)"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want %q", err, want)
	}
}

// basicAuth lets only user:pass through, as a registry with htpasswd does.
func basicAuth(user, pass string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func TestResolve_basicAuth(t *testing.T) {
	const user, pass = "dev", "s3cret-Pa55word"
	host := registrytest.InProcess(t, basicAuth(user, pass))
	want := registrytest.Push(t, host+"/private/app:1", testImage(t, "amd64", v1.Config{}), user, pass)
	c := newClient(t, registry.Options{Insecure: []string{host}})

	got, err := c.Resolve(context.Background(), host+"/private/app:1", &registry.Credentials{Username: user, Password: pass})
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != want.String() {
		t.Fatalf("digest %s, want %s", got.Digest, want)
	}

	for _, creds := range []*registry.Credentials{nil, {Username: user, Password: "wrong-" + pass}} {
		start := time.Now()
		_, err := c.Resolve(context.Background(), host+"/private/app:1", creds)
		if registry.KindOf(err) != registry.Unauthorized || !strings.Contains(err.Error(), "unauthorized") {
			t.Fatalf("creds %v: %v (kind %q)", creds, err, registry.KindOf(err))
		}
		if strings.Contains(err.Error(), pass) {
			t.Fatalf("the password leaked: %q", err.Error())
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("refused after %v, want within seconds", d)
		}
	}
}

func TestCredentials_neverPrintThePassword(t *testing.T) {
	const pass = "print-Pa55"
	creds := &registry.Credentials{Username: "dev", Password: pass}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("pull", "creds", creds, "value", *creds)
	for _, s := range []string{fmt.Sprint(creds), fmt.Sprintf("%v %+v %#v %s", *creds, *creds, creds, creds), logged.String()} {
		if strings.Contains(s, pass) || !strings.Contains(s, "dev") {
			t.Fatalf("printed as %q", s)
		}
	}
}

// An error body echoing the password (a hostile or careless registry)
// does not carry it into the message.
func TestResolve_scrubsThePasswordFromQuotedRegistryErrors(t *testing.T) {
	const pass = "echo-me-Pa55"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			return
		}
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, "bad request from "+pass)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	c := newClient(t, registry.Options{Insecure: []string{host}})
	_, err := c.Resolve(context.Background(), host+"/app:1", &registry.Credentials{Username: "u", Password: pass})
	if err == nil || strings.Contains(err.Error(), pass) || !strings.Contains(err.Error(), "***") {
		t.Fatalf("err %v", err)
	}
}

func TestResolve_unknownRepositoryOrTagIsNotFound(t *testing.T) {
	host := registrytest.InProcess(t, nil)
	registrytest.Push(t, host+"/app:1", testImage(t, "amd64", v1.Config{}), "", "")
	c := newClient(t, registry.Options{Insecure: []string{host}})
	for _, ref := range []string{host + "/nosuch:1", host + "/app:nosuchtag", host + "/app@sha256:" + strings.Repeat("ab", 32)} {
		start := time.Now()
		_, err := c.Resolve(context.Background(), ref, nil)
		if registry.KindOf(err) != registry.NotFound || !strings.Contains(err.Error(), "not found") {
			t.Fatalf("%s: %v (kind %q)", ref, err, registry.KindOf(err))
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("%s: not found after %v", ref, d)
		}
	}
}

func TestResolve_anUnreachableRegistryFailsClearly(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := ln.Addr().String()
	ln.Close()
	c := newClient(t, registry.Options{Insecure: []string{host}})
	_, err = c.Resolve(context.Background(), host+"/app:1", nil)
	if registry.KindOf(err) != registry.Unreachable || !strings.Contains(err.Error(), "cannot reach registry "+host) {
		t.Fatalf("%v (kind %q)", err, registry.KindOf(err))
	}
}

// A loopback registry not listed as insecure that nothing answers on is
// unreachable, not "plain HTTP only": go-containerregistry's plain-HTTP
// fallback after the failed HTTPS dial must not hide the refused
// connection.
func TestResolve_anUnlistedLoopbackRegistryThatIsDownIsUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := ln.Addr().String()
	ln.Close()
	c := newClient(t, registry.Options{})
	_, err = c.Resolve(context.Background(), host+"/app:1", nil)
	if registry.KindOf(err) != registry.Unreachable || !strings.Contains(err.Error(), "cannot reach registry "+host+": ") ||
		!strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "answers only plain HTTP") {
		t.Fatalf("%v (kind %q)", err, registry.KindOf(err))
	}
}

func TestResolve_plainHTTPOnlyForListedRegistries(t *testing.T) {
	var plainRequests atomic.Int64
	host := registrytest.InProcess(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			plainRequests.Add(1)
			next.ServeHTTP(w, r)
		})
	})
	registrytest.Push(t, host+"/app:1", testImage(t, "amd64", v1.Config{}), "", "")
	pushes := plainRequests.Load()
	c := newClient(t, registry.Options{Insecure: []string{"127.0.0.1:1"}})
	_, err := c.Resolve(context.Background(), host+"/app:1", nil)
	if registry.KindOf(err) != registry.Unreachable || !strings.Contains(err.Error(), "insecure") {
		t.Fatalf("%v (kind %q)", err, registry.KindOf(err))
	}
	if n := plainRequests.Load() - pushes; n != 0 {
		t.Fatalf("%d plain HTTP requests reached the registry", n)
	}
}

func TestResolve_aSilentRegistryTimesOut(t *testing.T) {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stop:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(stop); srv.Close() })
	host := strings.TrimPrefix(srv.URL, "http://")
	c := newClient(t, registry.Options{Insecure: []string{host}, RequestTimeout: 300 * time.Millisecond})
	_, err := c.Resolve(context.Background(), host+"/app:1", nil)
	if registry.KindOf(err) != registry.Unreachable || !strings.Contains(err.Error(), "did not answer within 300ms") {
		t.Fatalf("%v (kind %q)", err, registry.KindOf(err))
	}
}

func TestResolve_boundsManifestsAndLayers(t *testing.T) {
	host := registrytest.InProcess(t, nil)
	registrytest.Push(t, host+"/app:1", testImage(t, "amd64", v1.Config{}), "", "")
	cases := map[string]registry.Options{
		"larger than 64 bytes": {MaxManifestBytes: 64},
		"more than the 1":      {MaxLayers: 1},
	}
	for want, opts := range cases {
		opts.Insecure = []string{host}
		_, err := newClient(t, opts).Resolve(context.Background(), host+"/app:1", nil)
		if registry.KindOf(err) != registry.BadImage || !strings.Contains(err.Error(), want) {
			t.Fatalf("%+v: %v (kind %q)", opts, err, registry.KindOf(err))
		}
	}
}

func TestResolve_anArtifactIsNotAnImage(t *testing.T) {
	host := registrytest.InProcess(t, nil)
	artifact := mutate.ConfigMediaType(testImage(t, "amd64", v1.Config{}), "application/vnd.cncf.helm.config.v1+json")
	registrytest.Push(t, host+"/chart:1", artifact, "", "")
	_, err := newClient(t, registry.Options{Insecure: []string{host}}).Resolve(context.Background(), host+"/chart:1", nil)
	if registry.KindOf(err) != registry.BadImage || !strings.Contains(err.Error(), "is not a container image") {
		t.Fatalf("%v (kind %q)", err, registry.KindOf(err))
	}
}

func TestResolve_badReferences(t *testing.T) {
	c := newClient(t, registry.Options{})
	for _, ref := range []string{"", "UPPER/case", "app:bad tag", strings.Repeat("a", 600)} {
		_, err := c.Resolve(context.Background(), ref, nil)
		if registry.KindOf(err) != registry.BadReference || !strings.Contains(err.Error(), "invalid image reference") {
			t.Fatalf("%q: %v", ref, err)
		}
	}
}

// recordingTransport answers the ping and records which manifest was asked
// for, so short names can be checked without the internet.
type recordingTransport struct{ urls chan string }

func (rt recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	status := http.StatusOK
	if r.URL.Path != "/v2/" {
		rt.urls <- r.URL.String()
		status = http.StatusNotFound
	}
	return &http.Response{StatusCode: status, Body: io.NopCloser(strings.NewReader("")), Header: http.Header{}, Request: r}, nil
}

func TestResolve_dockerHubShortNames(t *testing.T) {
	cases := map[string]string{
		"nginx":                "https://index.docker.io/v2/library/nginx/manifests/latest",
		"library/nginx:1.27":   "https://index.docker.io/v2/library/nginx/manifests/1.27",
		"user/app":             "https://index.docker.io/v2/user/app/manifests/latest",
		"docker.io/user/app:2": "https://index.docker.io/v2/user/app/manifests/2",
		"ghcr.io/org/tool:v1":  "https://ghcr.io/v2/org/tool/manifests/v1",
		"quay.io/a/b@sha256:" + strings.Repeat("0", 64): "https://quay.io/v2/a/b/manifests/sha256:" + strings.Repeat("0", 64),
	}
	for ref, want := range cases {
		rt := recordingTransport{urls: make(chan string, 10)}
		c := newClient(t, registry.Options{Transport: rt})
		_, err := c.Resolve(context.Background(), ref, nil)
		if registry.KindOf(err) != registry.NotFound {
			t.Fatalf("%s: %v", ref, err)
		}
		if got := <-rt.urls; got != want {
			t.Fatalf("%s fetched %s, want %s", ref, got, want)
		}
	}
}

func TestResolve_cancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	host := registrytest.InProcess(t, nil)
	_, err := newClient(t, registry.Options{Insecure: []string{host}}).Resolve(ctx, host+"/app:1", nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("%v", err)
	}
}

func TestBlobs_streamsALayerByDigest(t *testing.T) {
	const user, pass = "dev", "blob-Pa55"
	host := registrytest.InProcess(t, basicAuth(user, pass))
	img := testImage(t, "amd64", v1.Config{})
	registrytest.Push(t, host+"/app:1", img, user, pass)
	c := newClient(t, registry.Options{Insecure: []string{host}})
	creds := &registry.Credentials{Username: user, Password: pass}
	resolved, err := c.Resolve(context.Background(), host+"/app:1", creds)
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := c.Blobs(resolved.Pinned, creds)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range resolved.Layers {
		rc, err := blobs.OpenBlob(context.Background(), l.Digest)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		n, err := io.Copy(h, rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != l.Digest || n != l.Size {
			t.Fatalf("blob %s: read %d bytes hashing to %s", l.Digest, n, got)
		}
	}
	_, err = blobs.OpenBlob(context.Background(), "sha256:"+strings.Repeat("cd", 32))
	if registry.KindOf(err) != registry.NotFound {
		t.Fatalf("unknown blob: %v", err)
	}
	wrong, err := c.Blobs(resolved.Pinned, &registry.Credentials{Username: user, Password: "nope"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = wrong.OpenBlob(context.Background(), resolved.Layers[0].Digest)
	if registry.KindOf(err) != registry.Unauthorized {
		t.Fatalf("wrong password: %v", err)
	}
}

func TestResolve_overHTTPSWithoutAnyInsecureListing(t *testing.T) {
	srv := httptest.NewTLSServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "https://")
	r, err := name.ParseReference(host + "/app:1")
	if err != nil {
		t.Fatal(err)
	}
	img := testImage(t, "amd64", v1.Config{})
	if err := remote.Write(r, img, remote.WithTransport(srv.Client().Transport)); err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())

	got, err := newClient(t, registry.Options{RootCAs: roots}).Resolve(context.Background(), host+"/app:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != want.String() {
		t.Fatalf("digest %s, want %s", got.Digest, want)
	}

	_, err = newClient(t, registry.Options{}).Resolve(context.Background(), host+"/app:1", nil)
	if registry.KindOf(err) != registry.Unreachable || !strings.Contains(err.Error(), "over TLS") {
		t.Fatalf("untrusted certificate: %v (kind %q)", err, registry.KindOf(err))
	}
}

// tokenAuth plays docker's token dance: the registry sends clients to a
// token endpoint (same server) that takes user:pass and hands out a bearer
// token, which the registry then requires.
func tokenAuth(user, pass string, tokenURL *string) func(http.Handler) http.Handler {
	const token = "t0k3n"
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/token" {
				if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
					w.WriteHeader(http.StatusUnauthorized)
					io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}`)
					return
				}
				io.WriteString(w, `{"token":"`+token+`"}`)
				return
			}
			if r.Header.Get("Authorization") != "Bearer "+token {
				w.Header().Set("WWW-Authenticate", `Bearer realm="`+*tokenURL+`",service="test"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func TestResolve_bearerTokenAuth(t *testing.T) {
	const user, pass = "dev", "token-Pa55"
	var tokenURL string
	host := registrytest.InProcess(t, tokenAuth(user, pass, &tokenURL))
	tokenURL = "http://" + host + "/token"
	want := registrytest.Push(t, host+"/private/app:1", testImage(t, "amd64", v1.Config{}), user, pass)
	c := newClient(t, registry.Options{Insecure: []string{host}})

	got, err := c.Resolve(context.Background(), host+"/private/app:1", &registry.Credentials{Username: user, Password: pass})
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != want.String() {
		t.Fatalf("digest %s, want %s", got.Digest, want)
	}
	blobs, err := c.Blobs(got.Pinned, &registry.Credentials{Username: user, Password: pass})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := blobs.OpenBlob(context.Background(), got.Layers[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()

	_, err = c.Resolve(context.Background(), host+"/private/app:1", &registry.Credentials{Username: user, Password: "bad-" + pass})
	if registry.KindOf(err) != registry.Unauthorized || strings.Contains(err.Error(), pass) {
		t.Fatalf("wrong password: %v (kind %q)", err, registry.KindOf(err))
	}
}
