package simcell

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	pando "github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/bbs"
	"github.com/pandoplatform/pando/internal/cell"
)

// fakePuller serves every image as one empty layer and counts its pulls.
type fakePuller struct {
	dir   string
	mu    sync.Mutex
	pulls int
}

func (p *fakePuller) Pull(ctx context.Context, image string, creds *pando.ImageCredentials, maxBytes int64) ([]string, func(), error) {
	p.mu.Lock()
	p.pulls++
	p.mu.Unlock()
	return []string{p.dir}, func() {}, nil
}

func (p *fakePuller) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pulls
}

// Two cells; the second (which loses ties on its id) holds the image's
// layers, as after staging prefetched them there. The first instance of
// the image goes to it and starts from its layers; a second instance
// goes to the other cell (the spread comes first).
func TestSimulatedCells_dockerInstanceLandsOnTheCellWithTheLayers(t *testing.T) {
	const digest = "sha256:0c9d6e4f2a8b1c3d5e7f9a0b2c4d6e8f0a1b3c5d7e9f1a2b4c6d8e0f2a3b5c7d"
	b, ctx := runBoard(t, bbs.Config{})
	c := newTestCluster(t, ctx, Config{Dir: t.TempDir(), Reporter: b, AddrBase: 91})
	pullers := map[string]*fakePuller{}
	cellIDs := []string{}
	for k, images := range [][]string{nil, {digest}} {
		p := &fakePuller{dir: t.TempDir()}
		reps, err := c.Add(1, func(cfg *cell.Config) {
			cfg.Images = p
			cfg.CachedImages = func() []string { return images }
		}, b.RegisterCell)
		if err != nil {
			t.Fatal(err)
		}
		pullers[reps[0].ID()] = p
		cellIDs = append(cellIDs, reps[0].ID())
		if k == 1 {
			s, err := reps[0].State(t.Context())
			if err != nil || len(s.Images) != 1 || s.Images[0] != digest {
				t.Fatalf("the cell's state names images %q (%v), want [%s]", s.Images, err, digest)
			}
		}
	}
	plain, layered := cellIDs[0], cellIDs[1]

	lrp := pando.DesiredLRP{
		ProcessGUID: "docker-web", Revision: 1, AppGUID: "app-docker-web", ProcessType: "web",
		Instances: 1, MemoryMB: 256, DiskMB: 256, Image: "registry.example/web@" + digest,
		Docker: &pando.ExecutionMetadata{Cmd: []string{"/server"}}, Ports: []int{8080},
		HealthCheck: pando.HealthCheck{Type: pando.HealthCheckPort},
	}
	if err := b.DesireLRP(t.Context(), lrp); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "instance 0 running", time.Minute, func() (bool, string) {
		n, all := running(t, b, lrp.ProcessGUID)
		return n == 1, fmt.Sprint(all)
	})
	if a := actuals(t, b, lrp.ProcessGUID)[0]; a.CellID != layered {
		t.Fatalf("instance 0 on %s, want %s (the cell with the layers)", a.CellID, layered)
	}
	if pullers[layered].count() != 1 || pullers[plain].count() != 0 {
		t.Fatalf("pulls: %d on the cell with the layers, %d on the other; want 1 and 0",
			pullers[layered].count(), pullers[plain].count())
	}

	two := 2
	if err := b.UpdateDesiredLRP(t.Context(), lrp.ProcessGUID, pando.DesiredLRPUpdate{Instances: &two}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two instances running", time.Minute, func() (bool, string) {
		n, all := running(t, b, lrp.ProcessGUID)
		return n == 2, fmt.Sprint(all)
	})
	for _, a := range actuals(t, b, lrp.ProcessGUID) {
		if want := map[int]string{0: layered, 1: plain}[a.Index]; a.CellID != want {
			t.Errorf("instance %d on %s, want %s", a.Index, a.CellID, want)
		}
	}
}
