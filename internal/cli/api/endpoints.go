package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"
)

// ErrNotFound marks a lookup by name that found nothing.
var ErrNotFound = errors.New("not found")

// ErrUnsupported means the server lacks one of Pando's own endpoints (for
// example a plain Cloud Foundry); callers fall back to the CF v3 way.
var ErrUnsupported = errors.New("endpoint not supported by this server")

// Orgs lists organizations by name.
func (c *Client) Orgs(ctx context.Context, names ...string) ([]Org, error) {
	q := url.Values{"order_by": {"name"}}
	if len(names) > 0 {
		q.Set("names", strings.Join(names, ","))
	}
	return list[Org](ctx, c, "/v3/organizations?"+q.Encode())
}

// Spaces lists the spaces of an org by name.
func (c *Client) Spaces(ctx context.Context, orgGUID string, names ...string) ([]Space, error) {
	q := url.Values{"order_by": {"name"}, "organization_guids": {orgGUID}}
	if len(names) > 0 {
		q.Set("names", strings.Join(names, ","))
	}
	return list[Space](ctx, c, "/v3/spaces?"+q.Encode())
}

// ApplyManifest posts a manifest (YAML) to a space and waits for the job.
func (c *Client) ApplyManifest(ctx context.Context, spaceGUID string, manifest []byte) error {
	err := c.doJob(ctx, request{
		method:      http.MethodPost,
		url:         "/v3/spaces/" + url.PathEscape(spaceGUID) + "/actions/apply_manifest",
		body:        bytesBody(manifest),
		length:      int64(len(manifest)),
		contentType: "application/x-yaml",
	}, nil)
	if err != nil {
		return fmt.Errorf("apply manifest: %w", err)
	}
	return nil
}

// Apps lists the apps of a space, by name.
func (c *Client) Apps(ctx context.Context, spaceGUID string) ([]App, error) {
	q := url.Values{"space_guids": {spaceGUID}, "order_by": {"name"}, "per_page": {"5000"}}
	return list[App](ctx, c, "/v3/apps?"+q.Encode())
}

// AppByName finds an app in a space. It answers an error wrapping
// ErrNotFound when there is none.
func (c *Client) AppByName(ctx context.Context, spaceGUID, name string) (*App, error) {
	q := url.Values{"names": {name}, "space_guids": {spaceGUID}}
	apps, err := list[App](ctx, c, "/v3/apps?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("find app %s: %w", name, err)
	}
	if len(apps) == 0 {
		return nil, fmt.Errorf("app '%s' %w", name, ErrNotFound)
	}
	return &apps[0], nil
}

// AppAction posts actions/start, actions/stop or actions/restart.
func (c *Client) AppAction(ctx context.Context, appGUID, action string) (*App, error) {
	var a App
	if _, err := c.do(ctx, http.MethodPost, "/v3/apps/"+url.PathEscape(appGUID)+"/actions/"+action, nil, &a); err != nil {
		return nil, fmt.Errorf("%s app: %w", action, err)
	}
	return &a, nil
}

// DeleteApp deletes an app and waits for the job.
func (c *Client) DeleteApp(ctx context.Context, appGUID string) error {
	return c.doJob(ctx, request{method: http.MethodDelete, url: "/v3/apps/" + url.PathEscape(appGUID)}, nil)
}

// AppProcesses lists an app's processes.
func (c *Client) AppProcesses(ctx context.Context, appGUID string) ([]Process, error) {
	return list[Process](ctx, c, "/v3/apps/"+url.PathEscape(appGUID)+"/processes")
}

// ProcessesForApps lists the processes of several apps.
func (c *Client) ProcessesForApps(ctx context.Context, appGUIDs []string) ([]Process, error) {
	if len(appGUIDs) == 0 {
		return nil, nil
	}
	q := url.Values{"app_guids": {strings.Join(appGUIDs, ",")}, "per_page": {"5000"}}
	return list[Process](ctx, c, "/v3/processes?"+q.Encode())
}

// ProcessStats reads the instances of a process.
func (c *Client) ProcessStats(ctx context.Context, processGUID string) (*Stats, error) {
	var s Stats
	if _, err := c.do(ctx, http.MethodGet, "/v3/processes/"+url.PathEscape(processGUID)+"/stats", nil, &s); err != nil {
		return nil, fmt.Errorf("read instances: %w", err)
	}
	return &s, nil
}

// WaitStats long-polls Pando's stats endpoint: it answers when the state
// hash differs from since, or after wait. ErrUnsupported when the server
// lacks the endpoint.
func (c *Client) WaitStats(ctx context.Context, processGUID, since string, wait time.Duration) (*Stats, error) {
	q := url.Values{"wait": {wait.String()}}
	if since != "" {
		q.Set("since", since)
	}
	var s Stats
	_, err := c.doRequest(ctx, request{
		method:  http.MethodGet,
		url:     "/pando/v1/processes/" + url.PathEscape(processGUID) + "/stats?" + q.Encode(),
		timeout: wait + 30*time.Second,
	}, &s)
	if IsNotFound(err) {
		return nil, ErrUnsupported
	}
	if err != nil {
		return nil, fmt.Errorf("read instances: %w", err)
	}
	return &s, nil
}

// ScaleProcess scales one process type of an app. Nil fields are left as
// Scale is what a scale changes; nil fields stay as they are.
type Scale struct {
	Instances, MemoryMB, DiskMB *int
	LogRateLimit                *int // bytes per second, -1 unlimited
}

// they are.
func (c *Client) ScaleProcess(ctx context.Context, appGUID, processType string, sc Scale) (*Process, error) {
	body := map[string]int{}
	for k, v := range map[string]*int{"instances": sc.Instances, "memory_in_mb": sc.MemoryMB, "disk_in_mb": sc.DiskMB,
		"log_rate_limit_in_bytes_per_second": sc.LogRateLimit} {
		if v != nil {
			body[k] = *v
		}
	}
	var p Process
	path := "/v3/apps/" + url.PathEscape(appGUID) + "/processes/" + url.PathEscape(processType) + "/actions/scale"
	if _, err := c.do(ctx, http.MethodPost, path, body, &p); err != nil {
		return nil, fmt.Errorf("scale: %w", err)
	}
	return &p, nil
}

// AppRoutes lists the routes mapped to an app.
func (c *Client) AppRoutes(ctx context.Context, appGUID string) ([]Route, error) {
	return list[Route](ctx, c, "/v3/apps/"+url.PathEscape(appGUID)+"/routes")
}

// RoutesForApps lists the routes of several apps.
func (c *Client) RoutesForApps(ctx context.Context, appGUIDs []string) ([]Route, error) {
	if len(appGUIDs) == 0 {
		return nil, nil
	}
	q := url.Values{"app_guids": {strings.Join(appGUIDs, ",")}, "per_page": {"5000"}}
	return list[Route](ctx, c, "/v3/routes?"+q.Encode())
}

// RouteDestinations lists the destinations of a route.
func (c *Client) RouteDestinations(ctx context.Context, routeGUID string) ([]Destination, error) {
	var out struct {
		Destinations []Destination `json:"destinations"`
	}
	if _, err := c.do(ctx, http.MethodGet, "/v3/routes/"+url.PathEscape(routeGUID)+"/destinations", nil, &out); err != nil {
		return nil, fmt.Errorf("list destinations of route %s: %w", routeGUID, err)
	}
	return out.Destinations, nil
}

// DeleteRoute deletes a route and waits for the job.
func (c *Client) DeleteRoute(ctx context.Context, routeGUID string) error {
	return c.doJob(ctx, request{method: http.MethodDelete, url: "/v3/routes/" + url.PathEscape(routeGUID)}, nil)
}

// ResourceMatches asks which files the server already has. It sends at most
// 1000 entries per request, as the cf CLI does.
func (c *Client) ResourceMatches(ctx context.Context, rs []Resource) ([]Resource, error) {
	const batch = 1000
	var matched []Resource
	for i := 0; i < len(rs); i += batch {
		end := min(i+batch, len(rs))
		var out struct {
			Resources []Resource `json:"resources"`
		}
		in := map[string][]Resource{"resources": rs[i:end]}
		if _, err := c.do(ctx, http.MethodPost, "/v3/resource_matches", in, &out); err != nil {
			return nil, fmt.Errorf("match resources: %w", err)
		}
		matched = append(matched, out.Resources...)
	}
	return matched, nil
}

// DockerData is the image of a docker package.
type DockerData struct {
	Image    string `json:"image"`
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
}

// CreatePackage creates a bits package (docker nil) or a docker package.
func (c *Client) CreatePackage(ctx context.Context, appGUID string, docker *DockerData) (*Package, error) {
	body := map[string]any{
		"type":          "bits",
		"relationships": map[string]any{"app": map[string]any{"data": map[string]string{"guid": appGUID}}},
	}
	if docker != nil {
		body["type"] = "docker"
		body["data"] = docker
	}
	var p Package
	if _, err := c.do(ctx, http.MethodPost, "/v3/packages", body, &p); err != nil {
		return nil, fmt.Errorf("create package: %w", err)
	}
	return &p, nil
}

// GetPackage reads a package.
func (c *Client) GetPackage(ctx context.Context, guid string) (*Package, error) {
	var p Package
	if _, err := c.do(ctx, http.MethodGet, "/v3/packages/"+url.PathEscape(guid), nil, &p); err != nil {
		return nil, fmt.Errorf("read package: %w", err)
	}
	return &p, nil
}

// LatestPackage returns the app's newest package in one of states (any
// state when none given), or an error wrapping ErrNotFound.
func (c *Client) LatestPackage(ctx context.Context, appGUID string, states ...string) (*Package, error) {
	q := url.Values{"app_guids": {appGUID}, "order_by": {"-created_at"}, "per_page": {"1"}, "page": {"1"}}
	if len(states) > 0 {
		q.Set("states", strings.Join(states, ","))
	}
	var p page[Package]
	if _, err := c.do(ctx, http.MethodGet, "/v3/packages?"+q.Encode(), nil, &p); err != nil {
		return nil, fmt.Errorf("find package: %w", err)
	}
	if len(p.Resources) == 0 {
		return nil, fmt.Errorf("package %w", ErrNotFound)
	}
	return &p.Resources[0], nil
}

// AppBuilds returns the app's newest builds (at most 20) in one of states,
// newest first.
func (c *Client) AppBuilds(ctx context.Context, appGUID string, states ...string) ([]Build, error) {
	q := url.Values{"states": {strings.Join(states, ",")}, "order_by": {"-created_at"}, "per_page": {"20"}}
	var p page[Build]
	if _, err := c.do(ctx, http.MethodGet, "/v3/apps/"+url.PathEscape(appGUID)+"/builds?"+q.Encode(), nil, &p); err != nil {
		return nil, fmt.Errorf("list builds: %w", err)
	}
	return p.Resources, nil
}

// WaitPackageReady polls a package until READY; FAILED or EXPIRED is an
// error.
func (c *Client) WaitPackageReady(ctx context.Context, p *Package) (*Package, error) {
	b := c.backoff()
	for {
		switch p.State {
		case "READY":
			return p, nil
		case "FAILED", "EXPIRED":
			msg := "package " + strings.ToLower(p.State)
			if p.Data.Error != nil && *p.Data.Error != "" {
				msg += ": " + *p.Data.Error
			}
			return nil, errors.New(msg)
		}
		if err := b.wait(ctx); err != nil {
			return nil, err
		}
		np, err := c.GetPackage(ctx, p.GUID)
		if err != nil {
			return nil, err
		}
		p = np
	}
}

// Upload describes a file to upload as the multipart field "bits".
type Upload struct {
	// Open returns the content; it may be called again when a request is
	// retried.
	Open     func() (io.ReadCloser, error)
	Size     int64
	Filename string
	// Progress, when set, is called as bytes of the whole body are sent.
	Progress func(sent, total int64)
}

// multipartUpload builds a request whose body is the fields, then the file
// part "bits", with an exact Content-Length (the cf CLI never sends chunked
// uploads).
func multipartUpload(method, path string, fields [][2]string, up Upload) (request, error) {
	var head bytes.Buffer
	mw := multipart.NewWriter(&head)
	for _, f := range fields {
		if err := mw.WriteField(f[0], f[1]); err != nil {
			return request{}, err
		}
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="bits"; filename=%q`, up.Filename))
	h.Set("Content-Type", "application/octet-stream")
	if _, err := mw.CreatePart(h); err != nil {
		return request{}, err
	}
	prefix := bytes.Clone(head.Bytes())
	head.Reset()
	if err := mw.Close(); err != nil {
		return request{}, err
	}
	suffix := bytes.Clone(head.Bytes())
	total := int64(len(prefix)) + up.Size + int64(len(suffix))
	body := func() (io.ReadCloser, error) {
		f, err := up.Open()
		if err != nil {
			return nil, err
		}
		r := io.MultiReader(bytes.NewReader(prefix), io.LimitReader(f, up.Size), bytes.NewReader(suffix))
		return &progressReader{r: r, c: f, total: total, fn: up.Progress}, nil
	}
	return request{
		method:      method,
		url:         path,
		body:        body,
		length:      total,
		contentType: mw.FormDataContentType(),
		timeout:     -1,
	}, nil
}

type progressReader struct {
	r     io.Reader
	c     io.Closer
	sent  int64
	total int64
	fn    func(sent, total int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.sent += int64(n)
	if p.fn != nil && n > 0 {
		p.fn(p.sent, p.total)
	}
	return n, err
}

func (p *progressReader) Close() error { return p.c.Close() }

// UploadPackage uploads the package zip plus the list of files the server
// already has.
func (c *Client) UploadPackage(ctx context.Context, guid string, matched []Resource, up Upload) (*Package, error) {
	if matched == nil {
		matched = []Resource{}
	}
	rj, err := json.Marshal(matched)
	if err != nil {
		return nil, err
	}
	if up.Filename == "" {
		up.Filename = "package.zip"
	}
	r, err := multipartUpload(http.MethodPost, "/v3/packages/"+url.PathEscape(guid)+"/upload", [][2]string{{"resources", string(rj)}}, up)
	if err != nil {
		return nil, fmt.Errorf("upload package: %w", err)
	}
	var p Package
	if _, err := c.doRequest(ctx, r, &p); err != nil {
		return nil, fmt.Errorf("upload package: %w", err)
	}
	return &p, nil
}

// CreateBuild stages a package.
func (c *Client) CreateBuild(ctx context.Context, packageGUID string) (*Build, error) {
	var b Build
	if _, err := c.do(ctx, http.MethodPost, "/v3/builds", map[string]any{"package": map[string]string{"guid": packageGUID}}, &b); err != nil {
		return nil, fmt.Errorf("stage: %w", err)
	}
	return &b, nil
}

// GetBuild reads a build.
func (c *Client) GetBuild(ctx context.Context, guid string) (*Build, error) {
	var b Build
	if _, err := c.do(ctx, http.MethodGet, "/v3/builds/"+url.PathEscape(guid), nil, &b); err != nil {
		return nil, fmt.Errorf("read build: %w", err)
	}
	return &b, nil
}

// ErrBuildGone means a build that was being waited for no longer exists:
// its app (and with it the build) was deleted meanwhile.
var ErrBuildGone = errors.New("build no longer exists")

// AwaitBuild waits until a build leaves STAGING, long-polling Pando's
// /pando/v1/builds endpoint, or polling /v3/builds on servers without it.
// A build deleted meanwhile ends the wait with an error wrapping
// ErrBuildGone.
func (c *Client) AwaitBuild(ctx context.Context, guid string) (*Build, error) {
	const wait = 30 * time.Second
	// A server restarting meanwhile is waited for (c.outage at most): a
	// staging on a joined cell goes on, and one on the server's own cell
	// ends FAILED, saying why.
	var away time.Time
	outage := c.backoff()
	for {
		var b Build
		_, err := c.doRequest(ctx, request{
			method:  http.MethodGet,
			url:     "/pando/v1/builds/" + url.PathEscape(guid) + "?wait=" + wait.String(),
			timeout: wait + 30*time.Second,
		}, &b)
		if err != nil && ctx.Err() == nil && serverAway(err) {
			if away.IsZero() {
				away = c.now()
			}
			if c.now().Sub(away) < c.outage {
				if werr := outage.wait(ctx); werr != nil {
					return nil, werr
				}
				continue
			}
		}
		away, outage = time.Time{}, c.backoff()
		if IsNotFound(err) {
			// A server without the endpoint answers CF-NotFound ("Unknown
			// request"); Pando answers CF-ResourceNotFound for a build that
			// is gone.
			var e *Error
			if errors.As(err, &e) && e.HasTitle("CF-ResourceNotFound") {
				return nil, fmt.Errorf("wait for build %s: %w", guid, ErrBuildGone)
			}
			break
		}
		if err != nil {
			return nil, fmt.Errorf("wait for build: %w", err)
		}
		if b.State != "STAGING" {
			return &b, nil
		}
	}
	bo := c.backoff()
	for {
		b, err := c.GetBuild(ctx, guid)
		if IsStatus(err, http.StatusNotFound) {
			return nil, fmt.Errorf("wait for build %s: %w", guid, ErrBuildGone)
		}
		if err != nil {
			return nil, err
		}
		if b.State != "STAGING" {
			return b, nil
		}
		if err := bo.wait(ctx); err != nil {
			return nil, err
		}
	}
}

// GetDroplet reads a droplet.
func (c *Client) GetDroplet(ctx context.Context, guid string) (*Droplet, error) {
	var d Droplet
	if _, err := c.do(ctx, http.MethodGet, "/v3/droplets/"+url.PathEscape(guid), nil, &d); err != nil {
		return nil, fmt.Errorf("read droplet: %w", err)
	}
	return &d, nil
}

// CurrentDroplet returns the app's current droplet, or nil when it has none.
func (c *Client) CurrentDroplet(ctx context.Context, appGUID string) (*Droplet, error) {
	var d Droplet
	_, err := c.do(ctx, http.MethodGet, "/v3/apps/"+url.PathEscape(appGUID)+"/droplets/current", nil, &d)
	if IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read current droplet: %w", err)
	}
	return &d, nil
}

// SetCurrentDroplet makes a droplet the app's current one.
func (c *Client) SetCurrentDroplet(ctx context.Context, appGUID, dropletGUID string) error {
	body := map[string]any{"data": map[string]string{"guid": dropletGUID}}
	if _, err := c.do(ctx, http.MethodPatch, "/v3/apps/"+url.PathEscape(appGUID)+"/relationships/current_droplet", body, nil); err != nil {
		return fmt.Errorf("set current droplet: %w", err)
	}
	return nil
}

// AppEnv reads an app's environment.
func (c *Client) AppEnv(ctx context.Context, appGUID string) (*AppEnv, error) {
	var e AppEnv
	if _, err := c.do(ctx, http.MethodGet, "/v3/apps/"+url.PathEscape(appGUID)+"/env", nil, &e); err != nil {
		return nil, fmt.Errorf("read env: %w", err)
	}
	return &e, nil
}

// UpdateEnvVars sets (non-nil) and removes (nil) user environment variables.
func (c *Client) UpdateEnvVars(ctx context.Context, appGUID string, vars map[string]*string) error {
	body := map[string]any{"var": vars}
	if _, err := c.do(ctx, http.MethodPatch, "/v3/apps/"+url.PathEscape(appGUID)+"/environment_variables", body, nil); err != nil {
		return fmt.Errorf("update env: %w", err)
	}
	return nil
}

// AuditEvents lists the events of a target, newest first.
func (c *Client) AuditEvents(ctx context.Context, targetGUID string) ([]AuditEvent, error) {
	q := url.Values{"target_guids": {targetGUID}, "order_by": {"-created_at"}, "per_page": {"50"}}
	// One page: the newest 50 events, as cf events shows.
	var p page[AuditEvent]
	if _, err := c.do(ctx, http.MethodGet, "/v3/audit_events?"+q.Encode(), nil, &p); err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	return p.Resources, nil
}

// Buildpacks lists admin buildpacks in position order.
func (c *Client) Buildpacks(ctx context.Context) ([]Buildpack, error) {
	return list[Buildpack](ctx, c, "/v3/buildpacks?order_by=position")
}

// CreateBuildpack creates an (empty) admin buildpack.
func (c *Client) CreateBuildpack(ctx context.Context, name string, position int, enabled bool) (*Buildpack, error) {
	var b Buildpack
	body := map[string]any{"name": name, "position": position, "enabled": enabled}
	if _, err := c.do(ctx, http.MethodPost, "/v3/buildpacks", body, &b); err != nil {
		return nil, fmt.Errorf("create buildpack: %w", err)
	}
	return &b, nil
}

// BuildpacksByName lists the admin buildpacks called name (one per stack).
func (c *Client) BuildpacksByName(ctx context.Context, name string) ([]Buildpack, error) {
	q := url.Values{"names": {name}, "order_by": {"position"}}
	bps, err := list[Buildpack](ctx, c, "/v3/buildpacks?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("find buildpack %s: %w", name, err)
	}
	return bps, nil
}

// BuildpackUpdate holds the fields of a buildpack to change; nil fields
// are left as they are.
type BuildpackUpdate struct {
	Position *int  `json:"position,omitempty"`
	Enabled  *bool `json:"enabled,omitempty"`
	Locked   *bool `json:"locked,omitempty"`
}

// UpdateBuildpack changes a buildpack's position, enabled or locked flag.
func (c *Client) UpdateBuildpack(ctx context.Context, guid string, u BuildpackUpdate) (*Buildpack, error) {
	var b Buildpack
	if _, err := c.do(ctx, http.MethodPatch, "/v3/buildpacks/"+url.PathEscape(guid), u, &b); err != nil {
		return nil, fmt.Errorf("update buildpack: %w", err)
	}
	return &b, nil
}

// DeleteBuildpack deletes a buildpack and waits for the job.
func (c *Client) DeleteBuildpack(ctx context.Context, guid string) error {
	if err := c.doJob(ctx, request{method: http.MethodDelete, url: "/v3/buildpacks/" + url.PathEscape(guid)}, nil); err != nil {
		return fmt.Errorf("delete buildpack: %w", err)
	}
	return nil
}

// UploadBuildpack uploads a buildpack zip and waits for its job.
func (c *Client) UploadBuildpack(ctx context.Context, guid string, up Upload) error {
	r, err := multipartUpload(http.MethodPost, "/v3/buildpacks/"+url.PathEscape(guid)+"/upload", nil, up)
	if err != nil {
		return fmt.Errorf("upload buildpack: %w", err)
	}
	if err := c.doJob(ctx, r, nil); err != nil {
		return fmt.Errorf("upload buildpack: %w", err)
	}
	return nil
}

// Stacks lists stacks.
func (c *Client) Stacks(ctx context.Context) ([]Stack, error) {
	return list[Stack](ctx, c, "/v3/stacks?order_by=name")
}

// Cell is one cell as GET /pando/v1/cells shows it.
type Cell struct {
	ID       string   `json:"id"`
	Zone     string   `json:"zone"`
	Stacks   []string `json:"stacks"`
	Draining bool     `json:"draining"`
	// State is healthy, draining or lost (a cell that does not answer).
	State    string `json:"state"`
	MemoryMB Usage  `json:"memory_mb"`
	DiskMB   struct {
		Usage
		// LayerCache is the part of Used that the cell's image layer
		// cache holds.
		LayerCache int `json:"layer_cache"`
	} `json:"disk_mb"`
	Instances []struct {
		AppName     string `json:"app_name"`
		ProcessType string `json:"process_type"`
		Index       int    `json:"index"`
		State       string `json:"state"`
		MemoryMB    int    `json:"memory_in_mb"`
	} `json:"instances"`
	Containers struct {
		Total    int `json:"total"`
		Used     int `json:"used"`
		Starting int `json:"starting"`
	} `json:"containers"`
}

// Usage is a used/total pair.
type Usage struct {
	Total int `json:"total"`
	Used  int `json:"used"`
}

// DrainCell asks the runtime to evacuate a cell (Pando only, admins): it
// answers at once; the instances leave the cell afterwards.
func (c *Client) DrainCell(ctx context.Context, id string) error {
	_, err := c.do(ctx, "POST", "/pando/v1/cells/"+url.PathEscape(id)+"/drain", nil, nil)
	return err
}

// UndrainCell ends a cell's drain (Pando only, admins) and returns the
// cell as the server lists it after: still draining when the cell drains
// itself (SIGTERM, SIGUSR1 on its machine).
func (c *Client) UndrainCell(ctx context.Context, id string) (Cell, error) {
	var cell Cell
	_, err := c.do(ctx, "POST", "/pando/v1/cells/"+url.PathEscape(id)+"/undrain", nil, &cell)
	return cell, err
}

// Cells lists the cells with their capacity and instances (Pando only).
func (c *Client) Cells(ctx context.Context) ([]Cell, error) {
	var out struct {
		Resources []Cell `json:"resources"`
	}
	if _, err := c.do(ctx, "GET", "/pando/v1/cells", nil, &out); err != nil {
		return nil, err
	}
	return out.Resources, nil
}
