package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadManifest_interpolatesVariables(t *testing.T) {
	dir := t.TempDir()
	mf := filepath.Join(dir, "manifest.yml")
	body := "applications:\n- name: ((app))\n  instances: ((count))\n  routes:\n  - route: ((app)).((domain))\n"
	if err := os.WriteFile(mf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	varsFile := filepath.Join(dir, "vars.yml")
	if err := os.WriteFile(varsFile, []byte("count: 3\ndomain: example.test\napp: overridden\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	vars, err := loadVars([]string{varsFile}, []string{"app=shop"})
	if err != nil {
		t.Fatal(err)
	}
	apps, err := readManifest(mf, vars)
	if err != nil {
		t.Fatal(err)
	}
	f := apps[0].fields
	if apps[0].name() != "shop" {
		t.Errorf("name = %q, want shop (--var wins over the vars file)", apps[0].name())
	}
	if f["instances"] != 3 {
		t.Errorf("instances = %#v, want the integer 3", f["instances"])
	}
	routes, _ := f["routes"].([]any)
	if len(routes) != 1 || routes[0].(map[string]any)["route"] != "shop.example.test" {
		t.Errorf("routes = %#v", f["routes"])
	}
}

func TestReadManifest_missingVariablesAreNamed(t *testing.T) {
	mf := filepath.Join(t.TempDir(), "manifest.yml")
	if err := os.WriteFile(mf, []byte("applications:\n- name: ((app))\n  env: {KEY: ((secret))}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := readManifest(mf, nil)
	if err == nil || !strings.Contains(err.Error(), "Expected to find variables: app, secret") {
		t.Fatalf("err = %v", err)
	}
	if _, err := loadVars(nil, []string{"novalue"}); err == nil {
		t.Error("--var without = accepted")
	}
}
