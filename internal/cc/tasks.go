package cc

// CF tasks (cf run-task): one-off commands run in a container made from an
// app's droplet. The CCDB keeps each task's record, PENDING → RUNNING →
// SUCCEEDED or FAILED (CANCELING in between when cancelled); the runtime
// runs it and reports back through its event stream (FollowRuntime:
// HandleTaskChanged and HandleTaskCompleted).

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pandoplatform/pando"
)

// Task limits and the reasons the API itself gives a task's failure.
const (
	maxTaskNameLen    = 255
	maxTaskCommandLen = 4096
	// TaskInterruptedReason fails tasks a server restart left unfinished:
	// their containers died with the old process.
	TaskInterruptedReason = "task was interrupted by a Pando server restart"
	// TaskCancelledReason is the failure reason of a cancelled task.
	TaskCancelledReason = "task was cancelled"
)

// activeTaskStates are the states of a task that has not finished.
var activeTaskStates = []string{pando.AppTaskPending, pando.AppTaskRunning, pando.AppTaskCanceling}

var allTaskStates = []string{pando.AppTaskPending, pando.AppTaskRunning, pando.AppTaskSucceeded, pando.AppTaskFailed, pando.AppTaskCanceling}

func taskFinished(state string) bool {
	return state == pando.AppTaskSucceeded || state == pando.AppTaskFailed
}

// taskRequest is the body of POST /v3/apps/:guid/tasks.
type taskRequest struct {
	Name        *string `json:"name"`
	Command     *string `json:"command"`
	MemoryInMB  *int    `json:"memory_in_mb"`
	DiskInMB    *int    `json:"disk_in_mb"`
	DropletGUID *string `json:"droplet_guid"`
	Template    any     `json:"template"`
}

func (r taskRequest) validate() error {
	if r.Command == nil || strings.TrimSpace(*r.Command) == "" {
		if r.Template != nil {
			return invalid("Command must be provided: Pando does not run tasks from process templates")
		}
		return invalid("Command must be provided")
	}
	if len(*r.Command) > maxTaskCommandLen {
		return invalid("Command must be at most %d characters", maxTaskCommandLen)
	}
	if strings.ContainsRune(*r.Command, 0) {
		return invalid("Command must not contain NUL characters")
	}
	if r.Name != nil {
		n := *r.Name
		if strings.TrimSpace(n) == "" {
			return invalid("Name must not be empty")
		}
		if len(n) > maxTaskNameLen {
			return invalid("Name must be at most %d characters", maxTaskNameLen)
		}
		if strings.ContainsFunc(n, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
			return invalid("Name must not contain control characters")
		}
	}
	if r.MemoryInMB != nil && (*r.MemoryInMB < 1 || *r.MemoryInMB > maxMemoryMB) {
		return invalid("Memory in mb must be between 1 and %d", maxMemoryMB)
	}
	if r.DiskInMB != nil && (*r.DiskInMB < 1 || *r.DiskInMB > maxDiskMB) {
		return invalid("Disk in mb must be between 1 and %d", maxDiskMB)
	}
	return nil
}

// randomTaskName is CF's default task name: 8 hex digits.
func randomTaskName() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// createTask records a task of app and desires it from the runtime. A task
// the runtime cannot take is recorded FAILED with the reason, not refused:
// the user sees it in `cf tasks` as CF shows it.
func (a *API) createTask(ctx context.Context, id Identity, app pando.App, req taskRequest) (pando.AppTask, error) {
	if err := req.validate(); err != nil {
		return pando.AppTask{}, err
	}
	d, err := a.taskDroplet(ctx, app, req.DropletGUID)
	if err != nil {
		return pando.AppTask{}, err
	}
	name := randomTaskName()
	if req.Name != nil {
		name = *req.Name
	}
	// Limits default to the web process's, which the user already sized.
	memMB, diskMB := a.cfg.DefaultMemoryMB, a.cfg.DefaultDiskMB
	if web, err := a.store.GetProcess(ctx, app.GUID); err == nil {
		memMB, diskMB = web.MemoryMB, web.DiskMB
	}
	if req.MemoryInMB != nil {
		memMB = *req.MemoryInMB
	}
	if req.DiskInMB != nil {
		diskMB = *req.DiskInMB
	}
	now := a.now()
	var task pando.AppTask
	// The quota is checked in the transaction that records the task:
	// concurrent task requests cannot together pass it.
	err = a.inTx(ctx, func(ctx context.Context) error {
		if err := a.checkTaskQuota(ctx, app, memMB); err != nil {
			return err
		}
		var err error
		task, err = a.db(ctx).CreateAppTask(ctx, pando.AppTask{
			GUID: a.newGUID(), AppGUID: app.GUID, Name: name, Command: *req.Command, State: pando.AppTaskPending,
			MemoryMB: memMB, DiskMB: diskMB, DropletGUID: d.GUID, CreatedAt: now, UpdatedAt: now,
		})
		if err != nil {
			return fmt.Errorf("create task of app %s: %w", app.GUID, err)
		}
		return nil
	})
	if err != nil {
		return pando.AppTask{}, err
	}
	// From here the task exists: handing it to the runtime (or failing it)
	// must finish even if the client hangs up.
	ctx = context.WithoutCancel(ctx)
	a.recordAppEvent(ctx, id, "audit.app.task.create", app, map[string]any{
		"task_guid": task.GUID,
		"request": map[string]any{
			"name": task.Name, "command": "[PRIVATE DATA HIDDEN]",
			"memory_in_mb": task.MemoryMB, "disk_in_mb": task.DiskMB, "droplet_guid": task.DropletGUID,
		},
	})
	a.recordTaskUsage(ctx, task, pando.UsageTaskStarted)
	run, err := a.runRequest(ctx, app, task, d)
	if err == nil {
		rt := pando.Task{GUID: task.GUID, Kind: pando.TaskRun, State: pando.TaskPending, Run: run, CreatedAt: now, UpdatedAt: now}
		err = a.rt.DesireTask(ctx, rt)
	}
	if err != nil {
		a.log.Warn("task not started", "task_guid", task.GUID, "app_guid", app.GUID, "err", err)
		a.finishTask(ctx, task.GUID, true, "task could not be started: "+err.Error())
	} else if cur, err := a.rt.Task(ctx, task.GUID); err == nil && cur.State == pando.TaskRunning {
		// The runtime places the task before DesireTask returns: answer
		// RUNNING at once, as CF does, when it took it. (A task already
		// completed, or one the runtime cannot tell of now, answers as
		// recorded; the event stream brings the rest.)
		a.markTaskRunning(ctx, task.GUID)
	}
	task, err = a.store.GetAppTask(ctx, task.GUID)
	if err != nil {
		return pando.AppTask{}, fmt.Errorf("read task: %w", err)
	}
	// A cancel (or the app's deletion) may have come in while the runtime
	// was still taking the task: make sure it does not run anyway.
	if task.State == pando.AppTaskCanceling || task.State == pando.AppTaskFailed {
		_ = a.rt.CancelTask(ctx, task.GUID)
	}
	return task, nil
}

// taskDroplet is the droplet a task runs: the requested one, or the app's
// current one.
func (a *API) taskDroplet(ctx context.Context, app pando.App, requested *string) (pando.Droplet, error) {
	guid := app.DropletGUID
	if requested != nil && *requested != "" {
		guid = *requested
	}
	errNoDroplet := invalid("Task must have a droplet. Assign current droplet to app.")
	if guid == "" {
		return pando.Droplet{}, errNoDroplet
	}
	d, err := a.store.GetDroplet(ctx, guid)
	if err != nil && !pando.IsNotFound(err) {
		return d, fmt.Errorf("read droplet %s: %w", guid, err)
	}
	if err != nil || d.AppGUID != app.GUID || d.State != pando.DropletStaged {
		if guid == app.DropletGUID {
			return d, errNoDroplet
		}
		return d, invalid("Requested droplet is not available: it must be a STAGED droplet of this app")
	}
	return d, nil
}

// runRequest is what the runtime needs to run task: the droplet, the
// app's environment (VCAP_APPLICATION with the task's limits first) and
// the limits.
func (a *API) runRequest(ctx context.Context, app pando.App, task pando.AppTask, d pando.Droplet) (*pando.RunRequest, error) {
	space, err := a.store.GetSpace(ctx, app.SpaceGUID)
	if err != nil {
		return nil, fmt.Errorf("space of app %s: %w", app.GUID, err)
	}
	org, _ := a.store.GetOrg(ctx, space.OrgGUID)
	vcap := a.vcapApplication(ctx, app)
	vcap["limits"] = map[string]any{"mem": task.MemoryMB, "disk": task.DiskMB, "fds": 16384}
	vcapJSON, err := json.Marshal(vcap)
	if err != nil {
		return nil, fmt.Errorf("VCAP_APPLICATION of app %s: %w", app.GUID, err)
	}
	stack := d.Stack
	if stack == "" {
		stack = app.Stack
	}
	vars, err := a.withEnvGroup(ctx, pando.EnvGroupRunning, app.EnvVars)
	if err != nil {
		return nil, err
	}
	env, err := a.withServices(ctx, app.GUID, false, appEnv(pando.App{EnvVars: vars}))
	if err != nil {
		return nil, err
	}
	run := &pando.RunRequest{
		AppGUID: app.GUID, AppName: app.Name, SpaceGUID: space.GUID, SpaceName: space.Name,
		OrgGUID: org.GUID, OrgName: org.Name, Name: task.Name,
		DropletKey: pando.DropletBlobKey(d.GUID), DropletSHA256: d.SHA256, Stack: stack,
		Command: task.Command,
		Env:     append([]pando.EnvVar{{Name: "VCAP_APPLICATION", Value: string(vcapJSON)}}, env...),
		// As the task's env: the app's bindings and features now.
		BindingFiles: bindingFiles(app),
		// Tasks get the operator's default limit (AppTask keeps none of
		// its own), as CF gives them its default_app_log_rate_limit.
		MemoryMB: task.MemoryMB, DiskMB: task.DiskMB, LogRateLimitBytes: a.cfg.DefaultLogRateLimit,
	}
	if d.LifecycleType == pando.LifecycleDocker {
		// The droplet's pinned image, not a droplet blob.
		meta, err := dockerMetadata(d)
		if err != nil {
			return nil, err
		}
		run.DropletKey, run.DropletSHA256, run.Stack = "", "", ""
		run.Image, run.Docker = d.Image, &meta
		if run.ImageCredentials, err = a.imageCredentials(ctx, d); err != nil {
			return nil, err
		}
	}
	return run, nil
}

// updateTask applies fn to the stored task in one transaction, serialised
// with every other task change; fn returns false to leave the task as is.
// It returns the task as it ends up and whether fn changed it.
func (a *API) updateTask(ctx context.Context, guid string, fn func(t *pando.AppTask) bool) (pando.AppTask, bool, error) {
	a.taskMu.Lock()
	defer a.taskMu.Unlock()
	var out pando.AppTask
	changed := false
	err := a.store.InTx(ctx, func(tx pando.Store) error {
		t, err := tx.GetAppTask(ctx, guid)
		if err != nil {
			return err
		}
		out = t
		if !fn(&t) {
			return nil
		}
		t.UpdatedAt = a.now()
		if err := tx.UpdateAppTask(ctx, t); err != nil {
			return err
		}
		out, changed = t, true
		return nil
	})
	if err != nil {
		return out, false, fmt.Errorf("update task %s: %w", guid, err)
	}
	return out, changed, nil
}

// markTaskRunning moves a PENDING task to RUNNING; any other state stays
// (a late event must not undo a completion or a cancel).
func (a *API) markTaskRunning(ctx context.Context, guid string) {
	_, _, err := a.updateTask(ctx, guid, func(t *pando.AppTask) bool {
		if t.State != pando.AppTaskPending {
			return false
		}
		t.State = pando.AppTaskRunning
		return true
	})
	if err != nil && !pando.IsNotFound(err) {
		a.log.Error("mark task running", "task_guid", guid, "err", err)
	}
}

// finishTask records a task's end, once: SUCCEEDED, or FAILED with reason.
func (a *API) finishTask(ctx context.Context, guid string, failed bool, reason string) {
	t, changed, err := a.updateTask(ctx, guid, func(t *pando.AppTask) bool {
		if taskFinished(t.State) {
			return false
		}
		if failed {
			t.State, t.FailureReason = pando.AppTaskFailed, reason
		} else {
			t.State, t.FailureReason = pando.AppTaskSucceeded, ""
		}
		return true
	})
	switch {
	case pando.IsNotFound(err):
		// The app, and its tasks with it, was deleted meanwhile.
		a.log.Debug("task finished after its app was deleted", "task_guid", guid)
	case err != nil:
		a.log.Error("record task end", "task_guid", guid, "err", err)
	case changed:
		a.log.Info("task finished", "task_guid", guid, "app_guid", t.AppGUID, "state", t.State, "reason", t.FailureReason)
		a.recordTaskUsage(ctx, t, pando.UsageTaskStopped)
		a.pruneTasks(ctx, t.AppGUID)
	}
	a.notifyTask(guid)
}

// keepFinishedTasks is how many finished tasks an app keeps (newest
// first); older ones are deleted so the CCDB does not grow without bound.
const keepFinishedTasks = 100

func (a *API) pruneTasks(ctx context.Context, appGUID string) {
	done, err := a.store.ListAppTasks(ctx, []string{appGUID}, []string{pando.AppTaskSucceeded, pando.AppTaskFailed})
	if err != nil || len(done) <= keepFinishedTasks {
		return
	}
	// Oldest first: everything before the newest keepFinishedTasks goes.
	for _, t := range done[:len(done)-keepFinishedTasks] {
		if err := a.store.DeleteAppTask(ctx, t.GUID); err != nil {
			a.log.Warn("prune task", "task_guid", t.GUID, "err", err)
		}
	}
}

// HandleTaskChanged records what the runtime says of a CF task while it
// runs: a task a cell started becomes RUNNING. Completions come through
// HandleTaskCompleted.
func (a *API) HandleTaskChanged(ctx context.Context, t pando.Task) {
	if t.Kind != pando.TaskRun || t.State != pando.TaskRunning {
		return
	}
	a.markTaskRunning(ctx, t.GUID)
}

// handleRunTaskCompleted records a finished CF task.
func (a *API) handleRunTaskCompleted(ctx context.Context, t pando.Task) {
	reason := taskFailureDescription(t)
	if t.Failed && reason == "" {
		reason = "task failed"
	}
	a.finishTask(ctx, t.GUID, t.Failed, reason)
}

// cancelTask asks the runtime to stop a task. The task reads CANCELING
// until the runtime reports it ended (FAILED, "task was cancelled").
func (a *API) cancelTask(ctx context.Context, id Identity, guid string) (pando.AppTask, error) {
	// A cancel, once recorded, must reach the runtime and finish.
	ctx = context.WithoutCancel(ctx)
	task, changed, err := a.updateTask(ctx, guid, func(t *pando.AppTask) bool {
		if taskFinished(t.State) || t.State == pando.AppTaskCanceling {
			return false
		}
		t.State = pando.AppTaskCanceling
		return true
	})
	if err != nil {
		return task, asNotFound(err, "Task")
	}
	if taskFinished(task.State) {
		return task, invalid("Task state is %s and therefore cannot be canceled", task.State)
	}
	if changed {
		if app, err := a.store.GetApp(ctx, task.AppGUID); err == nil {
			a.recordAppEvent(ctx, id, "audit.app.task.cancel", app, map[string]any{
				"task_guid": task.GUID, "request": map[string]any{"name": task.Name},
			})
		}
	}
	// A cancel that fails leaves the task CANCELING; cancelling it again
	// asks the runtime again.
	err = a.rt.CancelTask(context.WithoutCancel(ctx), guid)
	switch {
	case pando.IsNotFound(err):
		// The runtime no longer knows it: nothing runs, so it is over.
		a.finishTask(ctx, guid, true, TaskCancelledReason)
	case err != nil:
		return task, fmt.Errorf("cancel task %s: %w", guid, err)
	}
	task, err = a.store.GetAppTask(ctx, guid)
	if err != nil {
		return task, asNotFound(err, "Task")
	}
	return task, nil
}

// cancelAppTasks stops the unfinished tasks of an app being deleted.
func (a *API) cancelAppTasks(ctx context.Context, appGUID string) {
	tasks, err := a.store.ListAppTasks(ctx, []string{appGUID}, activeTaskStates)
	if err != nil {
		a.log.Warn("list tasks of deleted app", "app_guid", appGUID, "err", err)
		return
	}
	for _, t := range tasks {
		if err := a.rt.CancelTask(ctx, t.GUID); err != nil && !pando.IsNotFound(err) {
			a.log.Warn("cancel task of deleted app", "task_guid", t.GUID, "err", err)
		}
	}
}

// failInterruptedTasks ends the tasks a server restart left unfinished
// that the runtime does not hold: the cell that ran them is gone, or did
// not claim them after the restart.
func (a *API) failInterruptedTasks(ctx context.Context) error {
	tasks, err := a.store.ListAppTasks(ctx, nil, activeTaskStates)
	if err != nil {
		return fmt.Errorf("restore: list tasks: %w", err)
	}
	for _, t := range tasks {
		held, err := a.runtimeHolds(ctx, t.GUID)
		if err != nil {
			return err
		}
		switch {
		case held && t.State == pando.AppTaskCanceling:
			// Adopted from a cell after a restart: the cancel goes on.
			if err := a.rt.CancelTask(ctx, t.GUID); err != nil && !pando.IsNotFound(err) {
				a.log.Warn("cancel task after a restart", "task_guid", t.GUID, "err", err)
			}
		case held:
			a.log.Info("task still running on a cell after the restart", "task_guid", t.GUID)
		case t.State == pando.AppTaskCanceling:
			a.finishTask(ctx, t.GUID, true, TaskCancelledReason)
		default:
			a.finishTask(ctx, t.GUID, true, TaskInterruptedReason)
		}
	}
	return nil
}

func (a *API) taskWaiter(guid string) chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	ch, ok := a.taskWaiters[guid]
	if !ok {
		ch = make(chan struct{})
		a.taskWaiters[guid] = ch
	}
	return ch
}

func (a *API) notifyTask(guid string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ch, ok := a.taskWaiters[guid]; ok {
		close(ch)
		delete(a.taskWaiters, guid)
	}
}

// --- presentation ---

// taskCommandShown says, per app, whether the caller may see its tasks'
// commands: as on CF, the command is left out for users who are not space
// developers there (or admins and admin read-only), since it often carries
// secrets. Answers are remembered for one request.
func (a *API) taskCommandShown(ctx context.Context) func(appGUID string) bool {
	p := permsFrom(ctx)
	if p.envAll {
		return func(string) bool { return true }
	}
	seen := map[string]bool{}
	return func(appGUID string) bool {
		if v, ok := seen[appGUID]; ok {
			return v
		}
		t, err := a.resolve(ctx, "app", appGUID)
		v := err == nil && p.spaceRoles[t.space][pando.RoleSpaceDeveloper]
		seen[appGUID] = v
		return v
	}
}

func (a *API) presentTask(ctx context.Context, t pando.AppTask) map[string]any {
	return a.presentTaskFor(t, a.taskCommandShown(ctx))
}

func (a *API) presentTaskFor(t pando.AppTask, shown func(appGUID string) bool) map[string]any {
	m := map[string]any{
		"guid":                               t.GUID,
		"sequence_id":                        t.SequenceID,
		"name":                               t.Name,
		"command":                            t.Command,
		"state":                              t.State,
		"memory_in_mb":                       t.MemoryMB,
		"disk_in_mb":                         t.DiskMB,
		"log_rate_limit_in_bytes_per_second": a.cfg.DefaultLogRateLimit,
		"result":                             map[string]any{"failure_reason": nilIfEmpty(t.FailureReason)},
		"droplet_guid":                       t.DropletGUID,
		"user":                               nil,
		"created_at":                         ts(t.CreatedAt),
		"updated_at":                         ts(t.UpdatedAt),
		"relationships":                      map[string]any{"app": rel(t.AppGUID)},
		"metadata":                           metadata(),
		"links": map[string]any{
			"self":    link(a.url("/v3/tasks/%s", t.GUID)),
			"app":     link(a.url("/v3/apps/%s", t.AppGUID)),
			"cancel":  map[string]any{"href": a.url("/v3/tasks/%s/actions/cancel", t.GUID), "method": "POST"},
			"droplet": link(a.url("/v3/droplets/%s", t.DropletGUID)),
		},
	}
	if !shown(t.AppGUID) {
		delete(m, "command")
	}
	return m
}

// --- handlers ---

func (a *API) postAppTask(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	app, err := a.getAppByGUID(ctx, r.PathValue("guid"))
	if err != nil {
		return err
	}
	if err := a.requireFeature(ctx, identityFrom(ctx), FlagTaskCreation); err != nil {
		return err
	}
	var body taskRequest
	if err := readJSON(r, &body); err != nil {
		return err
	}
	task, err := a.createTask(ctx, identityFrom(ctx), app, body)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, a.presentTask(ctx, task))
	return nil
}

func (a *API) listAppTasks(w http.ResponseWriter, r *http.Request) error {
	app, err := a.getAppByGUID(r.Context(), r.PathValue("guid"))
	if err != nil {
		return err
	}
	tasks, err := a.queryTasks(r, []string{app.GUID})
	if err != nil {
		return err
	}
	a.paginateTasks(w, r, tasks)
	return nil
}

func (a *API) listTasks(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	q := r.URL.Query()
	appGUIDs := splitList(q, "app_guids")
	spaces, orgs := splitList(q, "space_guids"), splitList(q, "organization_guids")
	if len(spaces) > 0 || len(orgs) > 0 {
		if len(orgs) > 0 {
			ss, err := a.store.ListSpaces(ctx, nil, nil, orgs)
			if err != nil {
				return err
			}
			inOrgs := make([]string, 0, len(ss))
			for _, s := range ss {
				if len(spaces) == 0 || contains(spaces, s.GUID) {
					inOrgs = append(inOrgs, s.GUID)
				}
			}
			spaces = inOrgs
		}
		var apps []pando.App
		if len(spaces) > 0 {
			var err error
			if apps, err = a.store.ListApps(ctx, pando.AppFilter{GUIDs: appGUIDs, SpaceGUIDs: spaces}); err != nil {
				return err
			}
		}
		appGUIDs = make([]string, 0, len(apps))
		for _, app := range apps {
			appGUIDs = append(appGUIDs, app.GUID)
		}
		if len(appGUIDs) == 0 {
			a.paginateTasks(w, r, nil)
			return nil
		}
	}
	tasks, err := a.queryTasks(r, appGUIDs)
	if err != nil {
		return err
	}
	a.paginateTasks(w, r, tasks)
	return nil
}

// queryTasks lists the tasks of appGUIDs (all apps when empty) that match
// the request's guids, names, states and sequence_ids filters.
func (a *API) queryTasks(r *http.Request, appGUIDs []string) ([]pando.AppTask, error) {
	q := r.URL.Query()
	states := splitList(q, "states")
	for _, s := range states {
		if !slices.Contains(allTaskStates, s) {
			return nil, badQuery("The query parameter is invalid: States must be one of %s", strings.Join(allTaskStates, ", "))
		}
	}
	var seqs []int
	for _, s := range splitList(q, "sequence_ids") {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return nil, badQuery("The query parameter is invalid: Sequence ids must be positive integers")
		}
		seqs = append(seqs, n)
	}
	guids, names := splitList(q, "guids"), splitList(q, "names")
	tasks, err := a.store.ListAppTasks(r.Context(), appGUIDs, states)
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	return slices.DeleteFunc(tasks, func(t pando.AppTask) bool {
		return (len(guids) > 0 && !contains(guids, t.GUID)) ||
			(len(names) > 0 && !contains(names, t.Name)) ||
			(len(seqs) > 0 && !slices.Contains(seqs, t.SequenceID))
	}), nil
}

func (a *API) paginateTasks(w http.ResponseWriter, r *http.Request, tasks []pando.AppTask) {
	tasks = visibleByApp(r.Context(), a, tasks, func(t pando.AppTask) string { return t.AppGUID })
	shown := a.taskCommandShown(r.Context())
	paginate(a, w, r, tasks, func(t pando.AppTask) sortable {
		return sortable{name: t.Name, createdAt: t.CreatedAt, updatedAt: t.UpdatedAt}
	}, func(t pando.AppTask) any { return a.presentTaskFor(t, shown) })
}

func (a *API) getTaskByGUID(ctx context.Context, guid string) (pando.AppTask, error) {
	t, err := a.store.GetAppTask(ctx, guid)
	if err != nil {
		return t, asNotFound(err, "Task")
	}
	return t, nil
}

func (a *API) getTask(w http.ResponseWriter, r *http.Request) error {
	t, err := a.getTaskByGUID(r.Context(), r.PathValue("guid"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.presentTask(r.Context(), t))
	return nil
}

func (a *API) cancelTaskHandler(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	t, err := a.cancelTask(ctx, identityFrom(ctx), r.PathValue("guid"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, a.presentTask(r.Context(), t))
	return nil
}

// waitTask is Pando's long-poll for a task (`pando run-task --wait`): it
// answers as soon as the task has finished, or after `wait`.
func (a *API) waitTask(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	guid := r.PathValue("guid")
	t, err := a.getTaskByGUID(ctx, guid)
	if err != nil {
		return err
	}
	if wait := parseWait(r.URL.Query().Get("wait")); wait > 0 && !taskFinished(t.State) {
		ch := a.taskWaiter(guid)
		// Re-read after subscribing so an end in between is seen.
		if t, err = a.getTaskByGUID(ctx, guid); err != nil {
			return err
		}
		if !taskFinished(t.State) {
			timer := time.NewTimer(wait)
			select {
			case <-ch:
			case <-timer.C:
			case <-ctx.Done():
			}
			timer.Stop()
			if t, err = a.getTaskByGUID(ctx, guid); err != nil {
				return err
			}
		}
	}
	writeJSON(w, http.StatusOK, a.presentTask(r.Context(), t))
	return nil
}
