package cc

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pandoplatform/pando/internal/secrets"
)

// TestDockerPackage_passwordIsSealedAtRestAndNeverShown: the registry
// password of a docker package is stored sealed, answered as "***", and
// reaches only the staging request, in the clear.
func TestDockerPackage_passwordIsSealedAtRestAndNeverShown(t *testing.T) {
	box, err := secrets.LoadOrCreate(filepath.Join(t.TempDir(), "secrets.key"))
	if err != nil {
		t.Fatal(err)
	}
	const password = "s3cret-registry-pw"
	e := ptNew(t, func(c *Config) { c.DockerEnabled = true; c.Secrets = box })
	space := e.space()
	app := e.ok(e.doJSON("POST", "/v3/apps", map[string]any{
		"name":          "img",
		"lifecycle":     map[string]any{"type": "docker", "data": map[string]any{}},
		"relationships": map[string]any{"space": map[string]any{"data": map[string]any{"guid": space.GUID}}},
	}), 201)
	pkg := e.ok(e.doJSON("POST", "/v3/packages", map[string]any{
		"type":          "docker",
		"data":          map[string]any{"image": "registry.example:5000/team/app:1", "username": "bot", "password": password},
		"relationships": map[string]any{"app": map[string]any{"data": map[string]any{"guid": app["guid"]}}},
	}), 201)
	shown, _ := json.Marshal(pkg)
	if strings.Contains(string(shown), password) || !strings.Contains(string(shown), `"password":"***"`) {
		t.Fatalf("package answer shows the password: %s", shown)
	}
	stored, err := e.store.GetPackage(t.Context(), pkg["guid"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if stored.DockerPassword == password || !strings.HasPrefix(stored.DockerPassword, "v1:") {
		t.Fatalf("password stored as %q", stored.DockerPassword)
	}
	got := e.ok(e.do("GET", "/v3/packages/"+pkg["guid"].(string), "", nil), 200)
	if b, _ := json.Marshal(got); strings.Contains(string(b), password) {
		t.Fatalf("GET shows the password: %s", b)
	}
	e.ok(e.doJSON("POST", "/v3/builds", map[string]any{"package": map[string]any{"guid": pkg["guid"]}}), 201)
	// The staging the BBS was asked to run carries the credentials.
	if tasks := e.rt.waitTasks(t, 1); len(tasks) != 1 || tasks[0].Staging == nil || tasks[0].Staging.DockerPassword != password ||
		tasks[0].Staging.DockerUsername != "bot" {
		t.Fatalf("staging request %+v", tasks)
	}
}
