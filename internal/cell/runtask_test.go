package cell

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
)

func TestTaskEnv_isAnInstancesWithoutPortsOrIndex(t *testing.T) {
	r := &Rep{cfg: Config{HostAddr: "10.0.0.5"}}
	run := pando.RunRequest{
		AppGUID: "app", AppName: "myapp", SpaceGUID: "sp", SpaceName: "dev", OrgGUID: "org", OrgName: "acme",
		Name: "migrate",
		Env: []pando.EnvVar{{Name: "FOO", Value: "bar"}, {Name: "MEMORY_LIMIT", Value: "1m"},
			{Name: "VCAP_SERVICES", Value: `{"db":[]}`}},
	}
	env := envMap(r.taskEnv(run, "task-guid", 256, 512))
	for _, k := range []string{"PORT", "CF_INSTANCE_PORT", "CF_INSTANCE_PORTS", "CF_INSTANCE_ADDR", "CF_INSTANCE_INDEX", "INSTANCE_INDEX", "HOME"} {
		if v, ok := env[k]; ok {
			t.Errorf("task env has %s=%q", k, v)
		}
	}
	for k, v := range map[string]string{
		"MEMORY_LIMIT": "256m", "VCAP_SERVICES": `{"db":[]}`, "FOO": "bar", "LANG": "en_US.UTF-8",
		"CF_INSTANCE_GUID": "task-guid", "CF_INSTANCE_IP": "10.0.0.5",
	} {
		if env[k] != v {
			t.Errorf("%s=%q, want %q", k, env[k], v)
		}
	}
	var va map[string]any
	if err := json.Unmarshal([]byte(env["VCAP_APPLICATION"]), &va); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{"application_id": "app", "application_name": "myapp", "name": "myapp",
		"space_id": "sp", "space_name": "dev", "organization_id": "org", "organization_name": "acme"} {
		if va[k] != v {
			t.Errorf("VCAP_APPLICATION.%s = %v, want %v", k, va[k], v)
		}
	}
	for _, k := range []string{"port", "host", "instance_id", "instance_index"} {
		if _, ok := va[k]; ok {
			t.Errorf("VCAP_APPLICATION has %s", k)
		}
	}
	if lim := va["limits"].(map[string]any); lim["mem"] != 256.0 || lim["disk"] != 512.0 {
		t.Errorf("limits %v", lim)
	}

	// The API's own VCAP_APPLICATION (with routes) is kept, limits and
	// instance fields made the task's.
	run.Env = []pando.EnvVar{{Name: "VCAP_APPLICATION",
		Value: `{"application_name":"myapp","application_uris":["myapp.localhost"],"port":8080,"instance_index":1,"limits":{"mem":1}}`}}
	env = envMap(r.taskEnv(run, "task-guid", 256, 512))
	va = nil
	if err := json.Unmarshal([]byte(env["VCAP_APPLICATION"]), &va); err != nil {
		t.Fatal(err)
	}
	if uris, _ := va["application_uris"].([]any); len(uris) != 1 || va["port"] != nil || va["instance_index"] != nil ||
		va["application_id"] != "app" || va["limits"].(map[string]any)["mem"] != 256.0 {
		t.Errorf("VCAP_APPLICATION %s", env["VCAP_APPLICATION"])
	}
}

// cfTask is a CF task running cmd in a droplet holding app/hello.txt.
func (c *runcCell) cfTask(t *testing.T, guid, name, cmd string) pando.Task {
	t.Helper()
	b, sum := dropletOf(t, map[string]string{"hello.txt": "droplet"})
	key := pando.DropletBlobKey("d-" + guid)
	c.put(t, key, b)
	return pando.Task{GUID: guid, Kind: pando.TaskRun, Run: &pando.RunRequest{
		AppGUID: "app-" + guid, AppName: "myapp", SpaceName: "dev", OrgName: "acme",
		Name: name, DropletKey: key, DropletSHA256: sum, Command: cmd,
		MemoryMB: 128, DiskMB: 256, LogRateLimitBytes: -1, Env: []pando.EnvVar{{Name: "GREETING", Value: "hello"}},
	}}
}

func (c *runcCell) noTaskLeft(t *testing.T) {
	t.Helper()
	if ids := c.backend.liveIDs(); len(ids) > 0 {
		t.Errorf("containers left: %v", ids)
	}
	if ents, _ := os.ReadDir(filepath.Join(c.workDir, dirTasks)); len(ents) > 0 {
		t.Errorf("task dirs left: %d", len(ents))
	}
	c.noVolumeLeft(t)
	if st, _ := c.rep.State(context.Background()); st.UsedContainers != 0 || st.UsedMemoryMB != 0 || st.UsedDiskMB != 0 {
		t.Errorf("state after the task %+v", st)
	}
}

func TestRunTask_runsTheCommandInTheDropletAndCompletes(t *testing.T) {
	c := newRuncCell(t, nil)
	task := c.cfTask(t, "task-ok", "migrate",
		`echo "$GREETING from $(cat hello.txt) in $PWD"; echo "port=${PORT:-none} index=${CF_INSTANCE_INDEX:-none} mem=$MEMORY_LIMIT uid=$(id -u) droplet=$(stat -c %u:%g hello.txt)"; echo "app=$VCAP_APPLICATION"; echo warn >&2`)
	if err := c.rep.RunTask(context.Background(), task); err != nil {
		t.Fatal(err)
	}
	done := c.rec.wait(t, 30*time.Second, "task result", isTask("task-ok")).task
	if done.Failed || done.State != pando.TaskCompleted || done.CellID != "cell-test" || done.Run == nil {
		t.Fatalf("task %+v\nlogs:\n%s", done, c.logs.dump())
	}
	src := "APP/TASK/migrate"
	out := c.logs.wait(t, time.Second, src, "hello from droplet in /home/vcap/app")
	if out.SourceID != "app-task-ok" || out.InstanceID != "0" || out.Type != "OUT" {
		t.Errorf("task line %+v", out)
	}
	c.logs.wait(t, time.Second, src, "port=none index=none mem=128m uid=2000 droplet=2000:2000")
	c.logs.wait(t, time.Second, src, `"application_name":"myapp"`)
	if e := c.logs.wait(t, time.Second, src, "warn"); e.Type != "ERR" {
		t.Errorf("stderr line %+v", e)
	}
	c.logs.wait(t, time.Second, src, "Exit status 0")
	for _, msg := range []string{
		"Cell cell-test creating container for task task-ok",
		"Cell cell-test successfully created container for task task-ok",
		"Cell cell-test destroying container for task task-ok",
		"Cell cell-test successfully destroyed container for task task-ok",
	} {
		if l := c.logs.wait(t, time.Second, pando.LogSourceCell, msg); l.SourceID != "app-task-ok" || l.InstanceID != "0" {
			t.Errorf("cell line %+v", l)
		}
	}
	c.noTaskLeft(t)
}

func TestRunTask_failuresSayWhy(t *testing.T) {
	c := newRuncCell(t, nil)
	cases := []struct {
		name, cmd string
		memMB     int
		diskMB    int
		want      pando.Failure
	}{
		{"fail", "echo bad >&2; exit 3", 128, 256, pando.Failure{Kind: pando.FailureExited, ExitCode: 3}},
		{"oom", "dd if=/dev/zero of=/dev/null bs=200M count=1", 32, 256, pando.Failure{Kind: pando.FailureOOM, ExitCode: 137}},
		{"disk", "head -c 30000000 /dev/zero > big", 128, 16, pando.Failure{Kind: pando.FailureDiskFull, ExitCode: 1, LimitMB: 16}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			guid := "task-" + tc.name
			task := c.cfTask(t, guid, tc.name, tc.cmd)
			task.Run.MemoryMB, task.Run.DiskMB = tc.memMB, tc.diskMB
			if err := c.rep.RunTask(context.Background(), task); err != nil {
				t.Fatal(err)
			}
			done := c.rec.wait(t, 30*time.Second, "task result", isTask(guid)).task
			if done.State != pando.TaskCompleted {
				t.Errorf("state %s", done.State)
			}
			wantTaskFailure(t, done, tc.want)
			c.noTaskLeft(t)
		})
	}
	c.logs.wait(t, time.Second, "APP/TASK/fail", "Exit status 3")
	c.logs.wait(t, time.Second, pando.LogSourceCell, "task task-oom was killed: out of memory (limit 32 MB)")
	c.logs.wait(t, time.Second, "APP/TASK/disk", "No space left on device")
	c.logs.wait(t, time.Second, pando.LogSourceCell, "task task-disk exited with its disk full (quota 16 MB)")
}

func TestRunTask_logRateLimit(t *testing.T) {
	c := newRuncCell(t, nil)
	task := c.cfTask(t, "task-chatty", "chatty", "for i in $(seq 200); do echo line-$i; done")
	task.Run.LogRateLimitBytes = 64
	if err := c.rep.RunTask(context.Background(), task); err != nil {
		t.Fatal(err)
	}
	if done := c.rec.wait(t, 30*time.Second, "task result", isTask("task-chatty")).task; done.Failed {
		t.Fatalf("task failed: %s", done.FailureReason)
	}
	c.logs.wait(t, time.Second, "APP/TASK/chatty", "exceeded log rate limit (64 bytes/sec)")
	c.logs.mu.Lock()
	n := 0
	for _, l := range c.logs.lines {
		if l.SourceType == "APP/TASK/chatty" && strings.HasPrefix(string(l.Payload), "line-") {
			n++
		}
	}
	c.logs.mu.Unlock()
	if n == 0 || n >= 200 {
		t.Errorf("%d of 200 lines passed a 64 bytes/s limit", n)
	}
}

func TestRunTask_cancelStopsItAndReleasesItsResources(t *testing.T) {
	c := newRuncCell(t, func(cfg *Config) { cfg.StopGrace = time.Second })
	ctx := context.Background()
	if err := c.rep.RunTask(ctx, c.cfTask(t, "task-slow", "slow", "echo waiting; sleep 3600")); err != nil {
		t.Fatal(err)
	}
	// Reserved from the moment it is accepted.
	if st, _ := c.rep.State(ctx); st.UsedContainers != 1 || st.UsedMemoryMB != 128 || st.UsedDiskMB != 256 {
		t.Errorf("state while running %+v", st)
	}
	c.logs.wait(t, 30*time.Second, "APP/TASK/slow", "waiting")
	c.logs.wait(t, 30*time.Second, pando.LogSourceCell, "successfully created container for task task-slow")
	if st, _ := c.rep.State(ctx); st.UsedContainers != 1 || st.UsedMemoryMB != 128 {
		t.Errorf("state while running %+v", st)
	}
	if err := c.rep.CancelTask(ctx, "task-slow"); err != nil {
		t.Fatal(err)
	}
	// The task ends long before its hour of sleep: the cancel ended it.
	done := c.rec.wait(t, 60*time.Second, "task result", isTask("task-slow")).task
	wantTaskFailure(t, done, pando.Failure{Kind: pando.FailureCancelled})
	// sleep is the container's PID 1 (bash execs it) and ignores SIGTERM:
	// the stop, given the cell's grace, ended it with the SIGKILL after.
	var stops []stopCall
	for _, s := range c.backend.stopCalls() {
		if s.id == containerID("task", "task-slow") {
			stops = append(stops, s)
		}
	}
	if len(stops) != 1 || stops[0].grace != time.Second || stops[0].err != nil ||
		stops[0].status.Code != 128+int(syscall.SIGKILL) || !stops[0].status.Signaled {
		t.Errorf("stops %+v, want one with the 1s grace that ended the task by SIGKILL (exit 137)", stops)
	}
	c.logs.wait(t, time.Second, pando.LogSourceCell, "Cell cell-test stopping task task-slow")
	c.noTaskLeft(t)
	if err := c.rep.CancelTask(ctx, "task-slow"); !pando.IsNotFound(err) {
		t.Errorf("second cancel: %v", err)
	}
}

func TestRunTask_shutdownStopsRunningTasks(t *testing.T) {
	c := newRuncCell(t, nil)
	cmd := `trap 'echo got TERM; exit 0' TERM; echo waiting; sleep 30 & wait`
	if err := c.rep.RunTask(context.Background(), c.cfTask(t, "task-sd", "sd", cmd)); err != nil {
		t.Fatal(err)
	}
	c.logs.wait(t, 30*time.Second, "APP/TASK/sd", "waiting")
	c.logs.wait(t, 30*time.Second, pando.LogSourceCell, "successfully created container for task task-sd")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.rep.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	done := c.rec.wait(t, time.Second, "task result", isTask("task-sd")).task
	wantTaskFailure(t, done, pando.Failure{Kind: pando.FailureCellShutdown})
	if done.CellID != "cell-test" {
		t.Errorf("cell %q, want cell-test (the API names it)", done.CellID)
	}
	c.logs.wait(t, time.Second, "APP/TASK/sd", "got TERM") // SIGTERM first
	c.noTaskLeft(t)
}

func TestRunTask_refusesWhatItCannotRun(t *testing.T) {
	c := newRuncCell(t, func(cfg *Config) { cfg.TotalMemoryMB = 100 })
	ctx := context.Background()
	task := func(mod func(*pando.RunRequest)) pando.Task {
		tk := pando.Task{GUID: "t", Kind: pando.TaskRun, Run: &pando.RunRequest{
			Name: "x", DropletKey: "k", Command: "true", MemoryMB: 64, DiskMB: 64}}
		if mod != nil {
			mod(tk.Run)
		}
		return tk
	}
	cases := []struct {
		name string
		task pando.Task
		kind pando.ErrorKind
	}{
		{"too big", task(func(r *pando.RunRequest) { r.MemoryMB = 200 }), pando.EInsufficient},
		{"unknown stack", task(func(r *pando.RunRequest) { r.Stack = "cflinuxfs4" }), pando.EInvalid},
		{"no droplet", task(func(r *pando.RunRequest) { r.DropletKey = "" }), pando.EInvalid},
		{"no command", task(func(r *pando.RunRequest) { r.Command = " " }), pando.EInvalid},
		{"no request", pando.Task{GUID: "t", Kind: pando.TaskRun}, pando.EInvalid},
		{"unknown kind", pando.Task{GUID: "t", Kind: "mystery"}, pando.EInvalid},
	}
	for _, tc := range cases {
		if err := c.rep.RunTask(ctx, tc.task); pando.ErrorKindOf(err) != tc.kind {
			t.Errorf("%s: got %v, want kind %v", tc.name, err, tc.kind)
		}
	}
	if st, _ := c.rep.State(ctx); st.UsedContainers != 0 {
		t.Errorf("state %+v", st)
	}
}
