package cell

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
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
