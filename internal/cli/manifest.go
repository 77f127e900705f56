package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"gopkg.in/yaml.v3"
)

// maxManifest bounds a manifest file.
const maxManifest = 1 << 20

// pushFlags are push's command-line overrides; zero values mean "not given".
type pushFlags struct {
	path           string
	buildpacks     []string
	command        string
	memory         string
	disk           string
	logRate        string
	instances      int
	instancesSet   bool
	manifest       string
	noManifest     bool
	stack          string
	healthCheck    string
	endpoint       string
	vars           []string
	varsFiles      []string
	timeout        int
	dockerImage    string
	dockerUsername string
	noStart        bool
	noRoute        bool
	randomRoute    bool
}

// overrides reports whether any flag changes an app's manifest entry.
func (f *pushFlags) overrides() bool {
	return len(f.buildpacks) > 0 || f.command != "" || f.memory != "" || f.disk != "" || f.logRate != "" ||
		f.instancesSet || f.stack != "" || f.healthCheck != "" || f.timeout > 0 ||
		f.dockerImage != "" || f.dockerUsername != "" || f.path != "" || f.noRoute || f.randomRoute
}

// manifestApp is one application of a manifest: its fields as written
// (unknown keys pass through to the server) and the local path of its bits.
type manifestApp struct {
	fields map[string]any
	path   string
	// files are the app's files at path, collected before any API call.
	files []appFile
	// dockerPassword is the registry password of a docker app with a
	// username, read before any API call.
	dockerPassword string
}

func (a *manifestApp) name() string {
	n, _ := a.fields["name"].(string)
	return n
}

// dockerImage returns docker.image, or "".
func (a *manifestApp) docker() (image, username string) {
	d, ok := a.fields["docker"].(map[string]any)
	if !ok {
		return "", ""
	}
	image, _ = d["image"].(string)
	username, _ = d["username"].(string)
	return image, username
}

// readManifest parses a manifest file; relative app paths are resolved
// against its directory.
func readManifest(p string, vars map[string]any) ([]*manifestApp, error) {
	data, err := readBounded(p, maxManifest)
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	var raw any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("parse manifest %s: %w", p, err)
	}
	if raw, err = interpolate(raw, vars); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", p, err)
	}
	// Back through YAML into the typed shape, now with the values in.
	if data, err = yaml.Marshal(raw); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", p, err)
	}
	if top, ok := raw.(map[string]any); ok {
		if list, ok := top["applications"]; ok && list != nil {
			if _, ok := list.([]any); !ok {
				return nil, fmt.Errorf("manifest %s: applications must be a list, each app starting with '- name: APP'", p)
			}
		}
	}
	var doc struct {
		Applications []map[string]any `yaml:"applications"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse manifest %s: %w", p, err)
	}
	if len(doc.Applications) == 0 {
		return nil, fmt.Errorf("manifest %s has no applications", p)
	}
	dir := filepath.Dir(p)
	apps := make([]*manifestApp, 0, len(doc.Applications))
	for i, fields := range doc.Applications {
		if fields == nil {
			fields = map[string]any{}
		}
		a := &manifestApp{fields: fields}
		if a.name() == "" {
			return nil, fmt.Errorf("manifest %s: application %d has no name", p, i+1)
		}
		if ap, ok := fields["path"].(string); ok && ap != "" {
			if !filepath.IsAbs(ap) {
				ap = filepath.Join(dir, ap)
			}
			a.path = ap
		}
		apps = append(apps, a)
	}
	return apps, nil
}

// selectApps picks the apps to push: the named one (from the manifest, or a
// new entry), or every manifest app when no name is given. Flags apply to a
// single app only.
func selectApps(name string, fromManifest []*manifestApp, f *pushFlags) ([]*manifestApp, error) {
	var apps []*manifestApp
	switch {
	case name != "" && len(fromManifest) == 0:
		apps = []*manifestApp{{fields: map[string]any{"name": name}}}
	case name != "":
		for _, a := range fromManifest {
			if a.name() == name {
				apps = []*manifestApp{a}
			}
		}
		if apps == nil {
			if len(fromManifest) != 1 {
				return nil, fmt.Errorf("no app named '%s' in the manifest", name)
			}
			// A single-app manifest: the name on the command line wins.
			apps = fromManifest
			apps[0].fields["name"] = name
		}
	case len(fromManifest) == 0:
		return nil, errors.New("app name required: pando push NAME (or a manifest.yml with applications)")
	default:
		apps = fromManifest
	}
	if len(apps) > 1 && f.overrides() {
		return nil, errors.New("flags cannot be applied to a manifest with several apps: name one app (pando push NAME)")
	}
	for _, a := range apps {
		applyFlags(a, f)
	}
	return apps, nil
}

// applyFlags writes command-line overrides into an app's manifest entry.
func applyFlags(a *manifestApp, f *pushFlags) {
	m := a.fields
	if f.path != "" {
		a.path = f.path
	}
	if a.path == "" {
		a.path = "."
	}
	if f.instancesSet {
		m["instances"] = f.instances
	}
	if f.memory != "" {
		m["memory"] = f.memory
	}
	if f.disk != "" {
		m["disk_quota"] = f.disk
	}
	if f.logRate != "" {
		m["log-rate-limit-per-second"] = f.logRate
	}
	if len(f.buildpacks) > 0 {
		delete(m, "buildpack")
		m["buildpacks"] = f.buildpacks
	}
	if f.command != "" {
		m["command"] = f.command
	}
	if f.stack != "" {
		m["stack"] = f.stack
	}
	if f.healthCheck != "" {
		m["health-check-type"] = f.healthCheck
	}
	if f.endpoint != "" {
		m["health-check-http-endpoint"] = f.endpoint
	}
	if f.timeout > 0 {
		m["timeout"] = f.timeout
	}
	if f.dockerImage != "" || f.dockerUsername != "" {
		d, _ := m["docker"].(map[string]any)
		if d == nil {
			d = map[string]any{}
		}
		if f.dockerImage != "" {
			d["image"] = f.dockerImage
		}
		if f.dockerUsername != "" {
			d["username"] = f.dockerUsername
		}
		m["docker"] = d
	}
	if f.noRoute {
		m["no-route"] = true
	}
	if f.randomRoute {
		m["random-route"] = true
	}
}

// manifestYAML renders what apply_manifest receives: the apps without their
// client-local paths, with default-route unless routes are chosen (as the
// cf CLI does).
func manifestYAML(apps []*manifestApp) ([]byte, error) {
	out := make([]map[string]any, 0, len(apps))
	for _, a := range apps {
		m := make(map[string]any, len(a.fields)+1)
		for k, v := range a.fields {
			if k != "path" {
				m[k] = v
			}
		}
		_, hasRoutes := m["routes"]
		_, noRoute := m["no-route"]
		_, random := m["random-route"]
		if !hasRoutes && !noRoute && !random {
			m["default-route"] = true
		}
		out = append(out, m)
	}
	return yaml.Marshal(map[string]any{"applications": out})
}

// defaultManifest returns ./manifest.yml when it exists.
func defaultManifest() string {
	for _, n := range []string{"manifest.yml", "manifest.yaml"} {
		if fi, err := os.Stat(n); err == nil && fi.Mode().IsRegular() {
			return n
		}
	}
	return ""
}

// manifestAppKeys are the application attributes of a CF v3 manifest.
// The server ignores any other key, as CF does, so the CLI warns about them:
// a typo such as "memroy" would otherwise pass in silence.
var manifestAppKeys = []string{
	"name", "path", "buildpacks", "buildpack", "command", "disk_quota", "disk-quota", "docker", "env",
	"health-check-type", "health-check-http-endpoint", "health-check-invocation-timeout",
	"health-check-interval", "readiness-health-check-type", "readiness-health-check-http-endpoint",
	"readiness-health-check-invocation-timeout", "readiness-health-check-interval",
	"instances", "log-rate-limit-per-second", "memory", "metadata", "no-route", "default-route",
	"random-route", "routes", "services", "sidecars", "stack", "timeout", "processes",
	"lifecycle", "features", "cnb-credentials",
}

// unknownKeyWarnings says which keys of app no manifest knows, with the
// nearest known key when one is a likely typo.
func unknownKeyWarnings(app *manifestApp) []string {
	var keys []string
	for k := range app.fields {
		if !slices.Contains(manifestAppKeys, k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	warnings := make([]string, 0, len(keys))
	for _, k := range keys {
		w := fmt.Sprintf("manifest: application %s: unknown key %q is ignored", app.name(), k)
		switch {
		case k == "host" || k == "hosts" || k == "domain" || k == "domains" || k == "no-hostname":
			w += " (the cf CLI v7 removed it: use routes:)"
		case nearestKey(k) != "":
			w += fmt.Sprintf(" (did you mean %q?)", nearestKey(k))
		}
		warnings = append(warnings, w)
	}
	return warnings
}

// nearestKey is the known key within two edits of k, or "".
func nearestKey(k string) string {
	best, bestD := "", 3
	for _, known := range manifestAppKeys {
		if d := editDistance(k, known); d < bestD {
			best, bestD = known, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b (short keys only).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
