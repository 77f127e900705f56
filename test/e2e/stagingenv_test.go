package e2e

import (
	"strings"
	"testing"
)

func TestServer_stagingEnvReachesStagingBelowTheAppsEnvAndIsNotShown(t *testing.T) {
	t.Parallel()
	s := ownServer(t, "--staging-env", "PROBE_PROXY=http://u:operator-secret@127.0.0.1:9", "--staging-env", "PROBE_REGISTRY=operator")
	// A buildpack that writes what staging saw into the app, without printing it.
	zip := buildpackZip(t, map[string]string{
		"bin/detect":   "#!/bin/sh\nexit 1\n",
		"bin/finalize": "#!/bin/sh\necho \"$PROBE_PROXY $PROBE_REGISTRY\" > \"$1/seen.txt\"\n",
		"bin/release":  "#!/bin/sh\necho '---'\necho 'default_process_types: {web: /tmp/lifecycle/pando static-serve --root /home/vcap/app --port $PORT}'\n",
	})
	s.mustPando(t, "create-buildpack", "envbp", zip, "9")
	const name = "staging-env"
	dir := staticSite(t, "hi\n")

	push := s.mustPando(t, "push", name, "-p", dir, "-b", "envbp")
	if body, want := s.curlRoute(t, name+".localhost", "/seen.txt"), "http://u:operator-secret@127.0.0.1:9 operator\n"; body != want {
		t.Fatalf("staging saw %q, want %q", body, want)
	}

	// The app's own variable wins over the operator's.
	s.mustPando(t, "set-env", name, "PROBE_REGISTRY", "app")
	restage := s.mustPando(t, "restage", name)
	if body, want := s.curlRoute(t, name+".localhost", "/seen.txt"), "http://u:operator-secret@127.0.0.1:9 app\n"; body != want {
		t.Fatalf("restaging saw %q, want %q", body, want)
	}
	env := s.mustPando(t, "env", name)
	for _, r := range []result{push, restage, env} {
		if strings.Contains(r.out(), "operator-secret") {
			t.Fatalf("the operator's staging env is shown to the user:\n%s", r)
		}
	}
}
