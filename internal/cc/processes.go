package cc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/pandoplatform/pando"
)

// Limits on process settings.
const (
	maxInstances = 1000
	maxMemoryMB  = 64 * 1024
	maxDiskMB    = 64 * 1024
)

// processUpdate is a partial update of a process; nil fields stay.
type processUpdate struct {
	Instances                    *int
	MemoryMB                     *int
	DiskMB                       *int
	LogRateLimitBytes            *int
	Command                      *string
	HealthCheckType              *string
	HealthCheckEndpoint          *string
	HealthCheckTimeout           *int
	HealthCheckInvocationTimeout *int
}

func (u processUpdate) validate() error {
	if u.Instances != nil && (*u.Instances < 0 || *u.Instances > maxInstances) {
		return invalid("Instances must be between 0 and %d", maxInstances)
	}
	if u.MemoryMB != nil && (*u.MemoryMB < 1 || *u.MemoryMB > maxMemoryMB) {
		return invalid("Memory in mb must be between 1 and %d", maxMemoryMB)
	}
	if u.DiskMB != nil && (*u.DiskMB < 1 || *u.DiskMB > maxDiskMB) {
		return invalid("Disk in mb must be between 1 and %d", maxDiskMB)
	}
	if u.LogRateLimitBytes != nil && *u.LogRateLimitBytes < -1 {
		return invalid("Log rate limit in bytes per second must be greater than or equal to -1")
	}
	if u.HealthCheckType != nil {
		switch *u.HealthCheckType {
		case pando.HealthCheckPort, pando.HealthCheckHTTP, pando.HealthCheckProcess:
		case "none":
		default:
			return invalid("Health check type must be 'port', 'process', or 'http'")
		}
	}
	if u.HealthCheckTimeout != nil && (*u.HealthCheckTimeout < 1 || *u.HealthCheckTimeout > 180) {
		return invalid("Health check timeout must be between 1 and 180 seconds")
	}
	if u.HealthCheckInvocationTimeout != nil && (*u.HealthCheckInvocationTimeout < 1 || *u.HealthCheckInvocationTimeout > 60) {
		return invalid("Health check invocation timeout must be between 1 and 60 seconds")
	}
	if u.Command != nil && len(*u.Command) > 4096 {
		return invalid("Command must be at most 4096 characters")
	}
	return nil
}

// updateProcess validates and persists u, then syncs the runtime. Instance
// count changes apply at once; memory, disk and command changes apply to
// instances started from now on (CF applies them on restart). The process
// is re-read and written in one transaction, so concurrent updates of
// other fields (or of the app) are never undone; p names the process.
func (a *API) updateProcess(ctx context.Context, id Identity, p pando.Process, u processUpdate) (pando.Process, error) {
	if err := u.validate(); err != nil {
		return p, err
	}
	var before pando.Process
	var app pando.App
	haveApp := false
	err := a.inTx(ctx, func(ctx context.Context) error {
		cur, err := a.getProcessByGUID(ctx, p.GUID)
		if err != nil {
			return err
		}
		before, p = cur, u.applyTo(cur)
		p.UpdatedAt = a.now()
		// A process without its app (being deleted) has no quota to
		// check or event to record; any other failure to read the app
		// fails the update rather than skipping its quota check.
		switch app, err = a.db(ctx).GetApp(ctx, p.AppGUID); {
		case err == nil:
			haveApp = true
			if app.State == pando.AppStarted {
				if err := a.checkAppQuotas(ctx, app, []pando.Process{p}); err != nil {
					return err
				}
			}
		case !pando.IsNotFound(err):
			return fmt.Errorf("read app %s: %w", p.AppGUID, err)
		}
		if err := a.db(ctx).UpdateProcess(ctx, p); err != nil {
			return fmt.Errorf("update process %s: %w", p.GUID, err)
		}
		return nil
	})
	if err != nil {
		return p, err
	}
	if haveApp {
		typ := "audit.app.process.update"
		if u.Instances != nil || u.MemoryMB != nil || u.DiskMB != nil {
			typ = "audit.app.process.scale"
		}
		if app.State == pando.AppStarted && (before.Instances != p.Instances || before.MemoryMB != p.MemoryMB) {
			a.recordScaleUsage(ctx, app, before, p, pando.UsageStarted, pando.UsageStarted)
		}
		a.recordAppEvent(ctx, id, typ, app, map[string]any{"process_guid": p.GUID, "process_type": p.Type, "request": u.request()})
	}
	return p, a.syncApp(ctx, p.AppGUID)
}

// applyTo returns p with u's fields set.
func (u processUpdate) applyTo(p pando.Process) pando.Process {
	if u.Instances != nil {
		p.Instances = *u.Instances
	}
	if u.MemoryMB != nil {
		p.MemoryMB = *u.MemoryMB
	}
	if u.DiskMB != nil {
		p.DiskMB = *u.DiskMB
	}
	if u.LogRateLimitBytes != nil {
		p.LogRateLimitBytes = *u.LogRateLimitBytes
	}
	if u.Command != nil {
		p.Command = *u.Command
	}
	if u.HealthCheckType != nil {
		t := *u.HealthCheckType
		if t == "none" {
			t = pando.HealthCheckProcess
		}
		p.HealthCheckType = t
		if t != pando.HealthCheckHTTP {
			p.HealthCheckEndpoint = ""
		}
	}
	if u.HealthCheckEndpoint != nil {
		p.HealthCheckEndpoint = *u.HealthCheckEndpoint
	}
	if p.HealthCheckType == pando.HealthCheckHTTP && p.HealthCheckEndpoint == "" {
		p.HealthCheckEndpoint = "/"
	}
	if u.HealthCheckTimeout != nil {
		p.HealthCheckTimeout = *u.HealthCheckTimeout
	}
	if u.HealthCheckInvocationTimeout != nil {
		p.HealthCheckInvocationTimeout = *u.HealthCheckInvocationTimeout
	}
	return p
}

// request is what the audit event says the update asked for.
func (u processUpdate) request() map[string]any {
	req := map[string]any{}
	if u.Instances != nil {
		req["instances"] = *u.Instances
	}
	if u.MemoryMB != nil {
		req["memory_in_mb"] = *u.MemoryMB
	}
	if u.DiskMB != nil {
		req["disk_in_mb"] = *u.DiskMB
	}
	if u.Command != nil {
		req["command"] = "[PRIVATE DATA HIDDEN]"
	}
	return req
}

func (a *API) getProcessByGUID(ctx context.Context, guid string) (pando.Process, error) {
	p, err := a.db(ctx).GetProcess(ctx, guid)
	if err != nil {
		return p, asNotFound(err, "Process")
	}
	return p, nil
}

func (a *API) getAppProcessByType(ctx context.Context, appGUID, typ string) (pando.Process, error) {
	if _, err := a.getAppByGUID(ctx, appGUID); err != nil {
		return pando.Process{}, err
	}
	procs, err := a.db(ctx).ListProcesses(ctx, nil, []string{appGUID})
	if err != nil {
		return pando.Process{}, err
	}
	for _, p := range procs {
		if p.Type == typ {
			return p, nil
		}
	}
	return pando.Process{}, notFound("Process")
}

// processHandler serves a request about one process.
type processHandler func(w http.ResponseWriter, r *http.Request, p pando.Process) error

// byGUID resolves /v3/processes/{guid}.
func (a *API) byGUID(h processHandler) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, err := a.getProcessByGUID(r.Context(), r.PathValue("guid"))
		if err != nil {
			return err
		}
		return h(w, r, p)
	}
}

// byType resolves /v3/apps/{guid}/processes/{type}.
func (a *API) byType(h processHandler) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, err := a.getAppProcessByType(r.Context(), r.PathValue("guid"), r.PathValue("type"))
		if err != nil {
			return err
		}
		return h(w, r, p)
	}
}

func (a *API) getProcess(w http.ResponseWriter, r *http.Request, p pando.Process) error {
	writeJSON(w, http.StatusOK, a.presentProcess(p, a.detectedCommands(r.Context())))
	return nil
}

func (a *API) getProcessStats(w http.ResponseWriter, r *http.Request, p pando.Process) error {
	stats, err := a.processStats(r.Context(), p)
	if err != nil {
		return err
	}
	a.writeStats(w, stats, "")
	return nil
}

func (a *API) paginateProcesses(w http.ResponseWriter, r *http.Request, procs []pando.Process) {
	procs = visibleByApp(r.Context(), a, procs, func(p pando.Process) string { return p.AppGUID })
	detected := a.detectedCommands(r.Context())
	paginate(a, w, r, procs, func(p pando.Process) sortable {
		return sortable{name: p.Type, createdAt: p.CreatedAt, updatedAt: p.UpdatedAt}
	}, func(p pando.Process) any { return a.presentProcess(p, detected) })
}

func (a *API) listProcesses(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	procs, err := a.store.ListProcesses(r.Context(), splitList(q, "guids"), splitList(q, "app_guids"))
	if err != nil {
		return err
	}
	if types := splitList(q, "types"); len(types) > 0 {
		keep := procs[:0]
		for _, p := range procs {
			for _, t := range types {
				if p.Type == t {
					keep = append(keep, p)
				}
			}
		}
		procs = keep
	}
	a.paginateProcesses(w, r, procs)
	return nil
}

func (a *API) listAppProcesses(w http.ResponseWriter, r *http.Request) error {
	app, err := a.getAppByGUID(r.Context(), r.PathValue("guid"))
	if err != nil {
		return err
	}
	procs, err := a.store.ListProcesses(r.Context(), nil, []string{app.GUID})
	if err != nil {
		return err
	}
	a.paginateProcesses(w, r, procs)
	return nil
}

// processPatchBody is the JSON of PATCH /v3/processes/:guid.
type processPatchBody struct {
	Command     nullableString `json:"command"`
	HealthCheck *struct {
		Type *string `json:"type"`
		Data *struct {
			Timeout           *int    `json:"timeout"`
			InvocationTimeout *int    `json:"invocation_timeout"`
			Endpoint          *string `json:"endpoint"`
		} `json:"data"`
	} `json:"health_check"`
}

// nullableString tells a JSON null (set, value "") from an absent field
// (not set).
type nullableString struct {
	set   bool
	value string
}

func (n *nullableString) UnmarshalJSON(b []byte) error {
	n.set = true
	if string(b) == "null" {
		n.value = ""
		return nil
	}
	return json.Unmarshal(b, &n.value)
}

func (b processPatchBody) update() processUpdate {
	var u processUpdate
	if b.Command.set {
		// null resets the command to the droplet's (CF): the empty
		// command is stored.
		u.Command = &b.Command.value
	}
	if b.HealthCheck != nil {
		u.HealthCheckType = b.HealthCheck.Type
		if d := b.HealthCheck.Data; d != nil {
			u.HealthCheckTimeout = d.Timeout
			u.HealthCheckInvocationTimeout = d.InvocationTimeout
			u.HealthCheckEndpoint = d.Endpoint
		}
	}
	return u
}

func (a *API) patchProcess(w http.ResponseWriter, r *http.Request, p pando.Process) error {
	var body processPatchBody
	if err := readJSON(r, &body); err != nil {
		return err
	}
	p, err := a.updateProcess(r.Context(), identityFrom(r.Context()), p, body.update())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.presentProcess(p, a.detectedCommands(r.Context())))
	return nil
}

func (a *API) scaleProcess(w http.ResponseWriter, r *http.Request, p pando.Process) error {
	var body struct {
		Instances    *int `json:"instances"`
		MemoryInMB   *int `json:"memory_in_mb"`
		DiskInMB     *int `json:"disk_in_mb"`
		LogRateLimit *int `json:"log_rate_limit_in_bytes_per_second"`
	}
	if err := a.requireFeature(r.Context(), identityFrom(r.Context()), FlagAppScaling); err != nil {
		return err
	}
	if err := readJSON(r, &body); err != nil {
		return err
	}
	p, err := a.updateProcess(r.Context(), identityFrom(r.Context()), p, processUpdate{
		Instances: body.Instances, MemoryMB: body.MemoryInMB, DiskMB: body.DiskInMB, LogRateLimitBytes: body.LogRateLimit,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, a.presentProcess(p, a.detectedCommands(r.Context())))
	return nil
}

// --- stats ---

// instanceStat is one entry of /v3/processes/:guid/stats.
type instanceStat map[string]any

// processStats builds CF's stats for a process: one entry per desired
// index, from the runtime's actual LRPs and the cells' cgroup figures.
func (a *API) processStats(ctx context.Context, p pando.Process) ([]instanceStat, error) {
	app, err := a.getAppByGUID(ctx, p.AppGUID)
	if err != nil {
		return nil, err
	}
	var actuals []pando.ActualLRP
	desired := 0
	down := false
	if app.State == pando.AppStarted {
		lrp, err := a.rt.DesiredLRP(ctx, p.GUID)
		switch {
		case err == nil:
			desired = lrp.Instances
			if actuals, err = a.rt.ActualLRPs(ctx, p.GUID); err != nil {
				return nil, fmt.Errorf("read instances of process %s: %w", p.GUID, err)
			}
		case !pando.IsNotFound(err):
			return nil, fmt.Errorf("read desired LRP %s: %w", p.GUID, err)
		}
	} else {
		// A stopped app's instances read DOWN, one per desired instance,
		// as CF reports them.
		desired, down = p.Instances, true
	}
	byIndex := map[int]pando.ActualLRP{}
	for _, al := range actuals {
		cur, ok := byIndex[al.Index]
		// Prefer the RUNNING copy when an index has two (replacement in flight).
		if !ok || (cur.State != pando.ActualRunning && al.State == pando.ActualRunning) {
			byIndex[al.Index] = al
		}
	}
	memQuota := int64(p.MemoryMB) << 20
	diskQuota := int64(p.DiskMB) << 20
	now := a.now()
	out := make([]instanceStat, 0, desired)
	for i := 0; i < desired; i++ {
		st := instanceStat{
			"type": p.Type, "index": i, "state": "STARTING", "routable": false,
			"host": "", "uptime": 0, "mem_quota": memQuota, "disk_quota": diskQuota,
			"log_rate_limit": p.LogRateLimitBytes, "fds_quota": 16384, "isolation_segment": nil,
			"details": nil, "instance_ports": []any{},
			"usage": map[string]any{"time": ts(now), "cpu": 0, "mem": 0, "disk": 0, "log_rate": 0, "cpu_entitlement": 0},
		}
		if down {
			st["state"] = "DOWN"
		}
		al, ok := byIndex[i]
		if ok {
			st["instance_guid"] = al.InstanceGUID
			switch al.State {
			case pando.ActualRunning:
				st["state"] = "RUNNING"
				st["routable"] = true
				st["host"] = al.Address
				ports := []any{}
				for _, pm := range al.Ports {
					ports = append(ports, map[string]any{"external": pm.HostPort, "internal": pm.ContainerPort, "external_tls_proxy_port": 0, "internal_tls_proxy_port": 0})
				}
				st["instance_ports"] = ports
				if !al.StartedAt.IsZero() {
					st["uptime"] = int64(now.Sub(al.StartedAt).Seconds())
					// Pando's own: when it started, which (unlike
					// whole-second uptime) reads the same on every call.
					st["pando_started_at"] = ts(al.StartedAt)
				}
				if a.cfg.Stats != nil && al.CellID != "" {
					if s, err := a.cfg.Stats.InstanceStats(ctx, al.CellID, al.InstanceGUID); err == nil {
						st["usage"] = map[string]any{
							"time": ts(now), "cpu": s.CPUPercent / 100, "mem": s.MemoryBytes, "disk": s.DiskBytes,
							"log_rate": s.LogRate, "cpu_entitlement": 0,
						}
					}
				}
			case pando.ActualCrashed:
				st["state"] = "CRASHED"
				st["details"] = nilIfEmpty(crashDescription(al, p.Type))
			default:
				switch {
				case al.PlacementError != "":
					st["state"] = "DOWN"
					st["details"] = al.PlacementError
				case al.Details != "":
					st["details"] = al.Details // e.g. waiting for a start slot
				case al.CrashCount > 0 && (al.Crash != nil || al.CrashReason != ""):
					// Restarting after a crash: say why it went down.
					st["details"] = crashDescription(al, p.Type)
				}
			}
		}
		out = append(out, st)
	}
	return out, nil
}

func (a *API) writeStats(w http.ResponseWriter, stats []instanceStat, hash string) {
	body := map[string]any{"resources": stats}
	if hash != "" {
		body["pando_state_hash"] = hash
	}
	writeJSON(w, http.StatusOK, body)
}

// statsHash summarises the instance states so a waiting client learns of
// a change without comparing usage figures.
func statsHash(stats []instanceStat) string {
	type key struct {
		Index   any `json:"i"`
		State   any `json:"s"`
		Details any `json:"d"`
	}
	keys := make([]key, 0, len(stats))
	for _, s := range stats {
		keys = append(keys, key{s["index"], s["state"], s["details"]})
	}
	sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i].Index) < fmt.Sprint(keys[j].Index) })
	b, _ := json.Marshal(keys)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// waitProcessStats is Pando's long-poll: it answers once the instance
// states differ from `since`, or after `wait`.
func (a *API) waitProcessStats(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	p, err := a.getProcessByGUID(ctx, r.PathValue("guid"))
	if err != nil {
		return err
	}
	wait := parseWait(r.URL.Query().Get("wait"))
	since := r.URL.Query().Get("since")
	deadline := time.Now().Add(wait)
	for {
		// Subscribe before reading, so a change in between wakes us.
		changed := a.processWaiter(p.GUID)
		stats, err := a.processStats(ctx, p)
		if err != nil {
			return err
		}
		h := statsHash(stats)
		left := time.Until(deadline)
		if h != since || left <= 0 {
			a.writeStats(w, stats, h)
			return nil
		}
		// Woken by the runtime's events; the timer is a safety net for
		// changes that reach the API another way.
		t := time.NewTimer(min(left, time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
}

func (a *API) processWaiter(guid string) chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	ch, ok := a.processWaiters[guid]
	if !ok {
		ch = make(chan struct{})
		a.processWaiters[guid] = ch
	}
	return ch
}

// NotifyAllProcesses wakes every long poll (after the runtime's event
// stream lost events).
func (a *API) NotifyAllProcesses() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for guid, ch := range a.processWaiters {
		close(ch)
		delete(a.processWaiters, guid)
	}
}

// NotifyProcessChanged wakes the long polls waiting on a process's
// instances. The server calls it for every runtime event of the process.
func (a *API) NotifyProcessChanged(processGUID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ch, ok := a.processWaiters[processGUID]; ok {
		close(ch)
		delete(a.processWaiters, processGUID)
	}
}

// parseWait reads a wait duration ("30s" or seconds), capped at 60 s.
func parseWait(s string) time.Duration {
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		n, err := strconv.Atoi(s)
		if err != nil {
			return 0
		}
		d = time.Duration(n) * time.Second
	}
	if d > 60*time.Second {
		d = 60 * time.Second
	}
	if d < 0 {
		d = 0
	}
	return d
}
