package cellapi

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/cell"
	"github.com/pandoplatform/pando/internal/cellauth"
	"github.com/pandoplatform/pando/internal/simcell"
)

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
	jc := f.joinSim(t, id, simcell.Config{MemoryMB: 4096, AddrBase: 85, Handler: simcell.NeverHealthy("slow")}, nil)
	client, cluster, rep, register := jc.client, jc.cluster, jc.rep, jc.register
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
	if got := simcell.InstanceGUIDs(rep); len(got) != 4 {
		t.Fatalf("the cell runs %v, want web's two old instances besides %v", got, want)
	}

	simcell.CheckSyncLeaves(t, ctx, rep, client, want)
	if slow := on("slow"); len(slow) != 1 || slow[0].State != pando.ActualClaimed || !slices.Contains(want, slow[0].InstanceGUID) {
		t.Errorf("slow %+v, want its instance still CLAIMED", slow)
	}
}

// simJoined is a simulated cell (the real rep) joined to the fixture over the
// cell API: its server client, its cluster, the rep and a register that
// registers it (again) with its current state.
type simJoined struct {
	client   *ServerClient
	cluster  *simcell.Cluster
	rep      *cell.Rep
	register func()
}

// joinSim joins cell id to f's server, runs it in a simulated cluster of
// cfg (reporting through wrap(client) unless wrap is nil) and serves its
// rep API over mutual TLS until the test ends. It is not registered yet.
func (f *fixture) joinSim(t *testing.T, id string, cfg simcell.Config, wrap func(pando.CellReporter) pando.CellReporter) simJoined {
	t.Helper()
	ctx := t.Context()
	creds, err := cellauth.Join(ctx, http.DefaultClient, f.apiURL, f.tok, id, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	client := NewServerClient(creds, nil)
	var reporter pando.CellReporter = client
	if wrap != nil {
		reporter = wrap(client)
	}
	cluster := simcell.NewForTest(t, ctx, cfg)
	reps, err := cluster.Add(1, func(c *cell.Config) { c.ID, c.Reporter = id, reporter }, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep := reps[0]
	srv := httptest.NewUnstartedServer(NewRepHandler(rep))
	srv.TLS = cellauth.ServerTLS(creds.Cert, creds.Pool)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return simJoined{client: client, cluster: cluster, rep: rep, register: func() {
		t.Helper()
		st, _ := rep.State(ctx)
		if err := client.Register(ctx, srv.URL, st); err != nil {
			t.Fatal(err)
		}
	}}
}
