package cli

import (
	"archive/zip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeBuildpacks adds admin buildpacks to fakeCF: list (by names), create,
// update, delete (a job) and upload (a job; refused when locked).
type fakeBuildpacks struct {
	f *fakeCF

	mu      sync.Mutex
	bps     []map[string]any
	n       int
	calls   []string         // "POST", "PATCH <guid>", "DELETE <guid>", "UPLOAD <guid>"
	patches []map[string]any // PATCH bodies in order
	uploads map[string]string
}

func newFakeBuildpacks(f *fakeCF) *fakeBuildpacks {
	fb := &fakeBuildpacks{f: f, uploads: map[string]string{}}
	f.mu.Lock()
	f.extra = fb.serve
	f.mu.Unlock()
	return fb
}

// add puts a buildpack at the end of the list.
func (fb *fakeBuildpacks) add(name, stack, state string, locked bool) string {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	fb.n++
	guid := fmt.Sprintf("bp-%d", fb.n)
	var st any
	if stack != "" {
		st = stack
	}
	fb.bps = append(fb.bps, map[string]any{
		"guid": guid, "name": name, "stack": st, "position": len(fb.bps) + 1,
		"enabled": true, "locked": locked, "state": state, "filename": nil, "lifecycle": "buildpack",
	})
	return guid
}

func (fb *fakeBuildpacks) get(guid string) map[string]any {
	for _, b := range fb.bps {
		if b["guid"] == guid {
			return b
		}
	}
	return nil
}

// renumber moves b to pos and numbers all 1..N, as the server does.
func (fb *fakeBuildpacks) renumber(b map[string]any, pos int) {
	i := slices.IndexFunc(fb.bps, func(x map[string]any) bool { return x["guid"] == b["guid"] })
	fb.bps = slices.Delete(fb.bps, i, i+1)
	pos = max(1, min(pos, len(fb.bps)+1))
	fb.bps = slices.Insert(fb.bps, pos-1, b)
	for i, x := range fb.bps {
		x["position"] = i + 1
	}
}

func (fb *fakeBuildpacks) snapshot() (calls []string, patches []map[string]any) {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	return slices.Clone(fb.calls), slices.Clone(fb.patches)
}

func (fb *fakeBuildpacks) serve(w http.ResponseWriter, r *http.Request) bool {
	p := r.URL.Path
	if p != "/v3/buildpacks" && !strings.HasPrefix(p, "/v3/buildpacks/") {
		return false
	}
	guid, action, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(p, "/v3/buildpacks"), "/"), "/")
	fb.mu.Lock()
	defer fb.mu.Unlock()
	f := fb.f
	switch {
	case r.Method == "GET" && guid == "":
		names := r.URL.Query().Get("names")
		items := []any{}
		for _, b := range fb.bps {
			if names == "" || b["name"] == names {
				items = append(items, b)
			}
		}
		f.writeJSON(w, 200, f.list(items...))
	case r.Method == "POST" && guid == "":
		var in map[string]any
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			f.t.Errorf("create buildpack body: %v", err)
		}
		for _, b := range fb.bps {
			if b["name"] == in["name"] && b["stack"] == nil {
				f.cfError(w, 422, 10008, "CF-UnprocessableEntity", fmt.Sprintf("Buildpack with name '%s' and an unassigned stack already exists", in["name"]))
				return true
			}
		}
		fb.calls = append(fb.calls, "POST")
		fb.n++
		b := map[string]any{"guid": fmt.Sprintf("bp-%d", fb.n), "name": in["name"], "stack": nil, "enabled": in["enabled"],
			"locked": false, "state": "AWAITING_UPLOAD", "filename": nil, "lifecycle": "buildpack"}
		fb.bps = append(fb.bps, b)
		fb.renumber(b, int(in["position"].(float64)))
		f.writeJSON(w, 201, b)
	case guid != "" && fb.get(guid) == nil:
		f.cfError(w, 404, 10010, "CF-ResourceNotFound", "Buildpack not found")
	case r.Method == "PATCH" && action == "":
		var in map[string]any
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			f.t.Errorf("patch buildpack body: %v", err)
		}
		fb.calls = append(fb.calls, "PATCH "+guid)
		fb.patches = append(fb.patches, in)
		b := fb.get(guid)
		for _, k := range []string{"enabled", "locked"} {
			if v, ok := in[k]; ok {
				b[k] = v
			}
		}
		if pos, ok := in["position"].(float64); ok {
			fb.renumber(b, int(pos))
		}
		f.writeJSON(w, 200, b)
	case r.Method == "DELETE" && action == "":
		fb.calls = append(fb.calls, "DELETE "+guid)
		i := slices.IndexFunc(fb.bps, func(x map[string]any) bool { return x["guid"] == guid })
		fb.bps = slices.Delete(fb.bps, i, i+1)
		w.Header().Set("Location", f.url()+"/v3/jobs/"+jobGUID)
		w.WriteHeader(http.StatusAccepted)
	case r.Method == "POST" && action == "upload":
		b := fb.get(guid)
		if b["locked"] == true {
			f.cfError(w, 422, 290002, "CF-BuildpackLocked", "The buildpack is locked")
			return true
		}
		mr, err := r.MultipartReader()
		if err != nil {
			f.t.Errorf("upload: %v", err)
			return true
		}
		part, err := mr.NextPart()
		if err != nil || part.FormName() != "bits" {
			f.t.Errorf("upload part: %v %v", part, err)
			return true
		}
		data, _ := io.ReadAll(part)
		fb.calls = append(fb.calls, "UPLOAD "+guid)
		fb.uploads[guid] = part.FileName() + ":" + string(data)
		b["state"], b["filename"] = "READY", part.FileName()
		w.Header().Set("Location", f.url()+"/v3/jobs/"+jobGUID)
		f.writeJSON(w, 202, b)
	default:
		return false
	}
	return true
}

// buildpackZipFile writes a buildpack zip with the given entries (by
// default bin/detect, bin/finalize and bin/release at its root).
func buildpackZipFile(t *testing.T, entries ...string) string {
	t.Helper()
	if entries == nil {
		entries = []string{"bin/detect", "bin/finalize", "bin/release"}
	}
	p := filepath.Join(t.TempDir(), "my_buildpack.zip")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for _, e := range entries {
		w, err := zw.Create(e)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(w, "#!/bin/sh\n")
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// A buildpack without the scripts the builder runs, or a zip of the
// directory instead of its contents, is refused before anything is
// created on the server, saying what to give instead.
func TestCreateBuildpack_refusesOneWithoutScriptsBeforeCreatingIt(t *testing.T) {
	dirOnly := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dirOnly, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dirOnly, "bin", "detect"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	parent := t.TempDir()
	if err := os.MkdirAll(filepath.Join(parent, "mybp", "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(parent, "mybp", "bin", "compile"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	notZip := filepath.Join(t.TempDir(), "bp.zip")
	if err := os.WriteFile(notZip, []byte("not a zip"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ src, want string }{
		{dirOnly, "has no bin/compile, bin/supply or bin/finalize: a buildpack needs bin/detect, bin/release and bin/finalize"},
		{buildpackZipFile(t, "bin/detect"), "has no bin/compile, bin/supply or bin/finalize"},
		{buildpackZipFile(t, "mybp/bin/detect", "mybp/bin/supply"), "has its scripts under mybp/bin, not bin/ at the zip's root: zip the contents of mybp, not the directory itself"},
		{parent, "has its scripts under mybp/bin: give " + filepath.Join(parent, "mybp")},
		{notZip, "is not a zip file"},
	} {
		fb, h := buildpackHarness(t)
		err := h.run("create-buildpack", "my_buildpack", tc.src, "1")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("create-buildpack %s: %v, want %q", tc.src, err, tc.want)
		}
		if calls, _ := fb.snapshot(); len(calls) != 0 {
			t.Errorf("create-buildpack %s: calls %v, want none", tc.src, calls)
		}
	}
}

func buildpackHarness(t *testing.T) (*fakeBuildpacks, *harness) {
	t.Helper()
	f := newFakeCF(t)
	fb := newFakeBuildpacks(f)
	h := newHarness(t)
	h.loggedIn(f, time.Hour)
	return fb, h
}

func TestCreateBuildpack_reusesOneLeftAwaitingUpload(t *testing.T) {
	fb, h := buildpackHarness(t)
	fb.add("go_buildpack", "", "READY", false)
	guid := fb.add("my_buildpack", "", "AWAITING_UPLOAD", false)
	zip := buildpackZipFile(t)
	if err := h.run("create-buildpack", "my_buildpack", zip, "1"); err != nil {
		t.Fatalf("create-buildpack: %v\nstderr: %s", err, h.err)
	}
	calls, patches := fb.snapshot()
	if got, want := strings.Join(calls, ","), "PATCH "+guid+",UPLOAD "+guid; got != want {
		t.Errorf("calls = %s, want %s", got, want)
	}
	if len(patches) != 1 || !mapsEqual(patches[0], map[string]any{"position": 1.0}) {
		t.Errorf("patches = %v", patches)
	}
	if want, _ := os.ReadFile(zip); fb.uploads[guid] != "my_buildpack.zip:"+string(want) {
		t.Errorf("upload = %q", fb.uploads[guid])
	}
	if b := fb.get(guid); b["position"] != 1 || b["state"] != "READY" {
		t.Errorf("buildpack = %v", b)
	}
	if !strings.Contains(h.out.String(), "Uploading buildpack my_buildpack as admin...\nOK\n") {
		t.Errorf("output:\n%s", h.out)
	}

	// Same position: nothing to patch.
	guid2 := fb.add("other_buildpack", "", "AWAITING_UPLOAD", false)
	if err := h.run("create-buildpack", "other_buildpack", zip, "3"); err != nil {
		t.Fatalf("create-buildpack: %v", err)
	}
	calls, _ = fb.snapshot()
	if got := strings.Join(calls[2:], ","); got != "UPLOAD "+guid2 {
		t.Errorf("calls = %s", got)
	}
}

func TestCreateBuildpack_refusesAReadyOneOfTheSameName(t *testing.T) {
	fb, h := buildpackHarness(t)
	fb.add("my_buildpack", "", "READY", false)
	err := h.run("create-buildpack", "my_buildpack", buildpackZipFile(t), "1")
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(h.err.String(), "TIP: use 'pando update-buildpack my_buildpack -p ") {
		t.Errorf("stderr:\n%s", h.err)
	}
	if calls, _ := fb.snapshot(); len(calls) != 0 {
		t.Errorf("calls = %v", calls)
	}
}

func TestCreateBuildpack_createsANewOne(t *testing.T) {
	fb, h := buildpackHarness(t)
	// The same name on a stack does not clash with a stackless one.
	fb.add("my_buildpack", "cflinuxfs4", "READY", false)
	if err := h.run("create-buildpack", "my_buildpack", buildpackZipFile(t), "1", "--disable"); err != nil {
		t.Fatalf("create-buildpack: %v", err)
	}
	calls, _ := fb.snapshot()
	if got := strings.Join(calls, ","); got != "POST,UPLOAD bp-2" {
		t.Errorf("calls = %s", got)
	}
	if b := fb.get("bp-2"); b["enabled"] != false || b["position"] != 1 {
		t.Errorf("buildpack = %v", b)
	}
}

func TestDeleteBuildpack(t *testing.T) {
	fb, h := buildpackHarness(t)
	guid := fb.add("my_buildpack", "", "READY", false)

	h.env.streams.In = strings.NewReader("n\n")
	if err := h.run("delete-buildpack", "my_buildpack"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(h.err.String(), "Really delete the buildpack my_buildpack?") || !strings.Contains(h.out.String(), "Delete cancelled") {
		t.Errorf("no confirmation:\nstdout: %s\nstderr: %s", h.out, h.err)
	}
	if calls, _ := fb.snapshot(); len(calls) != 0 {
		t.Fatalf("deleted without confirmation: %v", calls)
	}

	h.env.streams.In = strings.NewReader("y\n")
	if err := h.run("delete-buildpack", "my_buildpack"); err != nil {
		t.Fatalf("delete-buildpack: %v", err)
	}
	if calls, _ := fb.snapshot(); strings.Join(calls, ",") != "DELETE "+guid {
		t.Errorf("calls = %v", calls)
	}
	if !strings.HasSuffix(h.out.String(), "Deleting buildpack my_buildpack as admin...\nOK\n") {
		t.Errorf("output:\n%s", h.out)
	}

	// Gone already: said, not an error (as cf).
	if err := h.run("delete-buildpack", "my_buildpack", "-f"); err != nil {
		t.Fatalf("delete-buildpack of a missing one: %v", err)
	}
	if !strings.Contains(h.out.String(), "Buildpack 'my_buildpack' does not exist.\nOK\n") {
		t.Errorf("output:\n%s", h.out)
	}
}

func TestDeleteBuildpack_severalStacksNeedsOne(t *testing.T) {
	fb, h := buildpackHarness(t)
	fb.add("my_buildpack", "cflinuxfs3", "READY", false)
	g4 := fb.add("my_buildpack", "cflinuxfs4", "READY", false)
	err := h.run("delete-buildpack", "my_buildpack", "-f")
	if err == nil || !strings.Contains(err.Error(), "stacks: cflinuxfs3, cflinuxfs4") || !strings.Contains(err.Error(), "-s STACK") {
		t.Fatalf("err = %v", err)
	}
	if err := h.run("delete-buildpack", "my_buildpack", "-f", "-s", "cflinuxfs4"); err != nil {
		t.Fatal(err)
	}
	if calls, _ := fb.snapshot(); strings.Join(calls, ",") != "DELETE "+g4 {
		t.Errorf("calls = %v", calls)
	}
}

func TestUpdateBuildpack(t *testing.T) {
	zip := buildpackZipFile(t)
	cases := []struct {
		name      string
		locked    bool
		args      []string
		wantErr   string
		wantCalls string // {g} is the buildpack's guid
		patches   []map[string]any
	}{
		{name: "position and disable", args: []string{"-i", "1", "--disable"},
			wantCalls: "PATCH {g}", patches: []map[string]any{{"enabled": false, "position": 1.0}}},
		{name: "new files", args: []string{"-p", zip},
			wantCalls: "UPLOAD {g}"},
		{name: "locked refuses new files", locked: true, args: []string{"-p", zip},
			wantErr: "locked: add --unlock"},
		{name: "unlock then upload", locked: true, args: []string{"-p", zip, "--unlock"},
			wantCalls: "PATCH {g},UPLOAD {g}", patches: []map[string]any{{"locked": false}}},
		{name: "upload then lock", args: []string{"-p", zip, "--lock", "--enable"},
			wantCalls: "PATCH {g},UPLOAD {g},PATCH {g}", patches: []map[string]any{{"enabled": true}, {"locked": true}}},
		{name: "lock only", args: []string{"--lock"},
			wantCalls: "PATCH {g}", patches: []map[string]any{{"locked": true}}},
		{name: "nothing to do", args: nil, wantErr: "nothing to update"},
		{name: "enable and disable", args: []string{"--enable", "--disable"}, wantErr: "none of the others can be"},
		{name: "missing", args: []string{"-i", "1", "--stack", "cflinuxfs3"}, wantErr: "buildpack 'my_buildpack' not found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fb, h := buildpackHarness(t)
			fb.add("go_buildpack", "", "READY", false)
			g := fb.add("my_buildpack", "", "READY", tc.locked)
			err := h.run(append([]string{"update-buildpack", "my_buildpack"}, tc.args...)...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if calls, _ := fb.snapshot(); len(calls) != 0 {
					t.Errorf("calls = %v", calls)
				}
				return
			}
			if err != nil {
				t.Fatalf("update-buildpack: %v\nstderr: %s", err, h.err)
			}
			calls, patches := fb.snapshot()
			if got, want := strings.Join(calls, ","), strings.ReplaceAll(tc.wantCalls, "{g}", g); got != want {
				t.Errorf("calls = %s, want %s", got, want)
			}
			if len(patches) != len(tc.patches) {
				t.Fatalf("patches = %v, want %v", patches, tc.patches)
			}
			for i := range patches {
				if !mapsEqual(patches[i], tc.patches[i]) {
					t.Errorf("patch %d = %v, want %v", i, patches[i], tc.patches[i])
				}
			}
			if !strings.HasPrefix(h.out.String(), "Updating buildpack my_buildpack as admin...\nOK\n") {
				t.Errorf("output:\n%s", h.out)
			}
		})
	}
}
