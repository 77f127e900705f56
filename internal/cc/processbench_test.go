package cc

import (
	"fmt"
	"net/http"
	"testing"
)

// BenchmarkScaleProcess is cf scale -i of a started app on a SQLite CCDB
// in a temp dir: the process update (read, quota check and write in one
// transaction), its audit event and the sync to the runtime.
func BenchmarkScaleProcess(b *testing.B) {
	e := ptNew(b, nil)
	app := e.startedApp("bench")
	n := 0
	for b.Loop() {
		n++
		if rec := e.scale(app, fmt.Sprintf(`{"instances":%d}`, 1+n%2)); rec.Code != http.StatusAccepted {
			b.Fatalf("scale: %d %s", rec.Code, rec.Body.String())
		}
	}
}
