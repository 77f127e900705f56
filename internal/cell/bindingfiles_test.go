package cell

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pandoplatform/pando"
)

const testVCAPServices = `{"user-provided":[` +
	`{"label":"user-provided","name":"db","instance_name":"db","binding_name":null,"credentials":{"uri":"postgres://u:p@h/d","port":5432,"opts":{"tls":true}}},` +
	`{"label":"user-provided","name":"cache","instance_name":"redis1","binding_name":"cache","credentials":{}}]}`

// readTree maps each regular file under dir (relative path) to its content
// and checks every file and directory is for its owner only.
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := os.FileMode(0o600)
		if d.IsDir() {
			want = os.ModeDir | 0o700
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
		if d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWriteBindingFiles_k8sLayoutOwnerOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bindings")
	if err := writeBindingFiles(dir, pando.AppFeatureServiceBindingK8s, testVCAPServices); err != nil {
		t.Fatal(err)
	}
	got := readTree(t, dir)
	want := map[string]string{
		"db/uri": "postgres://u:p@h/d", "db/port": "5432", "db/opts": `{"tls":true}`,
		"db/type": "user-provided", "db/provider": "user-provided",
		"cache/type": "user-provided", "cache/provider": "user-provided",
	}
	if len(got) != len(want) {
		t.Errorf("files %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func TestWriteBindingFiles_vcapServicesFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bindings")
	if err := writeBindingFiles(dir, pando.AppFeatureFileVCAPServices, testVCAPServices); err != nil {
		t.Fatal(err)
	}
	got := readTree(t, dir)
	if len(got) != 1 || got["vcap_services"] != testVCAPServices {
		t.Fatalf("files %v, want only vcap_services with VCAP_SERVICES", got)
	}
}

func TestWriteBindingFiles_refusesNamesThatAreNotFileNames(t *testing.T) {
	for name, vs := range map[string]string{
		"binding name":   `{"user-provided":[{"label":"user-provided","name":"../etc","credentials":{}}]}`,
		"credential key": `{"user-provided":[{"label":"user-provided","name":"db","credentials":{"a/b":"x"}}]}`,
		"duplicate":      `{"user-provided":[{"label":"user-provided","name":"db","credentials":{}},{"label":"user-provided","name":"db","credentials":{}}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "bindings")
			err := writeBindingFiles(dir, pando.AppFeatureServiceBindingK8s, vs)
			if pando.ErrorKindOf(err) != pando.EInvalid {
				t.Fatalf("err %v, want EInvalid", err)
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "etc")); err == nil {
				t.Fatal("wrote outside the bindings directory")
			}
		})
	}
}

func TestInstanceEnv_fileBindingsReplaceVCAPServices(t *testing.T) {
	r := &Rep{cfg: Config{HostAddr: "10.0.0.5"}}
	for mode, want := range map[string][2]string{
		pando.AppFeatureFileVCAPServices:  {"VCAP_SERVICES_FILE_PATH", "/etc/cf-service-bindings/vcap_services"},
		pando.AppFeatureServiceBindingK8s: {"SERVICE_BINDING_ROOT", "/etc/cf-service-bindings"},
	} {
		lrp := pando.DesiredLRP{ProcessGUID: "p", AppGUID: "a", BindingFiles: mode,
			Env: []pando.EnvVar{{Name: "VCAP_SERVICES", Value: testVCAPServices}, {Name: want[0], Value: "/elsewhere"}}}
		env := envMap(r.instanceEnv(lrp, 0, "inst", nil, 256, 1024))
		if v, ok := env["VCAP_SERVICES"]; ok {
			t.Errorf("%s: VCAP_SERVICES=%q is set, want unset", mode, v)
		}
		if env[want[0]] != want[1] {
			t.Errorf("%s: %s=%q, want %q", mode, want[0], env[want[0]], want[1])
		}
	}
}

func TestStagingEnv_fileBindingsReplaceVCAPServices(t *testing.T) {
	req := pando.StagingRequest{BuildGUID: "b", AppGUID: "a", BindingFiles: pando.AppFeatureServiceBindingK8s,
		Env: []pando.EnvVar{{Name: "VCAP_SERVICES", Value: testVCAPServices}}}
	env := envMap(stagingEnv(req, nil, "host", "10.0.0.5", 1024, 4096, ""))
	if v, ok := env["VCAP_SERVICES"]; ok {
		t.Errorf("VCAP_SERVICES=%q is set at staging, want unset", v)
	}
	if env["SERVICE_BINDING_ROOT"] != bindingRoot {
		t.Errorf("SERVICE_BINDING_ROOT=%q, want %q", env["SERVICE_BINDING_ROOT"], bindingRoot)
	}
}

func TestTaskEnv_fileBindingsReplaceVCAPServices(t *testing.T) {
	r := &Rep{cfg: Config{HostAddr: "10.0.0.5"}}
	run := pando.RunRequest{AppGUID: "a", BindingFiles: pando.AppFeatureFileVCAPServices,
		Env: []pando.EnvVar{{Name: "VCAP_SERVICES", Value: testVCAPServices}}}
	env := envMap(r.taskEnv(run, "task", 256, 1024))
	if v, ok := env["VCAP_SERVICES"]; ok {
		t.Errorf("VCAP_SERVICES=%q is set in a task, want unset", v)
	}
	if want := bindingRoot + "/" + vcapServicesFile; env["VCAP_SERVICES_FILE_PATH"] != want {
		t.Errorf("VCAP_SERVICES_FILE_PATH=%q, want %q", env["VCAP_SERVICES_FILE_PATH"], want)
	}
	run.BindingFiles = ""
	if env := envMap(r.taskEnv(run, "task", 256, 1024)); env["VCAP_SERVICES"] != testVCAPServices {
		t.Errorf("without binding files VCAP_SERVICES=%q, want the bindings", env["VCAP_SERVICES"])
	}
}
