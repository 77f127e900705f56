package simcell

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	pando "github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/bbs"
	"github.com/pandoplatform/pando/internal/blobstore/fs"
	"github.com/pandoplatform/pando/internal/container"
)

// logSink keeps the lines it gets.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (s *logSink) Emit(e pando.LogEnvelope) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines = append(s.lines, e.SourceType+" "+string(e.Payload))
}

func (s *logSink) has(line string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Contains(s.lines, line)
}

// A cluster on the caller's blobstore, log sink, container process,
// handler and stats: the cells read the droplet from that blobstore, the
// process's output reaches the sink, a refusing handler keeps instances
// from becoming healthy, and stats report the figures given.
func TestSimulatedCells_runOnTheCallersBlobsLogsProcessAndHandler(t *testing.T) {
	b, ctx := runBoard(t, bbs.Config{})
	blobs, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tgz, err := DropletTgz()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := blobs.Put(ctx, "droplets/mine", bytes.NewReader(tgz)); err != nil {
		t.Fatal(err)
	}
	sink := &logSink{}
	c := newTestCluster(t, ctx, Config{
		Dir: t.TempDir(), Reporter: b, Blobs: blobs, Logs: sink, AddrBase: 87,
		Process: func(ctx context.Context, spec container.Spec) container.ExitStatus {
			fmt.Fprintln(spec.Stdout, "hello from", spec.ID)
			<-ctx.Done()
			return container.ExitStatus{Code: 143, Signaled: true}
		},
		Handler: NeverHealthy("sick"),
		Stats:   container.Stats{MemoryBytes: 7 << 20},
	})
	if ok, _ := blobs.Exists(ctx, DropletKey); ok {
		t.Error("the cluster stored its droplet in the caller's blobstore")
	}
	cells, err := c.Add(1, nil, b.RegisterCell)
	if err != nil {
		t.Fatal(err)
	}
	for _, guid := range []string{"well", "sick"} {
		lrp := c.LRP(guid, 1, 128)
		lrp.DropletKey, lrp.LogRateLimitBytes = "droplets/mine", -1
		if err := b.DesireLRP(ctx, lrp); err != nil {
			t.Fatal(err)
		}
	}
	var well pando.ActualLRP
	waitFor(t, "the healthy instance RUNNING", 10*time.Second, func() (bool, string) {
		n, all := running(t, b, "well")
		if n == 1 {
			well = all[0]
		}
		return n == 1, fmt.Sprint(all)
	})
	waitFor(t, "its output in the sink", 10*time.Second, func() (bool, string) {
		return sink.has("APP/PROC/WEB hello from app-" + well.InstanceGUID), fmt.Sprint(sink.lines)
	})
	if st, err := cells[0].Stats(ctx, well.InstanceGUID); err != nil || st.MemoryBytes != 7<<20 {
		t.Errorf("stats %+v %v, want the given 7 MB", st, err)
	}
	// Its start is reported on its own: wait for the claim, then it must
	// stay short of RUNNING (its ports refuse the health check).
	waitFor(t, "the instance whose ports refuse CLAIMED", 10*time.Second, func() (bool, string) {
		_, all := running(t, b, "sick")
		return len(all) == 1 && all[0].State == pando.ActualClaimed, fmt.Sprint(all)
	})
	if n, all := running(t, b, "sick"); n != 0 {
		t.Errorf("the instance whose ports refuse: %+v, want it not RUNNING", all)
	}
}
