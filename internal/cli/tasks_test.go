package cli

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeTasks adds CF tasks to fakeCF: create, list (with sequence_ids),
// cancel, Pando's task long-poll and a task's log stream, shaped like
// shared/cf-traces 23 and 24.
type fakeTasks struct {
	f *fakeCF

	mu      sync.Mutex
	tasks   []map[string]any
	bodies  []map[string]any
	cancels []string
	streams []string // source_types of each log stream opened

	// A task created runs until its lines were streamed, then ends in
	// endState with reason; lastLine comes after the end was answered.
	lines    []string
	lastLine string
	endState string
	reason   string

	created  chan string // the new task's name
	streamed chan struct{}
	answered chan struct{}
	once     sync.Once
}

func newFakeTasks(f *fakeCF) *fakeTasks {
	ft := &fakeTasks{f: f, endState: "SUCCEEDED", created: make(chan string, 1), streamed: make(chan struct{}), answered: make(chan struct{})}
	f.mu.Lock()
	f.appExists = true
	f.extra = ft.serve
	f.mu.Unlock()
	return ft
}

func (ft *fakeTasks) add(name, state, command string, created time.Time) map[string]any {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	seq := len(ft.tasks) + 1
	guid := fmt.Sprintf("8ead5d32-ed94-424d-82b3-%012d", seq)
	t := map[string]any{
		"guid": guid, "sequence_id": seq, "name": name, "command": command, "state": state,
		"memory_in_mb": 512, "disk_in_mb": 1024, "droplet_guid": dropGUID,
		"result":     map[string]any{"failure_reason": nil},
		"created_at": created.UTC().Format(time.RFC3339), "updated_at": created.UTC().Format(time.RFC3339),
		"links": map[string]any{"cancel": map[string]any{"href": ft.f.url() + "/v3/tasks/" + guid + "/actions/cancel", "method": "POST"}},
	}
	ft.tasks = append(ft.tasks, t)
	return t
}

// snapshot copies what the fake recorded (bodies, streams, cancels).
func (ft *fakeTasks) snapshot() (bodies []map[string]any, streams, cancels []string) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return slices.Clone(ft.bodies), slices.Clone(ft.streams), slices.Clone(ft.cancels)
}

func (ft *fakeTasks) byGUID(guid string) map[string]any {
	for _, t := range ft.tasks {
		if t["guid"] == guid {
			return t
		}
	}
	return nil
}

func (ft *fakeTasks) serve(w http.ResponseWriter, r *http.Request) bool {
	p := r.URL.Path
	switch {
	case r.Method == "POST" && p == "/v3/apps/"+appGUID+"/tasks":
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			ft.f.t.Errorf("create task body: %v", err)
		}
		name, _ := body["name"].(string)
		if name == "" {
			name = "c0ffee00"
		}
		t := ft.add(name, "RUNNING", body["command"].(string), time.Date(2026, 11, 26, 3, 27, 6, 0, time.UTC))
		ft.mu.Lock()
		ft.bodies = append(ft.bodies, body)
		ft.mu.Unlock()
		select {
		case ft.created <- name:
		default:
		}
		ft.f.writeJSON(w, http.StatusAccepted, t)
	case r.Method == "GET" && p == "/v3/apps/"+appGUID+"/tasks":
		ft.mu.Lock()
		items := []any{}
		seqs := r.URL.Query().Get("sequence_ids")
		for _, t := range ft.tasks {
			if seqs == "" || seqs == strconv.Itoa(t["sequence_id"].(int)) {
				items = append(items, t)
			}
		}
		ft.mu.Unlock()
		ft.f.writeJSON(w, 200, ft.f.list(items...))
	case r.Method == "POST" && strings.HasPrefix(p, "/v3/tasks/") && strings.HasSuffix(p, "/actions/cancel"):
		guid := strings.TrimSuffix(strings.TrimPrefix(p, "/v3/tasks/"), "/actions/cancel")
		ft.mu.Lock()
		defer ft.mu.Unlock()
		t := ft.byGUID(guid)
		switch {
		case t == nil:
			ft.f.cfError(w, 404, 10010, "CF-ResourceNotFound", "Task not found")
		case t["state"] == "SUCCEEDED" || t["state"] == "FAILED":
			ft.f.cfError(w, 422, 10008, "CF-UnprocessableEntity", fmt.Sprintf("Task state is %s and therefore cannot be canceled", t["state"]))
		default:
			ft.cancels = append(ft.cancels, guid)
			t["state"] = "CANCELING"
			ft.f.writeJSON(w, http.StatusAccepted, t)
		}
	case r.Method == "GET" && strings.HasPrefix(p, "/pando/v1/tasks/"):
		select {
		case <-ft.streamed:
		case <-r.Context().Done():
			return true
		}
		ft.mu.Lock()
		t := ft.byGUID(strings.TrimPrefix(p, "/pando/v1/tasks/"))
		if t != nil {
			t["state"] = ft.endState
			if ft.reason != "" {
				t["result"] = map[string]any{"failure_reason": strings.ReplaceAll(ft.reason, "{name}", t["name"].(string))}
			}
		}
		ft.mu.Unlock()
		if t == nil {
			ft.f.cfError(w, 404, 10010, "CF-ResourceNotFound", "Task not found")
			return true
		}
		ft.f.writeJSON(w, 200, t)
		w.(http.Flusher).Flush()
		ft.once.Do(func() { close(ft.answered) })
	case r.Method == "GET" && p == "/pando/v1/logs/"+appGUID+"/stream" && strings.HasPrefix(r.URL.Query().Get("source_types"), "APP/TASK"):
		ft.serveStream(w, r)
	case r.Method == "GET" && p == "/api/v1/read/"+appGUID && r.URL.Query().Get("descending") == "true":
		ft.serveRead(w)
	default:
		return false
	}
	return true
}

// serveStream sends the task's lines (and one of another task, which the
// CLI must leave out) once the task exists, then its last line after the
// end was answered; the stream stays open.
func (ft *fakeTasks) serveStream(w http.ResponseWriter, r *http.Request) {
	ft.mu.Lock()
	ft.streams = append(ft.streams, r.URL.Query().Get("source_types"))
	ft.mu.Unlock()
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(200)
	fl := w.(http.Flusher)
	fl.Flush()
	var name string
	select {
	case name = <-ft.created:
	case <-r.Context().Done():
		return
	}
	n := 0
	send := func(source, line string) {
		n++
		ev, _ := json.Marshal(map[string]any{"timestamp": 1795663626000000000 + int64(n), "source_type": source, "instance_id": "0", "type": "OUT", "payload": line})
		fmt.Fprintf(w, "data: %s\n\n", ev)
		fl.Flush()
	}
	for i, l := range ft.lines {
		send("APP/TASK/"+name, l)
		if i == 0 {
			send("APP/TASK/"+name+"/other", "a line of another task")
		}
	}
	close(ft.streamed)
	if ft.lastLine != "" {
		select {
		case <-ft.answered:
		case <-r.Context().Done():
			return
		}
		send("APP/TASK/"+name, ft.lastLine)
	}
	<-r.Context().Done()
}

// serveRead answers the log-cache read with the task's lines as the log
// store holds them once the task's end was answered (none before).
func (ft *fakeTasks) serveRead(w http.ResponseWriter) {
	batch := []any{}
	ft.mu.Lock()
	name := ""
	if len(ft.bodies) > 0 {
		name, _ = ft.bodies[len(ft.bodies)-1]["name"].(string)
	}
	ft.mu.Unlock()
	select {
	case <-ft.answered:
	default:
		name = ""
	}
	if name != "" {
		lines := ft.lines
		if ft.lastLine != "" {
			lines = append(slices.Clone(lines), ft.lastLine)
		}
		n := 0
		add := func(source, line string) {
			n++
			batch = append(batch, map[string]any{
				"timestamp": strconv.FormatInt(1795663626000000000+int64(n), 10), "source_id": appGUID, "instance_id": "0",
				"tags": map[string]any{"source_type": source},
				"log":  map[string]any{"payload": base64.StdEncoding.EncodeToString([]byte(line)), "type": "OUT"},
			})
		}
		for i, l := range lines {
			add("APP/TASK/"+name, l)
			if i == 0 {
				add("APP/TASK/"+name+"/other", "a line of another task")
			}
		}
		slices.Reverse(batch) // newest first: the CLI asks for descending
	}
	ft.f.writeJSON(w, 200, map[string]any{"envelopes": map[string]any{"batch": batch}})
}

func TestRunTask_submitsTheTaskAndPrintsItsIDLikeCF(t *testing.T) {
	f := newFakeCF(t)
	ft := newFakeTasks(f)
	h := newHarness(t)
	h.loggedIn(f, time.Hour)
	if err := h.run("run-task", "myapp", "--command", "echo hi", "--name", "t1", "-m", "512M", "-k", "1G"); err != nil {
		t.Fatalf("run-task: %v\nstderr: %s", err, h.err)
	}
	want := "Creating task for app myapp in org myorg / space dev as admin...\n" +
		"Task has been submitted successfully for execution.\nOK\n\ntask name:   t1\ntask id:     1\n"
	if h.out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", h.out, want)
	}
	bodies, streams, _ := ft.snapshot()
	if len(bodies) != 1 || !mapsEqual(bodies[0], map[string]any{"command": "echo hi", "name": "t1", "memory_in_mb": 512.0, "disk_in_mb": 1024.0}) {
		t.Errorf("create bodies = %v", bodies)
	}
	if len(streams) != 0 {
		t.Errorf("run-task without --wait opened a log stream")
	}

	// The server names a task without --name; cf v6's positional command.
	if err := h.run("run-task", "myapp", "rake db:migrate"); err != nil {
		t.Fatalf("run-task: %v", err)
	}
	bodies, _, _ = ft.snapshot()
	if _, named := bodies[1]["name"]; named || bodies[1]["command"] != "rake db:migrate" {
		t.Errorf("second body = %v, want the command and no name", bodies[1])
	}
	if !strings.Contains(h.out.String(), "task name:   c0ffee00\ntask id:     2\n") {
		t.Errorf("output lacks the server's name and id:\n%s", h.out)
	}
}

func mapsEqual(a, b map[string]any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func TestRunTask_refusesBadInput(t *testing.T) {
	f := newFakeCF(t)
	ft := newFakeTasks(f)
	h := newHarness(t)
	h.loggedIn(f, time.Hour)
	for _, args := range [][]string{
		{"run-task", "myapp"},
		{"run-task", "myapp", "--command", " "},
		{"run-task", "myapp", "--command", "x", "-m", "lots"},
		{"run-task", "nope", "--command", "x"},
	} {
		if err := h.run(args...); err == nil {
			t.Errorf("%v succeeded", args)
		}
	}
	if bodies, _, _ := ft.snapshot(); len(bodies) != 0 {
		t.Errorf("bad input created tasks: %v", bodies)
	}
}

func TestRunTask_waitShowsTheOutputUntilTheTaskSucceeds(t *testing.T) {
	f := newFakeCF(t)
	ft := newFakeTasks(f)
	ft.lines = []string{"migrating...", "done 3 tables"}
	ft.lastLine = "bye"
	h := newHarness(t)
	h.loggedIn(f, time.Hour)
	if err := h.run("run-task", "myapp", "--command", "rake db:migrate", "--name", "migrate", "--wait"); err != nil {
		t.Fatalf("run-task --wait: %v\nstderr: %s", err, h.err)
	}
	out := h.out.String()
	if _, streams, _ := ft.snapshot(); !slices.Equal(streams, []string{"APP/TASK/migrate"}) {
		t.Errorf("log streams = %v, want one of APP/TASK/migrate", streams)
	}
	// The stream is open before the task is created, so no line is lost.
	reqs := f.requests()
	si := slices.IndexFunc(reqs, func(s string) bool { return strings.HasPrefix(s, "GET /pando/v1/logs/") })
	ci := slices.Index(reqs, "POST /v3/apps/"+appGUID+"/tasks")
	if si < 0 || ci < 0 || si > ci {
		t.Errorf("requests = %v: the stream must open before the task is created", reqs)
	}
	var got []string
	for _, l := range strings.Split(out, "\n") {
		if m := regexp.MustCompile(`^\S+ \[APP/TASK/migrate/0\] OUT (.*)$`).FindStringSubmatch(l); m != nil {
			got = append(got, m[1])
		}
	}
	if !slices.Equal(got, []string{"migrating...", "done 3 tables", "bye"}) {
		t.Errorf("task lines = %q\noutput:\n%s", got, out)
	}
	if strings.Contains(out, "another task") {
		t.Errorf("output shows another task's line:\n%s", out)
	}
	for _, want := range []string{"task name:   migrate\ntask id:     1\n", "Waiting for task to complete execution...", "Task has completed successfully.\nOK\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Index(out, "bye") > strings.Index(out, "Task has completed successfully.") {
		t.Errorf("the last line came after the result:\n%s", out)
	}
}

func TestRunTask_waitFailsWithTheReason(t *testing.T) {
	f := newFakeCF(t)
	ft := newFakeTasks(f)
	ft.lines = []string{"boom"}
	ft.endState, ft.reason = "FAILED", "APP/TASK/{name} Exited with status 3"
	h := newHarness(t)
	h.loggedIn(f, time.Hour)
	err := h.run("run-task", "myapp", "--command", "exit 3", "--wait")
	bodies, streams, _ := ft.snapshot()
	if len(bodies) != 1 {
		t.Fatalf("create bodies = %v", bodies)
	}
	// --wait names the task itself, to follow its output from the start.
	name, _ := bodies[0]["name"].(string)
	if !regexp.MustCompile(`^[0-9a-f]{8}$`).MatchString(name) || !slices.Equal(streams, []string{"APP/TASK/" + name}) {
		t.Errorf("name %q, streams %v", name, streams)
	}
	if want := fmt.Sprintf("task %s (id 1) failed: APP/TASK/%s Exited with status 3", name, name); err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %q", err, want)
	}
	if ReportError(h.err, err) == 0 {
		t.Error("a failed task exits 0")
	}
	if !strings.Contains(h.err.String(), "Task has failed.") || !strings.Contains(h.out.String(), "] OUT boom") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", h.out, h.err)
	}
}

func TestTasks_listsNewestFirstLikeCF(t *testing.T) {
	f := newFakeCF(t)
	ft := newFakeTasks(f)
	h := newHarness(t)
	h.loggedIn(f, time.Hour)
	if err := h.run("tasks", "myapp"); err != nil {
		t.Fatalf("tasks: %v", err)
	}
	if !strings.HasSuffix(h.out.String(), "\nNo tasks found.\n") {
		t.Errorf("output without tasks:\n%s", h.out)
	}
	ft.add("t1", "SUCCEEDED", "echo hi", time.Date(2026, 11, 26, 3, 27, 6, 0, time.UTC))
	ft.add("migrate", "RUNNING", "rake\ndb:migrate", time.Date(2026, 11, 26, 4, 0, 0, 0, time.UTC))
	h.out = &syncBuffer{}
	h.env.streams.Out = h.out
	if err := h.run("tasks", "myapp"); err != nil {
		t.Fatalf("tasks: %v", err)
	}
	want := "Getting tasks for app myapp in org myorg / space dev as admin...\n\n" +
		"id   name      state       start time                      command\n" +
		"2    migrate   RUNNING     Thu, 26 Nov 2026 04:00:00 UTC   rake db:migrate\n" +
		"1    t1        SUCCEEDED   Thu, 26 Nov 2026 03:27:06 UTC   echo hi\n"
	if h.out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", h.out, want)
	}
	if !slices.Contains(f.requests(), "GET /v3/apps/"+appGUID+"/tasks?per_page=5000") {
		t.Errorf("requests = %v, want the cf CLI's per_page=5000", f.requests())
	}
}

func TestTerminateTask_cancelsTheTaskWithThatID(t *testing.T) {
	f := newFakeCF(t)
	ft := newFakeTasks(f)
	created := time.Date(2026, 11, 26, 3, 27, 6, 0, time.UTC)
	ft.add("t1", "SUCCEEDED", "echo hi", created)
	second := ft.add("t2", "RUNNING", "sleep 100", created)
	h := newHarness(t)
	h.loggedIn(f, time.Hour)
	if err := h.run("terminate-task", "myapp", "2"); err != nil {
		t.Fatalf("terminate-task: %v", err)
	}
	if want := "Terminating task 2 of app myapp in org myorg / space dev as admin...\nOK\n"; h.out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", h.out, want)
	}
	if _, _, cancels := ft.snapshot(); !slices.Equal(cancels, []string{second["guid"].(string)}) {
		t.Errorf("cancels = %v", cancels)
	}
	if !slices.Contains(f.requests(), "GET /v3/apps/"+appGUID+"/tasks?per_page=1&sequence_ids=2") {
		t.Errorf("requests = %v", f.requests())
	}

	for _, tc := range []struct {
		id, want string
	}{
		{"1", "Task state is SUCCEEDED and therefore cannot be canceled"},
		{"9", "task 9 of app myapp not found"},
		{"one", "task id must be a number"},
		{"0", "task id must be a number"},
	} {
		err := h.run("terminate-task", "myapp", tc.id)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("terminate-task myapp %s: %v, want %q", tc.id, err, tc.want)
		}
	}
	if _, _, cancels := ft.snapshot(); len(cancels) != 1 {
		t.Errorf("cancels = %v", cancels)
	}
}
