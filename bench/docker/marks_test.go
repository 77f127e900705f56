package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestReadMarks_splitsAColdStartAtTheServerLogLines(t *testing.T) {
	log := `Admin user: admin
time=2026-12-06T10:04:08.021Z level=INFO msg="pando server started" api=http://127.0.0.1:1
time=2026-12-06T10:04:08.182Z level=INFO msg="task running" component=bbs task_guid=a cell_id=cell-0 kind=staging
time=2026-12-06T10:04:08.207Z level=INFO msg="task completed" component=bbs task_guid=a kind=staging failed=false reason=""
time=2026-12-06T10:04:08.265Z level=INFO msg="lrp desired" component=bbs process_guid=p revision=1 instances=1
time=2026-12-06T10:04:08.532Z level=INFO msg="layer cache: unpacked layer" component=layers layer=sha256-1
time=2026-12-06T10:04:08.611Z level=INFO msg="layer cache: unpacked layer" component=layers layer=sha256-2
time=2026-12-06T10:04:08.900Z level=INFO msg="task running" component=bbs task_guid=b cell_id=cell-0 kind=staging
`
	path := filepath.Join(t.TempDir(), "server.log")
	if err := os.WriteFile(path, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := readMarks(path)
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339Nano, "2026-12-06T10:04:"+s+"Z")
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	steps := m.breakdown(at("08.100"), at("08.800"))
	want := []time.Duration{82, 25, 58, 404, 346, 189}
	if len(steps) != len(want) {
		t.Fatalf("steps = %v, want %d", steps, len(want))
	}
	for k, st := range steps {
		if st.took != want[k]*time.Millisecond {
			t.Errorf("step %d (%s) = %s, want %d ms", k, st.name, st.took, want[k])
		}
	}
	// Layers prefetched before the LRP is desired: no wait for them.
	early := m
	early.lastLayer = at("08.240")
	steps = early.breakdown(at("08.100"), at("08.800"))
	want = []time.Duration{82, 25, 58, 33, 0, 535}
	if len(steps) != len(want) {
		t.Fatalf("steps = %v, want %d", steps, len(want))
	}
	for k, st := range steps {
		if st.took != want[k]*time.Millisecond {
			t.Errorf("prefetched: step %d (%s) = %s, want %d ms", k, st.name, st.took, want[k])
		}
	}
	// A log without the marks gives no breakdown rather than a wrong one.
	if steps := (marks{}).breakdown(at("08.100"), at("08.800")); steps != nil {
		t.Errorf("breakdown without marks = %v, want none", steps)
	}
}
