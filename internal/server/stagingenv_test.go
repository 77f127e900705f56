package server

import (
	"strings"
	"testing"

	"github.com/pandoplatform/pando"
)

func TestParseStagingEnv_keepsOrderAndRefusesWhatThePlatformSets(t *testing.T) {
	got, err := parseStagingEnv([]string{"HTTPS_PROXY=http://u:secret@proxy:3128", "NO_PROXY=localhost,.internal", "npm_config_registry=", "PIP_INDEX_URL=https://x/?a=b"})
	if err != nil {
		t.Fatal(err)
	}
	want := []pando.EnvVar{{Name: "HTTPS_PROXY", Value: "http://u:secret@proxy:3128"}, {Name: "NO_PROXY", Value: "localhost,.internal"},
		{Name: "npm_config_registry", Value: ""}, {Name: "PIP_INDEX_URL", Value: "https://x/?a=b"}}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got[%d] = %v, want %v", i, got[i], want[i])
		}
	}

	for _, bad := range []struct{ arg, want string }{
		{"http://u:secret@proxy", "want KEY=VALUE"},
		{"=secret", "not an environment variable name"},
		{"1X=secret", "not an environment variable name"},
		{"A-B=secret", "not an environment variable name"},
		{"CF_STACK=secret", "the platform sets CF_STACK"},
		{"VCAP_SERVICES=secret", "the platform sets VCAP_SERVICES"},
		{"MEMORY_LIMIT=secret", "the platform sets MEMORY_LIMIT"},
		{"X=a\x00secret", "NUL byte"},
	} {
		_, err := parseStagingEnv([]string{"OK=1", bad.arg})
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: err %v, want %q", bad.arg, err, bad.want)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("%q: the error shows the value: %v", bad.arg, err)
		}
	}
}
