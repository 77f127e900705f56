package cell

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/container"
	"github.com/pandoplatform/pando/internal/container/fake"
)

func TestInstanceRecord_savedAtomicallyAndReadBackWithoutCredentials(t *testing.T) {
	wd := t.TempDir()
	r := &Rep{cfg: Config{WorkDir: wd}}
	if err := os.MkdirAll(filepath.Join(wd, dirRecords), 0o700); err != nil {
		t.Fatal(err)
	}
	started := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	i := &instance{
		lrp: pando.DesiredLRP{ProcessGUID: "p1", Revision: 3, AppGUID: "a1", StartCommand: "./server",
			Image: "reg/x@sha256:ab", ImageCredentials: &pando.ImageCredentials{Username: "u", Password: "secret"},
			Env: []pando.EnvVar{{Name: "GREETING", Value: "hi"}}},
		index: 2, guid: "g-1", memMB: 256, diskMB: 512,
		ports:     []pando.PortMapping{{ContainerPort: 8080, HostPort: 61003}},
		dir:       filepath.Join(wd, dirInstances, safeName("g-1")),
		startedAt: started,
	}
	if err := r.saveRecord(i); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(r.recordPath("g-1"))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := parseRecord(data, wd)
	if err != nil {
		t.Fatal(err)
	}
	if rec.LRP.ProcessGUID != "p1" || rec.LRP.Revision != 3 || rec.Index != 2 || rec.InstanceGUID != "g-1" ||
		rec.MemoryMB != 256 || rec.DiskMB != 512 || len(rec.Ports) != 1 || rec.Ports[0].HostPort != 61003 ||
		rec.ContainerID != "app-g-1" || !rec.StartedAt.Equal(started) || rec.LRP.Env[0].Value != "hi" {
		t.Fatalf("read back %+v", rec)
	}
	if rec.LRP.ImageCredentials != nil {
		t.Fatal("the registry password was written to the record")
	}
	// A second save replaces it; no temp file stays.
	i.ports[0].HostPort = 61004
	if err := r.saveRecord(i); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Join(wd, dirRecords))
	if len(ents) != 1 {
		t.Fatalf("records dir holds %d files, want 1", len(ents))
	}
	got := r.readRecords()
	if len(got) != 1 || got[0].Ports[0].HostPort != 61004 {
		t.Fatalf("records %+v", got)
	}
	r.removeRecord(i)
	if got := r.readRecords(); len(got) != 0 {
		t.Fatalf("records after remove: %+v", got)
	}
}

func TestParseRecord_refusesRecordsNotTheCellsOwn(t *testing.T) {
	wd := "/data/cell"
	good := instanceRecord{Version: recordVersion, LRP: pando.DesiredLRP{ProcessGUID: "p"}, InstanceGUID: "g",
		MemoryMB: 64, DiskMB: 64, Ports: []pando.PortMapping{{ContainerPort: 8080, HostPort: 61000}},
		ContainerID: "app-g", Dir: "/data/cell/instances/g"}
	encode := func(mod func(*instanceRecord)) []byte {
		rec := good
		rec.Ports = append([]pando.PortMapping(nil), good.Ports...)
		mod(&rec)
		b, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if _, err := parseRecord(encode(func(*instanceRecord) {}), wd); err != nil {
		t.Fatalf("good record refused: %v", err)
	}
	for name, data := range map[string][]byte{
		"not json":           []byte("{"),
		"other version":      encode(func(r *instanceRecord) { r.Version = 99 }),
		"no guid":            encode(func(r *instanceRecord) { r.InstanceGUID = "" }),
		"no process":         encode(func(r *instanceRecord) { r.LRP.ProcessGUID = "" }),
		"negative index":     encode(func(r *instanceRecord) { r.Index = -1 }),
		"no memory":          encode(func(r *instanceRecord) { r.MemoryMB = 0 }),
		"another container":  encode(func(r *instanceRecord) { r.ContainerID = "stg-g" }),
		"another directory":  encode(func(r *instanceRecord) { r.Dir = "/etc" }),
		"escaping directory": encode(func(r *instanceRecord) { r.Dir = "/data/cell/instances/../../etc" }),
		"no ports":           encode(func(r *instanceRecord) { r.Ports = nil }),
		"bad port":           encode(func(r *instanceRecord) { r.Ports[0].HostPort = 70000 }),
		"too big":            make([]byte, maxRecordBytes+1),
	} {
		if _, err := parseRecord(data, wd); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// stubVolume is an adopted volume that is only a directory.
type stubVolume struct{ dir string }

func (v stubVolume) Dir() string { return v.dir }
func (v stubVolume) Usage() (container.VolumeUsage, error) {
	return container.VolumeUsage{SizeBytes: 1 << 30, FreeBytes: 1 << 30, FreeInodes: 1000}, nil
}
func (v stubVolume) Release(context.Context) error { return nil }

// fakeAdopter hands out fake containers for the ids it knows, as if they
// had kept running; what the cell asked is recorded.
type fakeAdopter struct {
	backend *fake.Backend
	running map[string]bool                 // container ids still running
	ended   map[string]container.ExitStatus // of those, the ones that exited meanwhile

	mu       sync.Mutex
	outs     map[string]container.Output
	volumes  []string
	cleanups int
	adopted  int // adoptions before the first Cleanup
}

func (a *fakeAdopter) AdoptVolume(ctx context.Context, dir string) (container.Volume, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.volumes = append(a.volumes, dir)
	return stubVolume{dir: dir}, nil
}

func (a *fakeAdopter) Adopt(ctx context.Context, id string, out container.Output) (container.Container, error) {
	if !a.running[id] {
		return nil, errors.New("its shim is gone")
	}
	c, err := a.backend.Run(ctx, container.Spec{ID: id, Args: []string{"app"}})
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.outs[id] = out
	if a.cleanups == 0 {
		a.adopted++
	}
	return c, nil
}

func (a *fakeAdopter) Cleanup(context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cleanups++
	return nil
}

func writeRecord(t *testing.T, wd string, rec instanceRecord) {
	t.Helper()
	data, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(wd, dirRecords), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(wd, dirRecords, safeName(rec.InstanceGUID)+".json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestNew_adoptsRecordedInstancesRelaysTheirOutputAndSeesTheirCrash(t *testing.T) {
	wd := t.TempDir()
	started := time.Now().Add(-time.Hour).Truncate(time.Second)
	rec := func(guid string, hostPort int) instanceRecord {
		return instanceRecord{Version: recordVersion, InstanceGUID: guid, Index: 1, MemoryMB: 64, DiskMB: 64,
			LRP: pando.DesiredLRP{ProcessGUID: "proc", AppGUID: "app", Revision: 2, LogRateLimitBytes: -1,
				HealthCheck: pando.HealthCheck{Type: pando.HealthCheckProcess}},
			Ports:       []pando.PortMapping{{ContainerPort: 8080, HostPort: hostPort}},
			ContainerID: containerID("app", guid), Dir: filepath.Join(wd, dirInstances, safeName(guid)), StartedAt: started}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	writeRecord(t, wd, rec("kept", port))
	writeRecord(t, wd, rec("gone", port+1)) // its container did not survive
	for _, g := range []string{"kept", "gone"} {
		if err := os.MkdirAll(filepath.Join(wd, dirInstances, g, "home"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(wd, dirRecords, "junk.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	fb := fake.New(fake.Options{})
	a := &fakeAdopter{backend: fb, running: map[string]bool{"app-kept": true}, outs: map[string]container.Output{}}
	rc, logs := newRecorder(), newSink()
	r, err := New(Config{ID: "cell-a", Backend: fb, Adopter: a, Blobs: newMemBlobs(), Reporter: rc, Logs: logs,
		WorkDir: wd, PortRange: [2]int{port, port + 50}, TotalMemoryMB: 1024, TotalDiskMB: 1024})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })

	if a.adopted != 1 || a.cleanups != 1 {
		t.Fatalf("adopted %d before Cleanup, Cleanup called %d times; want 1 and 1", a.adopted, a.cleanups)
	}
	inv := r.Inventory()
	if len(inv.Actuals) != 1 {
		t.Fatalf("inventory %+v, want the one adopted instance", inv.Actuals)
	}
	got := inv.Actuals[0]
	if got.InstanceGUID != "kept" || got.State != pando.ActualRunning || got.Revision != 2 || got.Index != 1 ||
		!got.StartedAt.Equal(started) || got.Port != port || got.Address != DefaultHostAddr {
		t.Fatalf("adopted instance reported as %+v", got)
	}
	// The instance that was not adopted: record and files gone.
	if _, err := os.Stat(filepath.Join(wd, dirInstances, "gone")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("files of the instance not adopted: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(wd, dirRecords)); len(ents) != 1 {
		t.Errorf("records left: %d, want the adopted one's", len(ents))
	}
	if _, err := os.Stat(filepath.Join(wd, dirInstances, "kept", "home")); err != nil {
		t.Errorf("the adopted instance's files: %v", err)
	}
	// Nothing reported at adoption: the BBS hears it in the inventory.
	if n := len(rc.states("kept")); n != 0 {
		t.Fatalf("reports at adoption: %v", rc.states("kept"))
	}

	// Its output reaches the log as any instance's; drops are told.
	a.mu.Lock()
	out := a.outs["app-kept"]
	a.mu.Unlock()
	_, _ = out.Stdout.Write([]byte("hello after the restart\n"))
	logs.wait(t, 5*time.Second, pando.LogSourceApp, "hello after the restart")
	out.Dropped(12, 3456)
	logs.wait(t, 5*time.Second, pando.LogSourceApp, "12 log lines (3456 bytes) dropped")

	// Its crash is seen and reported.
	if err := fb.Exit("app-kept", container.ExitStatus{Code: 3}); err != nil {
		t.Fatal(err)
	}
	ev := rc.wait(t, 5*time.Second, "CRASHED report", func(e event) bool {
		return e.kind == "changed" && e.actual.InstanceGUID == "kept" && e.actual.State == pando.ActualCrashed
	})
	wantCrash(t, ev.actual, pando.Failure{Kind: pando.FailureExited, ExitCode: 3})
	if _, err := os.Stat(r.recordPath("kept")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("record after the crash: %v", err)
	}
}

func (a *fakeAdopter) AdoptEnded(ctx context.Context, id string, out container.Output) (container.Container, error) {
	c, err := a.Adopt(ctx, id, out)
	if err != nil {
		return nil, err
	}
	if st, ok := a.ended[id]; ok {
		if err := a.backend.Exit(id, st); err != nil {
			return nil, err
		}
	}
	return c, nil
}
