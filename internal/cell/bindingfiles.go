package cell

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/container"
)

// bindingRoot is where an instance finds its service bindings as files
// when its app enabled file-based-vcap-services or service-binding-k8s
// (CF's path for both).
const bindingRoot = "/etc/cf-service-bindings"

// vcapServicesFile is the file, under bindingRoot, that holds
// VCAP_SERVICES for file-based-vcap-services.
const vcapServicesFile = "vcap_services"

// bindingFilesEnv replaces VCAP_SERVICES (which CF does not set then) by
// the variable naming the files: VCAP_SERVICES_FILE_PATH or
// SERVICE_BINDING_ROOT.
func (e *envList) bindingFilesEnv(mode string) {
	e.unset("VCAP_SERVICES")
	switch mode {
	case pando.AppFeatureFileVCAPServices:
		e.Set("VCAP_SERVICES_FILE_PATH", bindingRoot+"/"+vcapServicesFile)
	case pando.AppFeatureServiceBindingK8s:
		e.Set("SERVICE_BINDING_ROOT", bindingRoot)
	}
}

func (e *envList) unset(name string) {
	if _, ok := e.vals[name]; !ok {
		return
	}
	delete(e.vals, name)
	e.names = slices.DeleteFunc(e.names, func(n string) bool { return n == name })
}

// lrpServices is the LRP's VCAP_SERVICES ("{}" when it has no bindings or
// an invalid value).
func lrpServices(env []pando.EnvVar) string {
	e := newEnv()
	e.Set("VCAP_SERVICES", "{}")
	e.takeServices(env)
	return e.vals["VCAP_SERVICES"]
}

// bindingMounts writes the service binding files of mode ("": none, and
// no mounts) for vcapServices under parent/bindings and returns their
// mount at bindingRoot: writable, so that the container backend hands
// them over to the container's user (whatever its host uid).
func bindingMounts(parent, mode, vcapServices string) ([]container.Mount, error) {
	if mode == "" {
		return nil, nil
	}
	dir := filepath.Join(parent, "bindings")
	if err := writeBindingFiles(dir, mode, vcapServices); err != nil {
		return nil, err
	}
	return []container.Mount{{Source: dir, Destination: bindingRoot}}, nil
}

// writeBindingFiles writes the bindings in vcapServices (CF's
// VCAP_SERVICES JSON) under dir in mode's layout: file-based-vcap-services
// is one file, vcap_services, holding the JSON; service-binding-k8s is the
// servicebinding.io layout, a directory per binding (named by its binding
// name, else its instance name) with a file per credential (strings as
// they are, other values as JSON) and the files "type" and "provider" (the
// service's label, "user-provided" for user-provided services). Only the
// owner may read the files: directories are 0700 and files 0600; the
// container backend hands dir over to the app's user.
func writeBindingFiles(dir, mode, vcapServices string) error {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("service binding files: %w", err)
	}
	switch mode {
	case pando.AppFeatureFileVCAPServices:
		return writeSecret(filepath.Join(dir, vcapServicesFile), []byte(vcapServices))
	case pando.AppFeatureServiceBindingK8s:
	default:
		return fmt.Errorf("service binding files: unknown layout %q", mode)
	}
	var services map[string][]struct {
		Label        string         `json:"label"`
		Name         string         `json:"name"`
		InstanceName string         `json:"instance_name"`
		Credentials  map[string]any `json:"credentials"`
	}
	if err := json.Unmarshal([]byte(vcapServices), &services); err != nil {
		return fmt.Errorf("service binding files: VCAP_SERVICES: %w", err)
	}
	seen := map[string]bool{}
	for label, bindings := range services {
		for _, b := range bindings {
			name := b.Name
			if name == "" {
				name = b.InstanceName
			}
			if !fileName(name) {
				return pando.Errorf(pando.EInvalid, "service binding %q: its name cannot be a directory name in %s", name, bindingRoot)
			}
			if seen[name] {
				return pando.Errorf(pando.EInvalid, "two service bindings are named %q: rename one (cf bind-service --binding-name) to use service-binding-k8s", name)
			}
			seen[name] = true
			bdir := filepath.Join(dir, name)
			if err := os.Mkdir(bdir, 0o700); err != nil {
				return fmt.Errorf("service binding files: %w", err)
			}
			files := map[string][]byte{}
			for k, v := range b.Credentials {
				if !fileName(k) {
					return pando.Errorf(pando.EInvalid, "service binding %q: credential %q cannot be a file name", name, k)
				}
				if s, ok := v.(string); ok {
					files[k] = []byte(s)
					continue
				}
				raw, err := json.Marshal(v)
				if err != nil {
					return fmt.Errorf("service binding %q: credential %q: %w", name, k, err)
				}
				files[k] = raw
			}
			if b.Label != "" {
				label = b.Label
			}
			files["type"] = []byte(label)
			files["provider"] = []byte(label)
			for k, data := range files {
				if err := writeSecret(filepath.Join(bdir, k), data); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// fileName reports whether s can be one path element.
func fileName(s string) bool {
	return s != "" && s != "." && s != ".." && len(s) <= 255 && !strings.ContainsAny(s, "/\x00")
}

func writeSecret(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("service binding files: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("service binding files: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("service binding files: write %s: %w", path, err)
	}
	return nil
}
