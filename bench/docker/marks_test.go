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

func TestContainerSteps_splitTheContainerStepAtTheDebugLines(t *testing.T) {
	log := `time=2026-12-06T10:04:08.265Z level=INFO msg="lrp desired" component=bbs process_guid=p revision=1 instances=1
time=2026-12-06T10:04:08.300Z level=INFO msg="layer cache: unpacked layer" component=layers layer=sha256-1
time=2026-12-06T10:04:08.500Z level=DEBUG msg="container started" component=cell container_id=c pid=42 ids_userns_ms=10.5 bundle_ms=4.5 runc_ms=150 other=1
time=2026-12-06T10:04:08.530Z level=DEBUG msg="Container became healthy" component=cell instance_guid=i
time=2026-12-06T10:04:09.000Z level=DEBUG msg="container started" component=cell container_id=d pid=43 ids_userns_ms=1 bundle_ms=1 runc_ms=1
`
	path := filepath.Join(t.TempDir(), "server.log")
	if err := os.WriteFile(path, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := readMarks(path)
	if err != nil {
		t.Fatal(err)
	}
	firstOK, _ := time.Parse(time.RFC3339Nano, "2026-12-06T10:04:08.545Z")
	steps := m.containerSteps(firstOK)
	// runc began at .500 - 165 ms = .335, 35 ms after the last layer.
	want := []time.Duration{35000, 10500, 4500, 150000, 30000, 15000}
	if len(steps) != len(want) {
		t.Fatalf("steps = %v, want %d", steps, len(want))
	}
	for k, st := range steps {
		if st.took != want[k]*time.Microsecond {
			t.Errorf("step %d (%s) = %s, want %s", k, st.name, st.took, want[k]*time.Microsecond)
		}
	}
	// An info-level log has no container lines: no split.
	m.containerStarted = time.Time{}
	if steps := m.containerSteps(firstOK); steps != nil {
		t.Errorf("without debug lines: %v, want none", steps)
	}
}
