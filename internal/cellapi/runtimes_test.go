package cellapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/cellauth"
	"github.com/pandoplatform/pando/internal/runtimetest"
)

// reportingCell is a simulated cell whose state reports runtimes.
type reportingCell struct {
	*runtimetest.Cell
	runtimes map[string][]pando.StackRuntime
}

func (c reportingCell) State(ctx context.Context) (pando.CellState, error) {
	s, err := c.Cell.State(ctx)
	s.Runtimes = c.runtimes
	return s, err
}

// A joined cell's state tells the server its stacks' runtimes (what
// `pando stacks` shows on pando api), kept to what a cell reports; an
// older cell's tells none.
func TestJoinedCell_reportsItsStacksRuntimes(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	creds, err := cellauth.Join(ctx, http.DefaultClient, f.apiURL, f.tok, "cell-a", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cell := reportingCell{Cell: runtimetest.NewCell("cell-a", 4096), runtimes: map[string][]pando.StackRuntime{
		"host": {
			{Name: "python3", Version: "3.11.2"}, {Name: "node", Version: "20.1.2"},
			{Name: "node", Version: "18.0.0"},                          // a second node
			{Name: "go", Version: "1.22\x1b[31m"},                      // not a version
			{Name: "rm -rf", Version: "1.0"},                           // not a runtime
			{Name: "java", Version: "17." + string(make([]byte, 100))}, // too long
		},
		"bookworm": {{Name: "node", Version: "18.19.0"}}, // a stack the cell does not offer
	}}
	client := NewServerClient(creds, nil)
	rep := httptest.NewUnstartedServer(NewRepHandler(cell))
	rep.TLS = cellauth.ServerTLS(creds.Cert, creds.Pool)
	rep.StartTLS()
	t.Cleanup(rep.Close)
	st, _ := cell.State(ctx)
	if err := client.Register(ctx, rep.URL, st); err != nil {
		t.Fatal(err)
	}
	f.join(t, "cell-old")

	states, err := f.board.Cells(ctx)
	if err != nil || len(states) != 2 {
		t.Fatalf("cells %+v %v, want two", states, err)
	}
	want := map[string][]pando.StackRuntime{"host": {{Name: "node", Version: "20.1.2"}, {Name: "python3", Version: "3.11.2"}}}
	if states[0].ID != "cell-a" || !reflect.DeepEqual(states[0].Runtimes, want) {
		t.Errorf("cell-a reports %+v, want %+v", states[0].Runtimes, want)
	}
	if states[1].ID != "cell-old" || states[1].Runtimes != nil {
		t.Errorf("the older cell reports %+v, want nothing", states[1].Runtimes)
	}
}
