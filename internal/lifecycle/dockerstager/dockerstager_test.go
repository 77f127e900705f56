package dockerstager_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/lifecycle/dockerstager"
	"github.com/pandoplatform/pando/internal/registry"
	"github.com/pandoplatform/pando/internal/registry/registrytest"
)

// image is a random 2-layer linux/arch image with cfg.
func image(t *testing.T, arch string, cfg v1.Config) v1.Image {
	t.Helper()
	return registrytest.RandomImage(t, 256, 2, arch, cfg)
}

var webConfig = v1.Config{
	Entrypoint:   []string{"/bin/server", "--serve"},
	Cmd:          []string{"--port", "8000"},
	Env:          []string{"PATH=/usr/bin:/bin", "GREETING=hello"},
	User:         "1000:1000",
	WorkingDir:   "/srv",
	ExposedPorts: map[string]struct{}{"9000/tcp": {}, "8000/tcp": {}},
}

// lines collects what the stager writes to the staging log.
type lines struct {
	mu sync.Mutex
	l  []string
}

func (l *lines) out(s string) { l.mu.Lock(); l.l = append(l.l, s); l.mu.Unlock() }

func (l *lines) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.l, "\n")
}

func newStager(t *testing.T, host string) (*dockerstager.Stager, *registry.Client) {
	t.Helper()
	c, err := registry.New(registry.Options{Insecure: []string{host}, RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return dockerstager.New(c), c
}

func stage(t *testing.T, s *dockerstager.Stager, ref, user, pass string) (pando.StagingResult, *lines, error) {
	t.Helper()
	var l lines
	res, err := s.Stage(context.Background(), pando.StagingRequest{AppGUID: "app", DockerImage: ref, DockerUsername: user, DockerPassword: pass}, l.out)
	return res, &l, err
}

func TestStage_pinsTheDigestAndReturnsTheExecutionMetadata(t *testing.T) {
	host := registrytest.InProcess(t, nil)
	digest := registrytest.Push(t, host+"/team/web:v1", image(t, "amd64", webConfig), "", "")
	s, _ := newStager(t, host)

	res, log, err := stage(t, s, host+"/team/web:v1", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if want := host + "/team/web@" + digest.String(); res.Image != want {
		t.Errorf("image %q, want %q", res.Image, want)
	}
	const cmd = "/bin/server --serve --port 8000"
	if res.StartCommand != cmd || !maps(res.ProcessTypes, map[string]string{"web": cmd}) {
		t.Errorf("start command %q, process types %v", res.StartCommand, res.ProcessTypes)
	}
	var md map[string]any
	if err := json.Unmarshal([]byte(res.ExecutionMetadata), &md); err != nil {
		t.Fatalf("execution metadata %q: %v", res.ExecutionMetadata, err)
	}
	want := map[string]any{
		"entrypoint": []any{"/bin/server", "--serve"},
		"cmd":        []any{"--port", "8000"},
		"workdir":    "/srv",
		"user":       "1000:1000",
		"env":        []any{"PATH=/usr/bin:/bin", "GREETING=hello"},
		"ports":      []any{map[string]any{"Port": 8000.0, "Protocol": "tcp"}, map[string]any{"Port": 9000.0, "Protocol": "tcp"}},
	}
	got, _ := json.Marshal(md)
	exp, _ := json.Marshal(want)
	if string(got) != string(exp) {
		t.Errorf("execution metadata\n got %s\nwant %s", got, exp)
	}
	for _, l := range []string{
		"Staging docker image " + host + "/team/web:v1...",
		"Resolved " + host + "/team/web:v1 to " + digest.String(),
		"Exposed ports: 8000/tcp, 9000/tcp (the app listens on PORT=8000)",
		"User: 1000:1000",
		"Working directory: /srv",
		"Start command: " + cmd,
		"Staging complete",
	} {
		if !strings.Contains(log.all(), l) {
			t.Errorf("staging log lacks %q:\n%s", l, log.all())
		}
	}
}

// The layer count reads as English: "1 layer", "2 layers".
func TestStage_saysHowManyLayers(t *testing.T) {
	host := registrytest.InProcess(t, nil)
	one := registrytest.RandomImage(t, 256, 1, "amd64", v1.Config{})
	oneDigest := registrytest.Push(t, host+"/one:1", one, "", "")
	twoDigest := registrytest.Push(t, host+"/two:1", image(t, "amd64", v1.Config{}), "", "")
	s, _ := newStager(t, host)
	for ref, want := range map[string]string{
		host + "/one:1": "Image " + host + "/one@" + oneDigest.String() + ": 1 layer, ",
		host + "/two:1": "Image " + host + "/two@" + twoDigest.String() + ": 2 layers, ",
	} {
		_, log, err := stage(t, s, ref, "", "")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(log.all(), want) {
			t.Errorf("staging log lacks %q:\n%s", want, log.all())
		}
	}
}

// A reference by digest is used as given, not "resolved" to itself.
func TestStage_aDigestReferenceIsUsedAsGiven(t *testing.T) {
	host := registrytest.InProcess(t, nil)
	digest := registrytest.Push(t, host+"/web:1", image(t, "amd64", v1.Config{}), "", "")
	s, _ := newStager(t, host)
	res, log, err := stage(t, s, host+"/web@"+digest.String(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Image != host+"/web@"+digest.String() || !strings.Contains(log.all(), "Using digest "+digest.String()+" as given") || strings.Contains(log.all(), "Resolved") {
		t.Errorf("image %q, staging log:\n%s", res.Image, log.all())
	}
}

func maps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestStage_aBareImageGetsTheDefaults(t *testing.T) {
	host := registrytest.InProcess(t, nil)
	registrytest.Push(t, host+"/bare:1", image(t, "amd64", v1.Config{}), "", "")
	s, _ := newStager(t, host)
	res, log, err := stage(t, s, host+"/bare:1", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if res.ExecutionMetadata != "{}" || res.ProcessTypes["web"] != "" || res.StartCommand != "" {
		t.Errorf("result %+v", res)
	}
	for _, l := range []string{"Exposed ports: none (the app listens on PORT=8080)", "User: root", "Start command: none"} {
		if !strings.Contains(log.all(), l) {
			t.Errorf("staging log lacks %q:\n%s", l, log.all())
		}
	}
}

// The droplet keeps what staging resolved: moving the tag changes nothing
// for the pinned image until the next staging.
func TestStage_aMovedTagKeepsTheStagedDigestUntilTheNextStaging(t *testing.T) {
	host := registrytest.InProcess(t, nil)
	ref := host + "/team/web:v1"
	first := registrytest.Push(t, ref, image(t, "amd64", webConfig), "", "")
	s, c := newStager(t, host)
	staged, _, err := stage(t, s, ref, "", "")
	if err != nil {
		t.Fatal(err)
	}
	moved := webConfig
	moved.Cmd = []string{"--port", "7000"}
	second := registrytest.Push(t, ref, image(t, "amd64", moved), "", "")
	if first == second {
		t.Fatal("the test images are the same")
	}
	pinned, err := c.Resolve(context.Background(), staged.Image, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pinned.Digest != first.String() || !slices.Equal(pinned.Config.Cmd, webConfig.Cmd) {
		t.Errorf("the staged image now resolves to %s %v, want %s", pinned.Digest, pinned.Config.Cmd, first)
	}
	again, _, err := stage(t, s, ref, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if want := host + "/team/web@" + second.String(); again.Image != want || again.ProcessTypes["web"] != "/bin/server --serve --port 7000" {
		t.Errorf("restaging gave %s %v, want %s", again.Image, again.ProcessTypes, want)
	}
}

func TestStage_anIndexResolvesToLinuxAMD64(t *testing.T) {
	host := registrytest.InProcess(t, nil)
	amd := image(t, "amd64", webConfig)
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: image(t, "arm64", v1.Config{}), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
	)
	r, err := name.ParseReference(host+"/multi:1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	want, _ := amd.Digest()
	s, _ := newStager(t, host)
	res, log, err := stage(t, s, host+"/multi:1", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Image != host+"/multi@"+want.String() || !strings.Contains(log.all(), "(linux/amd64 of index sha256:") {
		t.Errorf("image %s, log:\n%s", res.Image, log.all())
	}
}

// basicAuth lets only user:pass through, as a registry with htpasswd does.
func basicAuth(user, pass string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
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

// failsQuickly stages ref and wants a staging error of kind, reported to
// the API as a failure of fkind, whose message has every part of want,
// within a few seconds, without the password.
func failsQuickly(t *testing.T, s *dockerstager.Stager, ref, user, pass string, kind registry.Kind, fkind string, want ...string) {
	t.Helper()
	start := time.Now()
	_, log, err := stage(t, s, ref, user, pass)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("failing took %v", took)
	}
	var se *dockerstager.Error
	if err == nil || !errors.As(err, &se) || se.Kind != kind {
		t.Fatalf("error %v (%T), want a staging error of kind %s", err, err, kind)
	}
	if f := se.StagingFailure(); f.Kind != fkind || f.Detail != se.Message {
		t.Errorf("reported as %+v, want kind %s with the message as its detail", f, fkind)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("message %q lacks %q", err, w)
		}
	}
	if pass != "" && (strings.Contains(err.Error(), pass) || strings.Contains(log.all(), pass)) {
		t.Errorf("the password shows: %q\n%s", err, log.all())
	}
}

func TestStage_registryFailuresAreClearStagingErrors(t *testing.T) {
	const user, pass = "bot", "Sup3r-s3cret-pw"
	private := registrytest.InProcess(t, basicAuth(user, pass))
	registrytest.Push(t, private+"/team/app:1", image(t, "amd64", webConfig), user, pass)
	public := registrytest.InProcess(t, nil)
	registrytest.Push(t, public+"/team/app:1", image(t, "amd64", webConfig), "", "")
	registrytest.Push(t, public+"/arm:1", image(t, "arm64", webConfig), "", "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := ln.Addr().String()
	ln.Close()
	c, err := registry.New(registry.Options{Insecure: []string{private, public, gone}, RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s := dockerstager.New(c)

	t.Run("right credentials", func(t *testing.T) {
		res, log, err := stage(t, s, private+"/team/app:1", user, pass)
		if err != nil || !strings.HasPrefix(res.Image, private+"/team/app@sha256:") {
			t.Fatalf("%v %+v", err, res)
		}
		if !strings.Contains(log.all(), "as registry user bot") || strings.Contains(log.all(), pass) {
			t.Errorf("log:\n%s", log.all())
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		failsQuickly(t, s, private+"/team/app:1", user, "wrong-"+pass, registry.Unauthorized, pando.FailureRegistryDenied, "unauthorized", "refused the credentials", private+"/team/app:1")
	})
	t.Run("no credentials", func(t *testing.T) {
		failsQuickly(t, s, private+"/team/app:1", "", "", registry.Unauthorized, pando.FailureRegistryDenied, "unauthorized", "anonymous")
	})
	t.Run("unknown tag", func(t *testing.T) {
		failsQuickly(t, s, public+"/team/app:nope", "", "", registry.NotFound, pando.FailureImageNotFound, public+"/team/app:nope", "not found")
	})
	t.Run("unknown repository", func(t *testing.T) {
		failsQuickly(t, s, public+"/team/nothing:1", "", "", registry.NotFound, pando.FailureImageNotFound, "not found")
	})
	t.Run("unreachable", func(t *testing.T) {
		failsQuickly(t, s, gone+"/team/app:1", "", "", registry.Unreachable, pando.FailureRegistryDown, "cannot reach registry "+gone)
	})
	t.Run("no linux/amd64", func(t *testing.T) {
		failsQuickly(t, s, public+"/arm:1", "", "", registry.NoPlatform, pando.FailureImageNoPlatform, "no linux/amd64 image")
	})
	t.Run("bad reference", func(t *testing.T) {
		failsQuickly(t, s, "Bad Ref!", "", "", registry.BadReference, pando.FailureImageInvalid, "invalid image reference")
	})
}

// A staging cancelled by the cell (timeout, shutdown) returns the
// context's error, so the cell reports its own cause.
func TestStage_cancelledReturnsTheContextError(t *testing.T) {
	release := make(chan struct{})
	host := registrytest.InProcess(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			next.ServeHTTP(w, r)
		})
	})
	defer close(release)
	s, _ := newStager(t, host)
	ctx, cancel := context.WithCancel(context.Background())
	go cancel()
	_, err := s.Stage(ctx, pando.StagingRequest{DockerImage: host + "/x:1"}, func(string) {})
	if err != context.Canceled {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}
