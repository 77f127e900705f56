package cc

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/pandoplatform/pando"
	"gopkg.in/yaml.v3"
)

// App manifests (`cf push -f manifest.yml`): parsing into a typed form,
// applying it to a space (create or update each app, its env, processes and
// routes) and diffing it against the apps as they are.

// maxManifestBytes bounds a manifest body.
const maxManifestBytes = 1 << 20

// processSettings are the per-process keys a manifest may set, at the top
// level of an application (the web process) or under processes[].
type processSettings struct {
	Command             *string
	Instances           *int
	MemoryMB            *int
	DiskMB              *int
	LogRateLimit        *int
	HealthCheckType     *string
	HealthCheckEndpoint *string
	Timeout             *int
	InvocationTimeout   *int
}

func (s processSettings) update() processUpdate {
	return processUpdate{
		Instances: s.Instances, MemoryMB: s.MemoryMB, DiskMB: s.DiskMB, LogRateLimitBytes: s.LogRateLimit,
		Command: s.Command, HealthCheckType: s.HealthCheckType, HealthCheckEndpoint: s.HealthCheckEndpoint,
		HealthCheckTimeout: s.Timeout, HealthCheckInvocationTimeout: s.InvocationTimeout,
	}
}

func (s processSettings) empty() bool { return s == processSettings{} }

// over returns s with every field o sets replaced.
func (s processSettings) over(o processSettings) processSettings {
	pick := func(a, b *int) *int {
		if b != nil {
			return b
		}
		return a
	}
	picks := func(a, b *string) *string {
		if b != nil {
			return b
		}
		return a
	}
	return processSettings{
		Command: picks(s.Command, o.Command), Instances: pick(s.Instances, o.Instances),
		MemoryMB: pick(s.MemoryMB, o.MemoryMB), DiskMB: pick(s.DiskMB, o.DiskMB),
		LogRateLimit: pick(s.LogRateLimit, o.LogRateLimit), HealthCheckType: picks(s.HealthCheckType, o.HealthCheckType),
		HealthCheckEndpoint: picks(s.HealthCheckEndpoint, o.HealthCheckEndpoint), Timeout: pick(s.Timeout, o.Timeout),
		InvocationTimeout: pick(s.InvocationTimeout, o.InvocationTimeout),
	}
}

type manifestProcess struct {
	Type string
	processSettings
	norm map[string]any // normalized values of the keys given, for diffs
}

// manifestApp is one validated entry of applications[].
type manifestApp struct {
	Name          string
	Buildpacks    []string
	BuildpacksSet bool
	Stack         string
	Env           map[string]string
	Routes        []string
	DefaultRoute  bool
	NoRoute       bool
	RandomRoute   bool
	DockerImage   string
	Web           processSettings
	Processes     []manifestProcess
	Services      []manifestService

	keys []string       // recognized keys in manifest order
	norm map[string]any // their normalized values, for diffs
}

// webSettings is the web process's settings: top-level keys, overridden by
// a processes[] entry of type web.
func (m manifestApp) webSettings() processSettings {
	s := m.Web
	for _, p := range m.Processes {
		if p.Type == "web" {
			s = s.over(p.processSettings)
		}
	}
	return s
}

// --- parsing ---

// mparser collects every problem in a manifest, each named by its path.
type mparser struct{ errs []string }

func (p *mparser) errorf(at, format string, args ...any) {
	p.errs = append(p.errs, at+": "+fmt.Sprintf(format, args...))
}

func deref(n *yaml.Node) *yaml.Node {
	// Aliases are followed one step at a time and never expanded, so a
	// hostile document cannot blow up.
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 16; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

type yamlPair struct {
	key string
	val *yaml.Node
}

func (p *mparser) pairs(n *yaml.Node, at string) []yamlPair {
	if n.Kind != yaml.MappingNode {
		p.errorf(at, "must be a mapping")
		return nil
	}
	out := make([]yamlPair, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := deref(n.Content[i])
		if k.Kind != yaml.ScalarNode {
			p.errorf(at, "keys must be strings")
			continue
		}
		out = append(out, yamlPair{key: k.Value, val: deref(n.Content[i+1])})
	}
	return out
}

// str reads a scalar as text; ok is false for null or a non-scalar.
func (p *mparser) str(n *yaml.Node, at string) (string, bool) {
	if isNull(n) {
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		p.errorf(at, "must be a string")
		return "", false
	}
	return n.Value, true
}

func (p *mparser) boolean(n *yaml.Node, at string) bool {
	s, ok := p.str(n, at)
	if !ok {
		return false
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		p.errorf(at, "%q must be true or false", s)
	}
	return b
}

func (p *mparser) integer(n *yaml.Node, at string) *int {
	s, ok := p.str(n, at)
	if !ok {
		return nil
	}
	v, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		p.errorf(at, "%q is not a whole number", s)
		return nil
	}
	return &v
}

var sizePattern = regexp.MustCompile(`(?i)^\s*(\d{1,15})\s*(B|K|KB|M|MB|G|GB|T|TB)?\s*$`)

// parseBytes reads "256M", "1G", "512MB"... A bare number is in units of
// bare bytes.
func parseBytes(s string, bare int64) (int64, bool) {
	m := sizePattern.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, false
	}
	unit := bare
	switch strings.TrimSuffix(strings.ToUpper(m[2]), "B") {
	case "":
		if m[2] != "" { // "B"
			unit = 1
		}
	case "K":
		unit = 1 << 10
	case "M":
		unit = 1 << 20
	case "G":
		unit = 1 << 30
	case "T":
		unit = 1 << 40
	}
	if n > (1<<62)/unit {
		return 0, false
	}
	return n * unit, true
}

// megabytes reads a memory or disk size; a bare number means megabytes.
func (p *mparser) megabytes(n *yaml.Node, at, what, example string) *int {
	s, ok := p.str(n, at)
	if !ok {
		return nil
	}
	b, ok := parseBytes(s, 1<<20)
	if !ok {
		p.errorf(at, "%q is not a valid %s size (e.g. %s)", s, what, example)
		return nil
	}
	mb := int(b >> 20)
	if mb < 1 {
		p.errorf(at, "%q is too small: the minimum is 1M", s)
		return nil
	}
	return &mb
}

// logRate reads log-rate-limit-per-second: "unlimited" or -1 for no limit,
// else a size per second ("1K", "10M"); a bare number means bytes.
func (p *mparser) logRate(n *yaml.Node, at string) *int {
	s, ok := p.str(n, at)
	if !ok {
		return nil
	}
	v, err := ParseLogRateLimit(s)
	if err != nil {
		p.errorf(at, "%q is not a valid log rate limit (e.g. 1K, 10M, unlimited)", s)
		return nil
	}
	return &v
}

// ParseLogRateLimit reads a log rate limit per second as manifests write
// it: "unlimited" or -1 for none, else a size ("16K", "1M"; a bare
// number is bytes).
func ParseLogRateLimit(s string) (int, error) {
	if t := strings.TrimSpace(strings.ToLower(s)); t == "unlimited" || t == "-1" {
		return -1, nil
	}
	b, ok := parseBytes(s, 1)
	if !ok || b > 1<<40 {
		return 0, fmt.Errorf("%q is not a log rate limit (e.g. 16K, 1M, unlimited)", s)
	}
	return int(b), nil
}

func formatMB(mb int) string { return strconv.Itoa(mb) + "M" }

// formatLogRate is the normalized form used in diffs.
func formatLogRate(b int) string {
	switch {
	case b < 0:
		return "-1"
	case b == 0:
		return "0"
	}
	for _, u := range []struct {
		suffix string
		size   int
	}{{"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if b%u.size == 0 {
			return strconv.Itoa(b/u.size) + u.suffix
		}
	}
	return strconv.Itoa(b) + "B"
}

// setting parses one per-process key into s and returns its normalized
// value; handled is false for keys that are not process settings.
func (p *mparser) setting(s *processSettings, key string, v *yaml.Node, at string) (norm any, handled bool) {
	switch key {
	case "command":
		if c, ok := p.str(v, at); ok {
			s.Command = &c
			return c, true
		}
	case "instances":
		if n := p.integer(v, at); n != nil {
			if *n < 0 {
				p.errorf(at, "must not be negative")
				return nil, true
			}
			s.Instances = n
			return *n, true
		}
	case "memory":
		if mb := p.megabytes(v, at, "memory", "256M, 1G"); mb != nil {
			s.MemoryMB = mb
			return formatMB(*mb), true
		}
	case "disk_quota", "disk-quota":
		if mb := p.megabytes(v, at, "disk", "512M, 1G"); mb != nil {
			s.DiskMB = mb
			return formatMB(*mb), true
		}
	case "log-rate-limit-per-second":
		if b := p.logRate(v, at); b != nil {
			s.LogRateLimit = b
			return formatLogRate(*b), true
		}
	case "health-check-type":
		if t, ok := p.str(v, at); ok {
			switch t {
			case pando.HealthCheckPort, pando.HealthCheckHTTP, pando.HealthCheckProcess:
			case "none":
				t = pando.HealthCheckProcess
			default:
				p.errorf(at, "%q must be port, http or process", t)
				return nil, true
			}
			s.HealthCheckType = &t
			return t, true
		}
	case "health-check-http-endpoint":
		if e, ok := p.str(v, at); ok {
			if !strings.HasPrefix(e, "/") {
				p.errorf(at, "%q must be a path starting with '/'", e)
				return nil, true
			}
			s.HealthCheckEndpoint = &e
			return e, true
		}
	case "timeout":
		if n := p.integer(v, at); n != nil {
			s.Timeout = n
			return *n, true
		}
	case "health-check-invocation-timeout":
		if n := p.integer(v, at); n != nil {
			s.InvocationTimeout = n
			return *n, true
		}
	default:
		return nil, false
	}
	return nil, true
}

func (p *mparser) checkEndpoint(s processSettings, at string) {
	if s.HealthCheckEndpoint != nil && s.HealthCheckType != nil && *s.HealthCheckType != pando.HealthCheckHTTP {
		p.errorf(at, "health-check-http-endpoint needs health-check-type: http")
	}
}

func (p *mparser) stringList(n *yaml.Node, at string) []string {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(at, "must be a list")
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for i, c := range n.Content {
		if s, ok := p.str(deref(c), fmt.Sprintf("%s[%d]", at, i)); ok {
			out = append(out, s)
		}
	}
	return out
}

// parseManifest reads and validates a manifest body.
func parseManifest(body []byte) ([]manifestApp, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(body, &doc); err != nil {
		return nil, pando.Errorf(pando.EBadRequest, "Request invalid due to parse error: the manifest is not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	noApps := &pando.Error{Kind: pando.EBadRequest, Code: 10004, Title: "CF-InvalidRequest", Message: "Invalid app manifest: it needs an 'applications' list with at least one application"}
	if len(doc.Content) == 0 {
		return nil, noApps
	}
	root := deref(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		return nil, noApps
	}
	p := &mparser{}
	var appsNode *yaml.Node
	for _, kv := range p.pairs(root, "manifest") {
		if kv.key == "applications" {
			appsNode = kv.val
		}
	}
	if appsNode == nil || appsNode.Kind != yaml.SequenceNode || len(appsNode.Content) == 0 {
		return nil, noApps
	}
	apps := make([]manifestApp, 0, len(appsNode.Content))
	seen := map[string]bool{}
	for i, n := range appsNode.Content {
		at := fmt.Sprintf("applications[%d]", i)
		m := p.app(deref(n), at)
		if m.Name != "" {
			if seen[m.Name] {
				p.errorf(at+".name", "%q appears more than once: application names must be unique", m.Name)
			}
			seen[m.Name] = true
		}
		apps = append(apps, m)
	}
	if len(p.errs) > 0 {
		return nil, invalid("Manifest is invalid: %s", strings.Join(p.errs, "; "))
	}
	return apps, nil
}

// app parses one application entry. Unknown keys are ignored, as CF does.
func (p *mparser) app(n *yaml.Node, at string) manifestApp {
	m := manifestApp{norm: map[string]any{}}
	if n.Kind != yaml.MappingNode {
		p.errorf(at, "must be a mapping of application attributes")
		return m
	}
	note := func(key string, v any) {
		m.keys = append(m.keys, key)
		m.norm[key] = v
	}
	hasName := false
	for _, kv := range p.pairs(n, at) {
		k, v, kat := kv.key, kv.val, at+"."+kv.key
		switch k {
		case "name":
			hasName = true
			m.Name, _ = p.str(v, kat)
		case "buildpacks":
			m.Buildpacks = p.stringList(v, kat)
			m.BuildpacksSet = true
			list := make([]any, len(m.Buildpacks))
			for i, b := range m.Buildpacks {
				list[i] = b
			}
			note(k, list)
		case "buildpack":
			b, ok := p.str(v, kat)
			m.BuildpacksSet = true
			m.Buildpacks = nil
			if ok {
				m.Buildpacks = []string{b}
			}
			note(k, b)
		case "stack":
			if s, ok := p.str(v, kat); ok {
				m.Stack = s
				note(k, s)
			}
		case "env":
			m.Env = p.env(v, kat)
			env := make(map[string]any, len(m.Env))
			for ek, ev := range m.Env {
				env[ek] = ev
			}
			note(k, env)
		case "routes":
			m.Routes = p.routes(v, kat)
			list := make([]any, len(m.Routes))
			for i, r := range m.Routes {
				list[i] = map[string]any{"route": r}
			}
			note(k, list)
		case "default-route":
			m.DefaultRoute = p.boolean(v, kat)
		case "no-route":
			m.NoRoute = p.boolean(v, kat)
			note(k, m.NoRoute)
		case "random-route":
			m.RandomRoute = p.boolean(v, kat)
		case "services":
			m.Services = p.services(v, kat)
			names := make([]any, len(m.Services))
			for i, s := range m.Services {
				names[i] = s.Name
			}
			note(k, names)
		case "sidecars":
			if v.Kind == yaml.SequenceNode && len(v.Content) > 0 {
				p.errorf(kat, "sidecars are not supported by Pando yet")
			}
		case "docker":
			m.DockerImage = p.docker(v, kat)
			if m.DockerImage != "" {
				note(k, map[string]any{"image": m.DockerImage})
			}
		case "processes":
			m.Processes = p.processes(v, kat)
			list := make([]any, len(m.Processes))
			for i, pr := range m.Processes {
				list[i] = pr.norm
			}
			note(k, list)
		default:
			if nv, handled := p.setting(&m.Web, k, v, kat); handled && nv != nil {
				note(k, nv)
			}
		}
	}
	switch {
	case !hasName || strings.TrimSpace(m.Name) == "":
		p.errorf(at+".name", "Name must not be empty")
	case validateAppName(m.Name) != nil:
		p.errorf(at+".name", "%s", validateAppName(m.Name).Error())
	}
	if m.DockerImage != "" && len(cleanBuildpacks(m.Buildpacks)) > 0 {
		p.errorf(at, "Buildpack cannot be configured for a docker lifecycle app.")
	}
	if m.NoRoute && len(m.Routes) > 0 {
		p.errorf(at, "no-route and routes cannot be used together")
	}
	p.checkEndpoint(m.webSettings(), at)
	return m
}

func (p *mparser) env(n *yaml.Node, at string) map[string]string {
	out := map[string]string{}
	if isNull(n) {
		return out
	}
	for _, kv := range p.pairs(n, at) {
		v := kv.val
		switch {
		case isNull(v):
			out[kv.key] = ""
		case v.Kind == yaml.ScalarNode:
			// The literal text: 1.10 stays "1.10", true stays "true".
			out[kv.key] = v.Value
		default:
			p.errorf(at+"."+kv.key, "must be a string, number or boolean")
		}
	}
	if err := validateEnvVars(out); err != nil {
		p.errorf(at, "%s", err.Error())
	}
	return out
}

func (p *mparser) routes(n *yaml.Node, at string) []string {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(at, "must be a list of {route: HOST.DOMAIN[/PATH]}")
		return nil
	}
	var out []string
	for i, c := range n.Content {
		rat := fmt.Sprintf("%s[%d]", at, i)
		var route string
		for _, kv := range p.pairs(deref(c), rat) {
			switch kv.key {
			case "route":
				route, _ = p.str(kv.val, rat+".route")
			case "protocol":
				if pr, ok := p.str(kv.val, rat+".protocol"); ok && pr != "http1" {
					p.errorf(rat+".protocol", "%q is not supported: Pando routes http1", pr)
				}
			}
		}
		if route == "" {
			p.errorf(rat, "route must not be empty")
			continue
		}
		out = append(out, route)
	}
	return out
}

func (p *mparser) docker(n *yaml.Node, at string) string {
	if isNull(n) {
		return ""
	}
	var image string
	for _, kv := range p.pairs(n, at) {
		if kv.key == "image" {
			image, _ = p.str(kv.val, at+".image")
		}
	}
	if strings.TrimSpace(image) == "" {
		p.errorf(at+".image", "must be given for a docker app")
	}
	return image
}

func (p *mparser) processes(n *yaml.Node, at string) []manifestProcess {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(at, "must be a list")
		return nil
	}
	var out []manifestProcess
	seen := map[string]bool{}
	for i, c := range n.Content {
		pat := fmt.Sprintf("%s[%d]", at, i)
		pr := manifestProcess{norm: map[string]any{}}
		for _, kv := range p.pairs(deref(c), pat) {
			if kv.key == "type" {
				pr.Type, _ = p.str(kv.val, pat+".type")
				continue
			}
			if nv, handled := p.setting(&pr.processSettings, kv.key, kv.val, pat+"."+kv.key); handled && nv != nil {
				pr.norm[kv.key] = nv
			}
		}
		switch {
		case pr.Type == "":
			p.errorf(pat+".type", "must not be empty")
		case !validProcessType(pr.Type):
			p.errorf(pat+".type", "%q is not a valid process type", pr.Type)
		case seen[pr.Type]:
			p.errorf(pat+".type", "%q appears more than once", pr.Type)
		}
		seen[pr.Type] = true
		pr.norm["type"] = pr.Type
		p.checkEndpoint(pr.processSettings, pat)
		out = append(out, pr)
	}
	return out
}
