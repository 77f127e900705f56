package cell

import (
	"encoding/json"
	"net"
	"strconv"
	"strings"

	"github.com/pandoplatform/pando"
)

// maxFDs is the instance file descriptor limit reported in
// VCAP_APPLICATION (CF's default; the backend sets the rlimit).
const maxFDs = 16384

// envList is an ordered environment where a later Set of the same name
// replaces the value in place.
type envList struct {
	names []string
	vals  map[string]string
}

func newEnv() *envList { return &envList{vals: map[string]string{}} }

func (e *envList) Set(name, val string) {
	if _, ok := e.vals[name]; !ok {
		e.names = append(e.names, name)
	}
	e.vals[name] = val
}

func (e *envList) Get(name string) (string, bool) {
	v, ok := e.vals[name]
	return v, ok
}

// AddUser adds user variables; they may not replace the platform's own
// (VCAP_*, CF_*, PORT, ...): CF refuses to let apps set those.
func (e *envList) AddUser(vars []pando.EnvVar) {
	for _, v := range vars {
		if v.Name == "" || strings.ContainsAny(v.Name, "=\x00") || strings.IndexByte(v.Value, 0) >= 0 {
			continue
		}
		if reservedEnv(v.Name) {
			if _, set := e.vals[v.Name]; set {
				continue
			}
		}
		e.Set(v.Name, v.Value)
	}
}

// takeServices uses the API's VCAP_SERVICES (service bindings) when the
// env carries a valid one.
func (e *envList) takeServices(vars []pando.EnvVar) {
	for _, v := range vars {
		if v.Name == "VCAP_SERVICES" && json.Valid([]byte(v.Value)) {
			e.Set(v.Name, v.Value)
		}
	}
}

func reservedEnv(name string) bool {
	switch name {
	case "PORT", "MEMORY_LIMIT", "INSTANCE_INDEX", "INSTANCE_GUID", "HOME":
		return true
	}
	return strings.HasPrefix(name, "VCAP_") || strings.HasPrefix(name, "CF_")
}

// List returns KEY=VALUE strings in order.
func (e *envList) List() []string {
	out := make([]string, 0, len(e.names))
	for _, n := range e.names {
		out = append(out, n+"="+e.vals[n])
	}
	return out
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only maps, slices, strings and numbers go in
	}
	return string(b)
}

type vcapLimits struct {
	Mem  int `json:"mem"`
	Disk int `json:"disk"`
	FDs  int `json:"fds"`
}

// vcapApplication is VCAP_APPLICATION for an instance.
type vcapApplication struct {
	ApplicationID      string     `json:"application_id"`
	ApplicationName    string     `json:"application_name"`
	ApplicationURIs    []string   `json:"application_uris"`
	ApplicationVersion string     `json:"application_version"`
	Name               string     `json:"name"`
	URIs               []string   `json:"uris"`
	Version            string     `json:"version"`
	InstanceID         string     `json:"instance_id,omitempty"`
	InstanceIndex      *int       `json:"instance_index,omitempty"`
	SpaceID            string     `json:"space_id"`
	SpaceName          string     `json:"space_name"`
	OrganizationID     string     `json:"organization_id"`
	OrganizationName   string     `json:"organization_name"`
	ProcessID          string     `json:"process_id,omitempty"`
	ProcessType        string     `json:"process_type,omitempty"`
	Limits             vcapLimits `json:"limits"`
	Host               string     `json:"host,omitempty"`
	Port               int        `json:"port,omitempty"`
}

// instanceEnv is the environment of an LRP instance: CF's variables, then
// the user's.
func (r *Rep) instanceEnv(lrp pando.DesiredLRP, index int, guid string, ports []pando.PortMapping, memMB, diskMB int) []string {
	e := newEnv()
	routes := lrp.Routes
	if routes == nil {
		routes = []string{}
	}
	idx := index
	version := lrp.ProcessGUID + "-" + strconv.Itoa(lrp.Revision)
	va := vcapApplication{
		ApplicationID:      lrp.AppGUID,
		ApplicationName:    lrp.AppName,
		ApplicationURIs:    routes,
		ApplicationVersion: version,
		Name:               lrp.AppName,
		URIs:               routes,
		Version:            version,
		InstanceID:         guid,
		InstanceIndex:      &idx,
		SpaceID:            lrp.SpaceGUID,
		SpaceName:          lrp.SpaceName,
		OrganizationID:     lrp.OrgGUID,
		OrganizationName:   lrp.OrgName,
		ProcessID:          lrp.ProcessGUID,
		ProcessType:        lrp.ProcessType,
		Limits:             vcapLimits{Mem: memMB, Disk: diskMB, FDs: maxFDs},
		Host:               "0.0.0.0",
	}
	type portJSON struct {
		External int `json:"external"`
		Internal int `json:"internal"`
	}
	pj := make([]portJSON, len(ports))
	for i, p := range ports {
		pj[i] = portJSON{External: p.HostPort, Internal: p.ContainerPort}
	}
	if len(ports) > 0 {
		va.Port = ports[0].ContainerPort
		e.Set("PORT", strconv.Itoa(ports[0].ContainerPort))
		// CF's legacy names, which older apps and buildpacks still read.
		e.Set("VCAP_APP_HOST", "0.0.0.0")
		e.Set("VCAP_APP_PORT", strconv.Itoa(ports[0].ContainerPort))
	}
	e.Set("VCAP_APPLICATION", mustJSON(va))
	e.Set("VCAP_SERVICES", "{}")
	e.Set("CF_INSTANCE_INDEX", strconv.Itoa(index))
	e.Set("CF_INSTANCE_GUID", guid)
	e.Set("CF_INSTANCE_IP", r.cfg.HostAddr)
	e.Set("CF_INSTANCE_INTERNAL_IP", "127.0.0.1")
	if len(ports) > 0 {
		e.Set("CF_INSTANCE_PORT", strconv.Itoa(ports[0].HostPort))
		e.Set("CF_INSTANCE_ADDR", net.JoinHostPort(r.cfg.HostAddr, strconv.Itoa(ports[0].HostPort)))
	} else {
		e.Set("CF_INSTANCE_PORT", "")
		e.Set("CF_INSTANCE_ADDR", "")
	}
	e.Set("CF_INSTANCE_PORTS", mustJSON(pj))
	e.Set("INSTANCE_INDEX", strconv.Itoa(index))
	e.Set("INSTANCE_GUID", guid)
	e.Set("MEMORY_LIMIT", strconv.Itoa(memMB)+"m")
	e.Set("LANG", "en_US.UTF-8")
	e.takeServices(lrp.Env)
	e.AddUser(lrp.Env)
	if lrp.BindingFiles != "" {
		e.bindingFilesEnv(lrp.BindingFiles)
	}
	return e.List()
}

// stagingEnv is the environment of a staging container: no PORT. Like
// Diego, it sets the CF_INSTANCE_* a container without ports has (its
// GUID, the build's, and the cell's address). The operator's variables
// (operator) come before the app's, which replace them; neither replaces
// the platform's. With egress (the URL of the staging's egress proxy, or
// "" when egress is off) the proxy variables point at that proxy only:
// the operator's proxy settings are the proxy's, not the container's.
func stagingEnv(req pando.StagingRequest, operator []pando.EnvVar, stack, hostAddr string, memMB, diskMB int, egress string) []string {
	e := newEnv()
	e.Set("CF_STACK", stack)
	e.Set("VCAP_APPLICATION", stagingVcapApplication(req, memMB, diskMB))
	e.Set("VCAP_SERVICES", "{}")
	e.Set("CF_INSTANCE_GUID", req.BuildGUID)
	e.Set("CF_INSTANCE_IP", hostAddr)
	e.Set("CF_INSTANCE_INTERNAL_IP", "127.0.0.1")
	e.Set("CF_INSTANCE_PORT", "")
	e.Set("CF_INSTANCE_ADDR", "")
	e.Set("CF_INSTANCE_PORTS", "[]")
	e.Set("MEMORY_LIMIT", strconv.Itoa(memMB)+"m")
	e.Set("HOME", "/home/vcap")
	e.Set("LANG", "en_US.UTF-8")
	e.takeServices(req.Env)
	e.AddUser(operator)
	e.AddUser(req.Env)
	if req.BindingFiles != "" {
		e.bindingFilesEnv(req.BindingFiles)
	}
	if egress == "" {
		e.Set("PANDO_STAGING_EGRESS", "off")
		return e.List()
	}
	e.Set("PANDO_STAGING_EGRESS", "on")
	for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "npm_config_proxy", "npm_config_https_proxy"} {
		e.Set(k, egress)
	}
	for _, k := range []string{"NO_PROXY", "no_proxy"} {
		e.Set(k, "")
	}
	return e.List()
}

// stagingVcapApplication builds VCAP_APPLICATION for staging. A staging
// request carries no app, space or org names; when the API sends its own
// VCAP_APPLICATION in the env it is kept, with the limits set to the
// staging container's.
func stagingVcapApplication(req pando.StagingRequest, memMB, diskMB int) string {
	limits := vcapLimits{Mem: memMB, Disk: diskMB, FDs: maxFDs}
	for _, v := range req.Env {
		if v.Name != "VCAP_APPLICATION" {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(v.Value), &m) == nil && m != nil {
			m["limits"] = limits
			if _, ok := m["application_id"]; !ok {
				m["application_id"] = req.AppGUID
			}
			return mustJSON(m)
		}
	}
	return mustJSON(vcapApplication{
		ApplicationID:   req.AppGUID,
		ApplicationURIs: []string{},
		URIs:            []string{},
		Limits:          limits,
	})
}

// taskEnv is the environment of a CF task: an instance's, less what only
// a routable instance has (PORT, CF_INSTANCE_PORT(S), CF_INSTANCE_ADDR,
// CF_INSTANCE_INDEX; Diego sets none of them for tasks). HOME comes from
// the launcher.
func (r *Rep) taskEnv(run pando.RunRequest, guid string, memMB, diskMB int) []string {
	e := newEnv()
	e.Set("VCAP_APPLICATION", taskVcapApplication(run, memMB, diskMB))
	e.Set("VCAP_SERVICES", "{}")
	e.Set("CF_INSTANCE_GUID", guid)
	e.Set("CF_INSTANCE_IP", r.cfg.HostAddr)
	e.Set("CF_INSTANCE_INTERNAL_IP", "127.0.0.1")
	e.Set("MEMORY_LIMIT", strconv.Itoa(memMB)+"m")
	e.Set("LANG", "en_US.UTF-8")
	e.takeServices(run.Env)
	e.AddUser(run.Env)
	if run.BindingFiles != "" {
		e.bindingFilesEnv(run.BindingFiles)
	}
	return e.List()
}

// taskVcapApplication builds VCAP_APPLICATION for a CF task. When the API
// sends its own in the env (with the app's routes and version) it is kept,
// without an instance's fields and with the task container's limits.
func taskVcapApplication(run pando.RunRequest, memMB, diskMB int) string {
	limits := vcapLimits{Mem: memMB, Disk: diskMB, FDs: maxFDs}
	for _, v := range run.Env {
		if v.Name != "VCAP_APPLICATION" {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(v.Value), &m) == nil && m != nil {
			for _, k := range []string{"instance_id", "instance_index", "host", "port", "process_id", "process_type"} {
				delete(m, k)
			}
			m["limits"] = limits
			for k, val := range map[string]string{
				"application_id": run.AppGUID, "application_name": run.AppName, "name": run.AppName,
				"space_id": run.SpaceGUID, "space_name": run.SpaceName,
				"organization_id": run.OrgGUID, "organization_name": run.OrgName,
			} {
				if _, ok := m[k]; !ok && val != "" {
					m[k] = val
				}
			}
			return mustJSON(m)
		}
	}
	return mustJSON(vcapApplication{
		ApplicationID:    run.AppGUID,
		ApplicationName:  run.AppName,
		ApplicationURIs:  []string{},
		Name:             run.AppName,
		URIs:             []string{},
		SpaceID:          run.SpaceGUID,
		SpaceName:        run.SpaceName,
		OrganizationID:   run.OrgGUID,
		OrganizationName: run.OrgName,
		Limits:           limits,
	})
}
