package cli

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pandoplatform/pando/internal/cli/api"
)

// What a first hour with the CLI trips over: each test is a step of it.

// Ctrl-C during a push's staging leaves an app that ran on its previous
// droplet (the push sets the new one only after staging): the message must
// not tell the user the app was stopped.
func TestReportError_ctrlCSaysThePushLeftTheAppAsItWas(t *testing.T) {
	var b bytes.Buffer
	ReportError(&b, fmt.Errorf("stage: %w", context.Canceled))
	got := b.String()
	if strings.Contains(got, "leaves its app stopped") || !strings.Contains(got, "leaves the app as it was, on its previous droplet") {
		t.Errorf("Ctrl-C says %q, want that the app keeps its previous droplet", got)
	}
}

// scale, start, restart and restage have no -t: their --wait-timeout help
// must not point at one as if it were theirs.
func TestWaitTimeoutHelp_pointsAtNoFlagTheVerbLacks(t *testing.T) {
	checked := 0
	for _, c := range NewCommands(IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}) {
		fl := c.Flags().Lookup("wait-timeout")
		if fl == nil {
			continue
		}
		checked++
		if strings.Contains(fl.Usage, "(-t)") && c.Flags().ShorthandLookup("t") == nil {
			t.Errorf("%s --wait-timeout: %q names -t, which %s lacks", c.Name(), fl.Usage, c.Name())
		}
	}
	if checked < 4 {
		t.Fatalf("only %d verbs have --wait-timeout", checked)
	}
}

// An instance no cell can take is DOWN with Diego's reason; while others
// run or start the wait goes on (capacity may free up), and its progress
// line says the reason at once rather than only at the end of the wait.
func TestWait_progressSaysWhyInstancesAreDown(t *testing.T) {
	_, h := startHarness(t, 2, [][]statEntry{
		{{state: "RUNNING"}, {state: "DOWN", details: "insufficient resources: memory"}},
		{{state: "RUNNING"}, {state: "RUNNING"}},
	})
	if err := h.run("start", "myapp"); err != nil {
		t.Fatalf("start: %v\n%s", err, h.err)
	}
	out := h.out.String()
	for _, want := range []string{"web: 1 of 2 instances running, 1 down (insufficient resources: memory)\n", "web: 2 of 2 instances running\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// A second push of an app while the first one stages: both stagings'
// lines come on the app's one STG stream, so the push says why.
func TestPush_saysWhenTheAppIsStagingAlready(t *testing.T) {
	for _, other := range []bool{true, false} {
		f := newFakeCF(t)
		h := newHarness(t)
		h.loggedIn(f, time.Hour)
		f.appExists = true
		f.lastLine = "Staging complete"
		f.stats = [][]statEntry{{{state: "RUNNING"}}}
		f.extra = func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodGet || r.URL.Path != "/v3/apps/"+appGUID+"/builds" {
				return false
			}
			if other {
				b := f.buildJSON("STAGING")
				b["guid"], b["created_at"] = "0f873736-2af2-4723-884b-2aa4f22ac034", "2026-11-26T03:25:40Z"
				f.writeJSON(w, 200, f.list(b))
			} else {
				f.writeJSON(w, 200, f.list())
			}
			return true
		}
		if err := h.run("push", "myapp", "--docker-image", "registry.example/web:v1"); err != nil {
			t.Fatalf("push: %v\nstderr: %s", err, h.err)
		}
		warned := strings.Contains(h.err.String(), "warning: myapp is already staging (another push or restage of it, since 03:25:40): "+
			"both stagings' output shows below, and the app gets the droplet of the one started last")
		if warned != other {
			t.Errorf("another staging %v: warned %v; stderr:\n%s", other, warned, h.err)
		}
	}
}

// A manifest.yml in the current directory is read by a push that names
// an app and a -p: when it is what fails, the error says it was read and
// how to leave it out; a manifest given with -f gets no such hint.
func TestPush_implicitManifestErrorSaysHowToLeaveItOut(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"manifest.yml":    "applications:\n- name: web\n  env:\n    GREETING: ((greeting))\n- name: worker\n",
		"site/index.html": "hi\n",
		"site/Staticfile": "",
	})
	t.Chdir(dir)
	hint := "(the manifest in the current directory is read unless --no-manifest is given)"
	for _, tc := range []struct {
		args     []string
		want     string
		wantHint bool
	}{
		{[]string{"push", "api", "-p", "site"}, "Expected to find variables: greeting", true},
		{[]string{"push", "api", "-p", "site", "--var", "greeting=hi"}, "no app named 'api' in the manifest", true},
		{[]string{"push", "api", "-p", "site", "-f", "manifest.yml"}, "Expected to find variables: greeting", false},
	} {
		h := newHarness(t)
		err := h.run(tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.args, err, tc.want)
			continue
		}
		if got := strings.Contains(err.Error(), hint); got != tc.wantHint {
			t.Errorf("%v: err = %q; hint shown %v, want %v", tc.args, err, got, tc.wantHint)
		}
	}
}

// A manifest's apps are pushed one after the other; a blank line sets
// each app's output apart from the previous app's, as cf does.
func TestPush_manifestAppsAreSetApart(t *testing.T) {
	f := newFakeCF(t)
	h := newHarness(t)
	h.loggedIn(f, time.Hour)
	f.extra = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodGet && r.URL.Path == "/v3/apps" && r.URL.Query().Get("names") == "second" {
			a := f.appJSON()
			a["name"] = "second"
			f.writeJSON(w, 200, f.list(a))
			return true
		}
		return false
	}
	m := filepath.Join(t.TempDir(), "manifest.yml")
	writeFiles(t, filepath.Dir(m), map[string]string{"manifest.yml": "applications:\n- name: myapp\n  docker:\n    image: registry.example/web:v1\n" +
		"- name: second\n  docker:\n    image: registry.example/web:v1\n"})
	if err := h.run("push", "-f", m, "--no-start"); err != nil {
		t.Fatalf("push: %v\nstderr: %s", err, h.err)
	}
	out := h.out.String()
	first, second := strings.Index(out, "Pushing app myapp "), strings.Index(out, "Pushing app second ")
	if first < 0 || second < first || !strings.HasSuffix(out[:second], "\n\n") {
		t.Errorf("want the second app's output after a blank line:\n%s", out)
	}
}

// scale -i -1 was taken as "-i not given" and showed the current scale:
// a negative count is refused, and nothing is scaled.
func TestScale_negativeInstancesAreRefused(t *testing.T) {
	f := newFakeCF(t)
	f.appExists = true
	h := newHarness(t)
	h.loggedIn(f, time.Hour)
	err := h.run("scale", "myapp", "-i", "-1")
	if err == nil || err.Error() != "-i -1: the number of instances must be 0 or more" {
		t.Fatalf("err = %v, want -1 refused", err)
	}
	for _, r := range f.requests() {
		if strings.Contains(r, "/actions/scale") || strings.HasPrefix(r, "GET /v3/apps/"+appGUID+"/processes") {
			t.Errorf("scale with -i -1 sent %s", r)
		}
	}
}

// An app that never listens leaves the wait silent until its health check
// gives up (a minute by default): once instances have been starting a while
// the wait says what the check waits for and for how long.
func TestWait_saysWhatASlowStartWaitsFor(t *testing.T) {
	for _, note := range []time.Duration{0, time.Hour} {
		_, h := startHarness(t, 1, [][]statEntry{{{state: "STARTING"}}, {{state: "RUNNING"}}})
		h.env.slowStartNote = note
		if err := h.run("start", "myapp"); err != nil {
			t.Fatalf("start: %v\n%s", err, h.err)
		}
		want := "   web: still starting after 0s: the health check waits for the app to listen on $PORT, for up to 1m0s from each start ('pando logs myapp' shows what the app prints)\n"
		if got := strings.Contains(h.out.String(), want); got != (note == 0) {
			t.Errorf("note after %s: shown %v; output:\n%s", note, got, h.out)
		}
	}
}

// Instances waiting for a start slot on their cell run no health check
// yet: the wait does not say the check is what holds them up.
func TestWait_saysNothingOfHealthChecksWhileInstancesWaitForAStartSlot(t *testing.T) {
	waiting := statEntry{state: "STARTING", details: "waiting for a start slot on cell cell-0 (3 ahead)"}
	_, h := startHarness(t, 1, [][]statEntry{{waiting}, {waiting}, {{state: "RUNNING"}}})
	h.env.slowStartNote = 0
	if err := h.run("start", "myapp"); err != nil {
		t.Fatalf("start: %v\n%s", err, h.err)
	}
	out := h.out.String()
	if strings.Contains(out, "the health check waits") {
		t.Errorf("a slot wait was said to be the health check's:\n%s", out)
	}
	if !strings.Contains(out, "waiting for a start slot on cell cell-0") {
		t.Errorf("the slot wait was not said:\n%s", out)
	}
}

func TestSlowStartText_namesTheCheck(t *testing.T) {
	app := &api.App{Name: "shop"}
	var p api.Process
	p.HealthCheck.Type = "http"
	p.HealthCheck.Data.Endpoint = "/health"
	ninety := 90
	p.HealthCheck.Data.Timeout = &ninety
	if got, want := slowStartText(app, p, 15*time.Second), "still starting after 15s: the health check waits for an HTTP 200 from /health on $PORT, for up to 1m30s"; !strings.HasPrefix(got, want) {
		t.Errorf("http: %q, want it to start %q", got, want)
	}
	p.HealthCheck.Type = "process"
	if got := slowStartText(app, p, 15*time.Second); got != "" {
		t.Errorf("process: %q, want none (it passes once the command runs)", got)
	}
}

// A start command that is not found crashes with status 127. The crash
// report shows what the app printed and the cells' errors, not the four
// progress lines a cell logs for each start (which buried the one line
// that said why), nor what an older droplet printed before this push's
// staging, and says what 127 means.
func TestPush_crashReportShowsTheAppsLinesAndExplains127(t *testing.T) {
	ts := int64(1795663555000000000)
	stderr := crashedPush(t, 127, []fakeEnvelope{
		{ts: ts - 3, sourceType: "APP/PROC/WEB", instance: "0", typ: "ERR", payload: "an older droplet's line"},
		{ts: ts - 2, sourceType: "STG", instance: "0", typ: "OUT", payload: "Downloading app package..."},
		{ts: ts - 1, sourceType: "STG", instance: "0", typ: "OUT", payload: "Staging complete"},
		{ts: ts, sourceType: "CELL", instance: "0", typ: "OUT", payload: "Cell cell-0 creating container for instance 078f"},
		{ts: ts + 1, sourceType: "CELL", instance: "0", typ: "OUT", payload: "Starting health monitoring of container"},
		{ts: ts + 2, sourceType: "APP/PROC/WEB", instance: "0", typ: "ERR", payload: "/usr/bin/bash: line 1: nodee: command not found"},
		{ts: ts + 3, sourceType: "APP/PROC/WEB", instance: "0", typ: "OUT", payload: "Exit status 127"},
		{ts: ts + 4, sourceType: "CELL", instance: "0", typ: "ERR", payload: "Timed out after 1m0s: health check never passed."},
		{ts: ts + 5, sourceType: "RTR", instance: "0", typ: "OUT", payload: `myapp.localhost - "GET / HTTP/1.1" 502`},
		{ts: ts + 6, sourceType: "CELL", instance: "0", typ: "OUT", payload: "Cell cell-0 destroying container for instance 078f"},
	})
	for _, want := range []string{"ERR /usr/bin/bash: line 1: nodee: command not found", "OUT Exit status 127",
		"[CELL/0] ERR Timed out after 1m0s", "Exit status 127: the shell did not find the start command"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	for _, noise := range []string{"creating container", "health monitoring", "destroying container", "GET / HTTP/1.1", "older droplet"} {
		if strings.Contains(stderr, noise) {
			t.Errorf("stderr shows %q:\n%s", noise, stderr)
		}
	}
}

// A start that printed nothing (only the cell's progress lines, which the
// report leaves out) still ends the report at this push's staging: what an
// older droplet printed before it is not shown as this push's.
func TestPush_crashReportOfASilentStartShowsNoOlderDropletsLines(t *testing.T) {
	ts := int64(1795663555000000000)
	stderr := crashedPush(t, 1, []fakeEnvelope{
		{ts: ts - 3, sourceType: "APP/PROC/WEB", instance: "0", typ: "ERR", payload: "an older droplet's line"},
		{ts: ts - 2, sourceType: "STG", instance: "0", typ: "OUT", payload: "Downloading app package..."},
		{ts: ts - 1, sourceType: "STG", instance: "0", typ: "OUT", payload: "Staging complete"},
		{ts: ts, sourceType: "CELL", instance: "0", typ: "OUT", payload: "Cell cell-0 creating container for instance 078f"},
		{ts: ts + 1, sourceType: "CELL", instance: "0", typ: "OUT", payload: "Cell cell-0 destroying container for instance 078f"},
	})
	if strings.Contains(stderr, "older droplet") {
		t.Errorf("stderr shows an older droplet's line:\n%s", stderr)
	}
	if !strings.Contains(stderr, "The app logged nothing.") {
		t.Errorf("stderr does not say the app logged nothing:\n%s", stderr)
	}
}

// crashedPush pushes an image whose only instance crashes with status,
// the app's log holding envelopes after a staging that ended with
// "Staging complete", and returns what the push wrote on stderr.
func crashedPush(t *testing.T, status int, envelopes []fakeEnvelope) string {
	t.Helper()
	f := newFakeCF(t)
	h := newHarness(t)
	h.loggedIn(f, time.Hour)
	f.lastLine = "Staging complete"
	crash := fmt.Sprintf("APP/PROC/WEB/0 Exited with status %d", status)
	f.stats = [][]statEntry{{{state: "CRASHED", details: crash}}}
	f.envelopes = envelopes
	err := h.run("push", "myapp", "--docker-image", "registry.example/web:v1")
	if err == nil || !strings.Contains(err.Error(), "crashed: "+crash) {
		t.Fatalf("err = %v, want the crash", err)
	}
	return h.err.String()
}

// run-task on an app whose staging failed got CF's "Assign current droplet
// to app", which names no pando verb: the error says what to do.
func TestRunTask_withoutADropletSaysToPushFirst(t *testing.T) {
	for _, wait := range []bool{false, true} {
		f := newFakeCF(t)
		ft := newFakeTasks(f) // serves --wait's log stream
		h := newHarness(t)
		h.loggedIn(f, time.Hour)
		f.extra = func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodPost && r.URL.Path == "/v3/apps/"+appGUID+"/tasks" {
				f.cfError(w, 422, 10008, "CF-UnprocessableEntity", "Task must have a droplet. Assign current droplet to app.")
				return true
			}
			return ft.serve(w, r)
		}
		args := []string{"run-task", "myapp", "-c", "echo hi"}
		if wait {
			args = append(args, "--wait")
		}
		err := h.run(args...)
		if err == nil || !strings.Contains(err.Error(), "(myapp has no droplet to run the task in yet: push it, and fix its staging if that failed)") {
			t.Errorf("run-task (--wait %v): err = %v", wait, err)
		}
	}
}

// Of two pushes of an app staging at once, the one started last is what
// the user wants running: the earlier one, should its staging end last,
// must not make its older droplet current, and says so.
func TestPush_anEarlierPushDoesNotReplaceANewerOnesDroplet(t *testing.T) {
	f := newFakeCF(t)
	h := newHarness(t)
	h.loggedIn(f, time.Hour)
	f.appExists = true
	f.lastLine = "Staging complete"
	f.stats = [][]statEntry{{{state: "RUNNING"}}}
	f.extra = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || r.URL.Path != "/v3/apps/"+appGUID+"/builds" {
			return false
		}
		ours := f.buildJSON("STAGED") // created 03:25:55
		newer := f.buildJSON("STAGING")
		newer["guid"], newer["created_at"], newer["droplet"] = "0f873736-2af2-4723-884b-2aa4f22ac034", "2026-11-26T03:26:10Z", nil
		if strings.Contains(r.URL.Query().Get("states"), "STAGED") {
			f.writeJSON(w, 200, f.list(newer, ours))
		} else {
			f.writeJSON(w, 200, f.list())
		}
		return true
	}
	err := h.run("push", "myapp", "--docker-image", "registry.example/web:v1")
	want := "a newer push or restage of myapp (staging since 03:26:10) replaces this one: this push's droplet was not made current"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant  %s", err, want)
	}
	for _, r := range f.requests() {
		if strings.Contains(r, "current_droplet") || strings.Contains(r, "/actions/restart") {
			t.Errorf("the earlier push sent %s", r)
		}
	}
}

// created_at shows whole seconds: of two pushes begun within one second,
// the API's order (newest first) says which is newer. The earlier one
// does not make its droplet current; the later one does.
func TestPush_ofTwoPushesInOneSecondTheOneListedNewerWins(t *testing.T) {
	for _, oursIsNewer := range []bool{false, true} {
		f := newFakeCF(t)
		h := newHarness(t)
		h.loggedIn(f, time.Hour)
		f.appExists = true
		f.lastLine = "Staging complete"
		f.stats = [][]statEntry{{{state: "RUNNING"}}}
		f.extra = func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodGet || r.URL.Path != "/v3/apps/"+appGUID+"/builds" {
				return false
			}
			ours := f.buildJSON("STAGED")
			other := f.buildJSON("STAGING") // begun in the same second
			other["guid"], other["droplet"] = "0f873736-2af2-4723-884b-2aa4f22ac034", nil
			switch {
			case !strings.Contains(r.URL.Query().Get("states"), "STAGED"):
				f.writeJSON(w, 200, f.list())
			case oursIsNewer:
				f.writeJSON(w, 200, f.list(ours, other))
			default:
				f.writeJSON(w, 200, f.list(other, ours))
			}
			return true
		}
		err := h.run("push", "myapp", "--docker-image", "registry.example/web:v1")
		made := false
		for _, r := range f.requests() {
			made = made || strings.Contains(r, "current_droplet")
		}
		if oursIsNewer && (err != nil || !made) {
			t.Errorf("the newer push: err = %v, made its droplet current %v", err, made)
		}
		if !oursIsNewer && (err == nil || !strings.Contains(err.Error(), "a newer push or restage of myapp") || made) {
			t.Errorf("the earlier push: err = %v, made its droplet current %v", err, made)
		}
	}
}

// Deleting an app while it stages cancels its staging: the build may end
// FAILED ("task was cancelled") before it is gone, and the push said only
// that, as if something else had cancelled it.
func TestPush_appDeletedWhileStagingIsSaidWhenTheBuildEndsCancelled(t *testing.T) {
	for _, deleted := range []bool{true, false} {
		f := newFakeCF(t)
		h := newHarness(t)
		h.loggedIn(f, time.Hour)
		f.lastLine = "Staging failed: StagingError - Staging error: task was cancelled"
		f.buildError = "StagingError - Staging error: task was cancelled"
		f.extra = func(w http.ResponseWriter, r *http.Request) bool {
			if !deleted || r.Method != http.MethodGet || r.URL.Path != "/v3/apps" {
				return false
			}
			select {
			case <-f.buildAnswered:
				f.writeJSON(w, 200, f.list())
				return true
			default:
				return false
			}
		}
		err := h.run("push", "myapp", "--docker-image", "registry.example/web:v1")
		said := err != nil && err.Error() == "stage myapp: the app was deleted while it was staging"
		if err == nil || said != deleted {
			t.Errorf("deleted %v: err = %v", deleted, err)
		}
	}
}

func TestCrashHint_httpHealthCheckSaysWhatToChange(t *testing.T) {
	reason := "health check timed out after 5s: instance never healthy: Failed to make HTTP request to '/nope' on port 8080: received status code 404 in 2ms"
	got := crashHint(reason)
	for _, want := range []string{"never got a 200 from /nope", "--endpoint", "-u port"} {
		if !strings.Contains(got, want) {
			t.Errorf("hint %q lacks %q", got, want)
		}
	}
	// Nothing answering at all is not about the endpoint.
	if got := crashHint("instance never healthy: Failed to make HTTP request to '/health' on port 8080: dial tcp: connection refused"); strings.Contains(got, "200") {
		t.Errorf("a refused http check got the endpoint hint: %q", got)
	}
}
