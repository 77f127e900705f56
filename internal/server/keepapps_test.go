package server

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/container"
	"github.com/pandoplatform/pando/internal/container/fake"
)

// With --keep-apps-on-stop, a stopping server leaves cell-0's running
// instance alone: its container is neither stopped nor destroyed and its
// record stays for the next start; without, the stop removes both.
func TestRun_keepAppsOnStopLeavesTheLocalCellsContainersRunning(t *testing.T) {
	for _, keep := range []bool{true, false} {
		t.Run(map[bool]string{true: "kept", false: "stopped"}[keep], func(t *testing.T) {
			// Each container runs until stopped or destroyed, and says so.
			ended := make(chan string, 4)
			backend := fake.New(fake.Options{Process: func(ctx context.Context, spec container.Spec) container.ExitStatus {
				<-ctx.Done()
				ended <- spec.ID
				return container.ExitStatus{Code: 143, Signaled: true}
			}})
			ready := make(chan [2]string, 1)
			cfg := platformConfig(t, ready)
			cfg.CacheDir = t.TempDir()
			readySeeds(t, cfg.CacheDir)
			cfg.CellMemoryMB, cfg.CellDiskMB = 2048, 4096
			cfg.backend = fakeBackend{backend}
			cfg.KeepAppsOnStop = keep
			cfg = cfg.withDefaults()
			p, local, closeAll, err := openServer(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			srv := start(t, func(ctx context.Context) error {
				defer closeAll()
				return p.run(ctx, local)
			})
			<-ready

			ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
			defer cancel()
			if _, err := p.blobs.Put(ctx, pando.DropletBlobKey("d1"), bytes.NewReader(tinyDroplet(t))); err != nil {
				t.Fatal(err)
			}
			lrp := pando.DesiredLRP{ProcessGUID: "web-1", AppGUID: "app-1", Instances: 1, MemoryMB: 64, DiskMB: 64,
				DropletKey: pando.DropletBlobKey("d1"), StartCommand: "./run",
				HealthCheck: pando.HealthCheck{Type: pando.HealthCheckProcess}}
			if err := p.board.DesireLRP(ctx, lrp); err != nil {
				t.Fatal(err)
			}
			records := filepath.Join(cfg.DataDir, "cell", "records")
			var id string
			for deadline := time.Now().Add(bootTimeout); id == ""; time.Sleep(20 * time.Millisecond) {
				if ents, _ := os.ReadDir(records); len(ents) == 1 && len(backend.IDs()) == 1 {
					id = backend.IDs()[0]
				} else if time.Now().After(deadline) {
					t.Fatalf("no RUNNING recorded instance within %s: containers %v", bootTimeout, backend.IDs())
				}
			}

			srv.stop(t)
			ents, _ := os.ReadDir(records)
			ids := backend.IDs()
			if !keep {
				if len(ids) != 0 || len(ents) != 0 || len(ended) != 1 {
					t.Fatalf("a plain stop left containers %v and %d records, want none", ids, len(ents))
				}
				return
			}
			if len(ids) != 1 || ids[0] != id || len(ents) != 1 {
				t.Fatalf("after the stop: containers %v, %d records; want %s and its record", ids, len(ents), id)
			}
			select {
			case id := <-ended:
				t.Fatalf("container %s was stopped", id)
			default:
			}
			if vols := backend.Volumes(); len(vols) != 1 {
				t.Errorf("volumes %v after the stop, want the instance's", vols)
			}
		})
	}
}

// tinyDroplet is a droplet tgz of one script.
func tinyDroplet(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	body := []byte("#!/bin/sh\nsleep 1000\n")
	if err := tw.WriteHeader(&tar.Header{Name: "app/run", Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
