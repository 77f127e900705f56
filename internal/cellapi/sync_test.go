package cellapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/cell"
	"github.com/pandoplatform/pando/internal/cellauth"
	"github.com/pandoplatform/pando/internal/container"
	"github.com/pandoplatform/pando/internal/simcell"
)

// countingSyncer counts a cell's syncs.
type countingSyncer struct {
	cell.Syncer
	n atomic.Int64
}

func (s *countingSyncer) SyncCell(ctx context.Context, id string, inv pando.CellInventory) (pando.CellSyncAnswer, error) {
	s.n.Add(1)
	return s.Syncer.SyncCell(ctx, id, inv)
}

// Issue 8 (defence in depth), over the cell API: a joined cell (the real
// rep on fake containers) whose instances the server lost track of (it
// unregistered the cell, and the inventory the cell sent on coming back
// was lost) runs them beside the ones the server placed again; its first
// sync over mutual TLS stops the forgotten ones and keeps the server's,
// the one still starting (CLAIMED, never healthy) included.
func TestSync_aJoinedCellStopsWhatTheServerForgotAndKeepsWhatIsStarting(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	const id = "cell-r"
	creds, err := cellauth.Join(ctx, http.DefaultClient, f.apiURL, f.tok, id, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	client := NewServerClient(creds, nil)
	cluster, err := simcell.New(ctx, simcell.Config{Dir: t.TempDir(), MemoryMB: 4096, AddrBase: 85,
		Handler: func(spec container.Spec, _ int) http.Handler {
			if slices.ContainsFunc(spec.Env, func(kv string) bool { return strings.Contains(kv, `"app-slow"`) }) {
				return nil // never healthy: stays CLAIMED
			}
			return http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := cluster.Shutdown(sctx); err != nil {
			t.Errorf("shutdown cell: %v", err)
		}
	})
	reps, err := cluster.Add(1, func(c *cell.Config) { c.ID, c.Reporter = id, client }, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep := reps[0]
	srv := httptest.NewUnstartedServer(NewRepHandler(rep))
	srv.TLS = cellauth.ServerTLS(creds.Cert, creds.Pool)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	register := func() {
		t.Helper()
		st, _ := rep.State(ctx)
		if err := client.Register(ctx, srv.URL, st); err != nil {
			t.Fatal(err)
		}
	}
	register()

	on := func(process string) []pando.ActualLRP {
		as, _ := f.board.ActualLRPs(ctx, process)
		return as
	}
	if err := f.board.DesireLRP(ctx, cluster.LRP("web", 2, 256)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "web RUNNING on the joined cell", func() bool {
		as := on("web")
		return len(as) == 2 && as[0].State == pando.ActualRunning && as[1].State == pando.ActualRunning
	})
	old := map[string]bool{}
	for _, a := range on("web") {
		old[a.InstanceGUID] = true
	}

	// The server loses the cell and scales web down meanwhile; the cell
	// comes back, and the server places web's index 0 and slow on it.
	f.board.UnregisterCell(id)
	if err := f.board.DesireLRP(ctx, cluster.LRP("web", 1, 256)); err != nil {
		t.Fatal(err)
	}
	register()
	if err := f.board.DesireLRP(ctx, cluster.LRP("slow", 1, 256)); err != nil {
		t.Fatal(err)
	}
	var want []string
	eventually(t, "web running again and slow starting", func() bool {
		web, slow := on("web"), on("slow")
		if len(web) != 1 || web[0].State != pando.ActualRunning || old[web[0].InstanceGUID] ||
			len(slow) != 1 || slow[0].State != pando.ActualClaimed {
			return false
		}
		want = []string{web[0].InstanceGUID, slow[0].InstanceGUID}
		slices.Sort(want)
		return true
	})
	runs := func() []string {
		var out []string
		for _, a := range rep.Inventory().Actuals {
			out = append(out, a.InstanceGUID)
		}
		slices.Sort(out)
		return out
	}
	if got := runs(); len(got) != 4 {
		t.Fatalf("the cell runs %v, want web's two old instances besides %v", got, want)
	}

	syncer := &countingSyncer{Syncer: client}
	go rep.RunSync(ctx, syncer, 100*time.Millisecond)
	eventually(t, "the forgotten instances stopped", func() bool { return slices.Equal(runs(), want) })
	if n := syncer.n.Load(); n != 1 {
		t.Errorf("%d syncs before the forgotten instances stopped, want the first", n)
	}
	start := syncer.n.Load()
	eventually(t, "three more syncs", func() bool { return syncer.n.Load() >= start+3 })
	if got := runs(); !slices.Equal(got, want) {
		t.Errorf("after more syncs the cell runs %v, want %v", got, want)
	}
	if slow := on("slow"); len(slow) != 1 || slow[0].State != pando.ActualClaimed || !slices.Contains(want, slow[0].InstanceGUID) {
		t.Errorf("slow %+v, want its instance still CLAIMED", slow)
	}
}
