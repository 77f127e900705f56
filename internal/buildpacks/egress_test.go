package buildpacks_test

import (
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pandoplatform/pando/internal/lifecycle/builder"
)

// closedPort returns a loopback URL nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	ln.Close()
	return "http://" + ln.Addr().String()
}

func TestNodejs_withEgressDownloadsAndAFailedDownloadShowsNpmsOwnError(t *testing.T) {
	t.Parallel()
	nodeVersion(t)
	reg := newRegistry(t)
	app := map[string]string{
		"package.json": `{"name": "app", "version": "1.0.0", "dependencies": {"greet": "^1.0.0"}}`,
		"Procfile":     "web: greet-serve\n",
	}
	s := newStage(t, app)
	base := append(s.cfg.Env, "PANDO_STAGING_EGRESS=on", "npm_config_userconfig="+filepath.Join(t.TempDir(), "npmrc"), "npm_config_fetch_retries=0")
	s.cfg.Env = append(base, "npm_config_registry="+reg.srv.URL+"/")
	if _, err := s.build(t); err != nil {
		t.Fatalf("Build with egress: %v\n%s", err, s.out.String())
	}
	if reg.requests.Load() == 0 || strings.Contains(s.out.String(), "(offline") {
		t.Fatalf("registry requests %d\n%s", reg.requests.Load(), s.out.String())
	}

	// A registry that cannot be reached, and nothing cached: npm's error,
	// not the advice for a staging without network.
	s2 := newStage(t, app)
	s2.cfg.Env = append(base, "npm_config_registry="+closedPort(t)+"/")
	_, err := s2.build(t)
	out := s2.out.String()
	if builder.ExitCode(err) != builder.ExitFinalizeFailed || strings.Contains(out, "egress is off") || !strings.Contains(out, "ECONNREFUSED") ||
		!strings.Contains(out, "npm install failed (see above)") {
		t.Fatalf("err = %v\n%s", err, out)
	}
}

func TestPython_withEgressAFailedDownloadShowsPipsOwnError(t *testing.T) {
	skipShortVenv(t)
	t.Parallel()
	hostPython(t)
	s := pythonStage(t, map[string]string{"requirements.txt": "flask\n", "Procfile": "web: python -m http.server $PORT\n"})
	s.cfg.Env = append(s.cfg.Env, "PANDO_STAGING_EGRESS=on", "PIP_INDEX_URL="+closedPort(t)+"/simple", "PIP_RETRIES=0")
	_, err := s.build(t)
	out := s.out.String()
	if builder.ExitCode(err) != builder.ExitFinalizeFailed || strings.Contains(out, "egress is off") || !strings.Contains(out, "pip install failed (see above)") {
		t.Fatalf("err = %v\n%s", err, out)
	}
}
