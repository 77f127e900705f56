package cell

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/container"
)

func envMap(list []string) map[string]string {
	m := map[string]string{}
	for _, kv := range list {
		k, v, _ := strings.Cut(kv, "=")
		if _, dup := m[k]; dup {
			panic("duplicate " + k)
		}
		m[k] = v
	}
	return m
}

func TestInstanceEnv_hasCFVariablesAndUserCannotOverrideThem(t *testing.T) {
	r := &Rep{cfg: Config{HostAddr: "10.0.0.5"}}
	lrp := pando.DesiredLRP{
		ProcessGUID: "proc", AppGUID: "app", AppName: "myapp", SpaceGUID: "sp", SpaceName: "dev",
		OrgGUID: "org", OrgName: "acme", ProcessType: "web", Routes: []string{"myapp.localhost"},
		Env: []pando.EnvVar{{Name: "FOO", Value: "bar"}, {Name: "PORT", Value: "1"}, {Name: "LANG", Value: "C"}, {Name: "VCAP_APP_PORT", Value: "1"}},
	}
	ports := []pando.PortMapping{{ContainerPort: 8080, HostPort: 61001}, {ContainerPort: 9090, HostPort: 61002}}
	env := envMap(r.instanceEnv(lrp, 2, "inst", ports, 256, 1024))
	want := map[string]string{
		"PORT": "8080", "CF_INSTANCE_INDEX": "2", "INSTANCE_INDEX": "2", "CF_INSTANCE_GUID": "inst",
		"CF_INSTANCE_IP": "10.0.0.5", "CF_INSTANCE_ADDR": "10.0.0.5:61001", "CF_INSTANCE_PORT": "61001",
		"CF_INSTANCE_PORTS": `[{"external":61001,"internal":8080},{"external":61002,"internal":9090}]`,
		"MEMORY_LIMIT":      "256m", "VCAP_SERVICES": "{}", "FOO": "bar", "LANG": "C",
		"VCAP_APP_HOST": "0.0.0.0", "VCAP_APP_PORT": "8080",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s=%q, want %q", k, env[k], v)
		}
	}
	var va map[string]any
	if err := json.Unmarshal([]byte(env["VCAP_APPLICATION"]), &va); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{
		"application_id": "app", "application_name": "myapp", "instance_id": "inst", "instance_index": 2.0,
		"space_name": "dev", "organization_name": "acme", "process_type": "web", "port": 8080.0, "host": "0.0.0.0",
	} {
		if va[k] != v {
			t.Errorf("VCAP_APPLICATION.%s = %v, want %v", k, va[k], v)
		}
	}
	if lim := va["limits"].(map[string]any); lim["mem"] != 256.0 || lim["disk"] != 1024.0 {
		t.Errorf("limits %v", lim)
	}
	if uris := va["application_uris"].([]any); len(uris) != 1 || uris[0] != "myapp.localhost" {
		t.Errorf("uris %v", uris)
	}
}

func TestStagingEnv_operatorVariablesYieldToTheAppsAndThePlatforms(t *testing.T) {
	operator := []pando.EnvVar{
		{Name: "HTTPS_PROXY", Value: "http://user:secret@proxy:3128"},
		{Name: "npm_config_registry", Value: "https://npm.internal/"},
		{Name: "MEMORY_LIMIT", Value: "1m"},
		{Name: "CF_STACK", Value: "other"},
	}
	req := pando.StagingRequest{AppGUID: "app", Env: []pando.EnvVar{{Name: "npm_config_registry", Value: "https://app.example/"}}}
	env := envMap(stagingEnv(req, operator, "host", "10.0.0.5", 1024, 4096, ""))
	for k, v := range map[string]string{
		"HTTPS_PROXY":         "http://user:secret@proxy:3128", // the operator's
		"npm_config_registry": "https://app.example/",          // the app's wins
		"MEMORY_LIMIT":        "1024m",                         // the platform's wins
		"CF_STACK":            "host",
	} {
		if env[k] != v {
			t.Errorf("%s=%q, want %q", k, env[k], v)
		}
	}
}

func TestStagingEnv_withEgressShowsOnlyTheLocalProxy(t *testing.T) {
	operator := []pando.EnvVar{
		{Name: "HTTPS_PROXY", Value: "http://user:secret@proxy:3128"},
		{Name: "no_proxy", Value: ".internal"},
		{Name: "npm_config_https_proxy", Value: "http://user:secret@proxy:3128"},
		{Name: "npm_config_registry", Value: "https://npm.internal/"},
	}
	req := pando.StagingRequest{AppGUID: "app", Env: []pando.EnvVar{{Name: "http_proxy", Value: "http://app-proxy:1"}}}
	env := envMap(stagingEnv(req, operator, "host", "10.0.0.5", 1024, 4096, stagingEgressURL))
	for k, v := range map[string]string{
		"HTTPS_PROXY": "http://127.0.0.1:3128", "HTTP_PROXY": "http://127.0.0.1:3128", "https_proxy": "http://127.0.0.1:3128",
		"http_proxy": "http://127.0.0.1:3128", "npm_config_https_proxy": "http://127.0.0.1:3128", "npm_config_proxy": "http://127.0.0.1:3128",
		"NO_PROXY": "", "no_proxy": "", "npm_config_registry": "https://npm.internal/", "PANDO_STAGING_EGRESS": "on",
	} {
		if env[k] != v {
			t.Errorf("%s=%q, want %q", k, env[k], v)
		}
	}
	if off := envMap(stagingEnv(req, operator, "host", "10.0.0.5", 1024, 4096, "")); off["PANDO_STAGING_EGRESS"] != "off" || off["HTTPS_PROXY"] != "http://user:secret@proxy:3128" {
		t.Errorf("egress off: PANDO_STAGING_EGRESS=%q HTTPS_PROXY=%q", off["PANDO_STAGING_EGRESS"], off["HTTPS_PROXY"])
	}
}

func TestStagingEnv_hasNoPort(t *testing.T) {
	req := pando.StagingRequest{AppGUID: "app", BuildGUID: "build-1", Env: []pando.EnvVar{{Name: "BP_DEBUG", Value: "1"}, {Name: "CF_INSTANCE_IP", Value: "spoofed"}}}
	env := envMap(stagingEnv(req, nil, "host", "10.0.0.5", 1024, 4096, ""))
	for _, k := range []string{"PORT", "VCAP_APP_PORT", "CF_INSTANCE_INDEX"} {
		if _, ok := env[k]; ok {
			t.Errorf("staging env has %s", k)
		}
	}
	for k, v := range map[string]string{"CF_STACK": "host", "MEMORY_LIMIT": "1024m", "VCAP_SERVICES": "{}", "HOME": "/home/vcap", "BP_DEBUG": "1",
		"CF_INSTANCE_GUID": "build-1", "CF_INSTANCE_IP": "10.0.0.5", "CF_INSTANCE_INTERNAL_IP": "127.0.0.1", "CF_INSTANCE_PORTS": "[]",
		"CF_INSTANCE_PORT": "", "CF_INSTANCE_ADDR": ""} {
		if env[k] != v {
			t.Errorf("%s=%q, want %q", k, env[k], v)
		}
	}
	if !strings.Contains(env["VCAP_APPLICATION"], `"application_id":"app"`) {
		t.Errorf("VCAP_APPLICATION %s", env["VCAP_APPLICATION"])
	}
}

// TestStagingFailure_reportsKindsNotWords: each way a staging ends badly
// becomes a kind and its facts; the API words them.
func TestStagingFailure_reportsKindsNotWords(t *testing.T) {
	live := context.Background()
	timedOut, cancel := context.WithCancelCause(live)
	cancel(timeoutError{90 * time.Second})
	cancelled, cancel := context.WithCancelCause(live)
	cancel(errCancelled)
	shutdown, cancel := context.WithCancelCause(live)
	cancel(errShutdown)
	long := strings.Repeat("x", 2*maxFailureDetail)
	for _, tc := range []struct {
		name string
		ctx  context.Context
		err  error
		want pando.Failure
	}{
		{"no buildpack detected", live, &exitError{container.ExitStatus{Code: 222}}, pando.Failure{Kind: pando.FailureNoAppDetected, ExitCode: 222}},
		{"compile failed", live, &exitError{container.ExitStatus{Code: 223}}, pando.Failure{Kind: pando.FailureCompileFailed, ExitCode: 223}},
		{"release failed", live, &exitError{container.ExitStatus{Code: 224}}, pando.Failure{Kind: pando.FailureReleaseFailed, ExitCode: 224}},
		{"supply failed", live, &exitError{container.ExitStatus{Code: 225}}, pando.Failure{Kind: pando.FailureSupplyFailed, ExitCode: 225}},
		{"another status", live, &exitError{container.ExitStatus{Code: 1}}, pando.Failure{Kind: pando.FailureExited, ExitCode: 1}},
		{"out of memory", live, &exitError{container.ExitStatus{Code: 137, OOMKilled: true, Signaled: true}}, pando.Failure{Kind: pando.FailureOOM, ExitCode: 137, LimitMB: 1024}},
		{"disk quota", live, quotaError{32}, pando.Failure{Kind: pando.FailureDiskFull, LimitMB: 32}},
		{"cell-side error", live, errors.New("download app package: boom"), pando.Failure{Kind: pando.FailureStagingError, Detail: "download app package: boom"}},
		{"a long detail is cut", live, errors.New(long), pando.Failure{Kind: pando.FailureStagingError, Detail: long[:maxFailureDetail] + "..."}},
		{"docker stager's kind", live, fmt.Errorf("stage: %w", kindedError{pando.Failure{Kind: pando.FailureRegistryDenied, Detail: "unauthorized: registry r refused the credentials"}}),
			pando.Failure{Kind: pando.FailureRegistryDenied, Detail: "unauthorized: registry r refused the credentials"}},
		{"timed out", timedOut, context.Canceled, pando.Failure{Kind: pando.FailureStagingTimeout, Timeout: 90 * time.Second}},
		{"cancelled", cancelled, context.Canceled, pando.Failure{Kind: pando.FailureCancelled}},
		{"cell shutting down", shutdown, context.Canceled, pando.Failure{Kind: pando.FailureCellShutdown}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := stagingFailure(tc.ctx, tc.err, 1024); got != tc.want {
				t.Errorf("stagingFailure = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// kindedError is an error that knows its staging failure, as the docker
// stager's does.
type kindedError struct{ f pando.Failure }

func (e kindedError) Error() string                 { return e.f.Detail }
func (e kindedError) StagingFailure() pando.Failure { return e.f }

func TestBuildpackDirName_isSafeAndUnique(t *testing.T) {
	used := map[string]bool{}
	got := []string{
		buildpackDirName("go_buildpack", 0, used),
		buildpackDirName("go_buildpack", 1, used),
		buildpackDirName("../evil,x", 2, used),
		buildpackDirName("..", 3, used),
	}
	want := []string{"go_buildpack", "go_buildpack-2", ".._evil_x", "buildpack3"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %q", got)
	}
}

// TestForwarder_pipesBothWaysWithHalfClose: the client half-closes after
// its request; the server answers after reading EOF.
func TestForwarder_pipesBothWaysWithHalfClose(t *testing.T) {
	srv, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go func() {
		for {
			c, err := srv.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b, _ := io.ReadAll(c)
				c.Write([]byte("pong:" + string(b)))
			}()
		}
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := startForwarder(ln, func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", srv.Addr().String())
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("ping"))
	c.(*net.TCPConn).CloseWrite()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "pong:ping" {
		t.Fatalf("got %q, %v", b, err)
	}
	c.Close()

	// An idle connection is closed by Close, which waits for everything.
	idle, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	eventually(t, 2*time.Second, "connection tracked", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.conns) == 2 // client and upstream
	})
	f.Close()
	idle.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); err == nil {
		t.Fatal("idle connection still open after Close")
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Fatal("listener still accepting after Close")
	}
}

func TestUserIDs(t *testing.T) {
	for in, want := range map[string][2]uint32{"": {2000, 2000}, "vcap": {2000, 2000}, "1001": {1001, 1001}, "5:6": {5, 6}} {
		u, g := userIDs(in)
		if u != want[0] || g != want[1] {
			t.Errorf("%q: %d:%d", in, u, g)
		}
	}
}

func TestOpenOutput_refusesLinksAndPipesFromTheContainer(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("host only"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "droplet.tgz")
	if err := os.Symlink(secret, link); err != nil {
		t.Fatal(err)
	}
	if f, err := openOutput(link); err == nil {
		f.Close()
		t.Error("a symlink to a host file was opened")
	}
	fifo := filepath.Join(dir, "result.json")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	// Would block forever with a plain open and no writer.
	if f, err := openOutput(fifo); err == nil {
		f.Close()
		t.Error("a FIFO was opened")
	}
	regular := filepath.Join(dir, "ok.json")
	if err := os.WriteFile(regular, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := openOutput(regular)
	if err != nil {
		t.Fatalf("regular file: %v", err)
	}
	f.Close()
}

func TestWrongListenMessage(t *testing.T) {
	ap := netip.MustParseAddrPort
	for _, tc := range []struct {
		addrs []netip.AddrPort
		want  string
	}{
		{nil, ""},
		{[]netip.AddrPort{ap("0.0.0.0:8080")}, ""},
		{[]netip.AddrPort{ap("[::]:8080")}, ""},
		{[]netip.AddrPort{ap("127.0.0.1:8080")}, ""}, // the check reaches loopback
		{[]netip.AddrPort{ap("0.0.0.0:3000")}, "app is listening on 0.0.0.0:3000, not on 0.0.0.0:$PORT=8080: listen on $PORT on all interfaces"},
		{[]netip.AddrPort{ap("[::1]:8080"), ap("10.0.0.2:8080")}, "app is listening on [::1]:8080 / 10.0.0.2:8080, not on 0.0.0.0:$PORT=8080: listen on $PORT on all interfaces"},
	} {
		if got := wrongListenMessage(tc.addrs, 8080); got != tc.want {
			t.Errorf("wrongListenMessage(%v) = %q, want %q", tc.addrs, got, tc.want)
		}
	}
}
