package cc

import (
	"fmt"
	"testing"

	"github.com/pandoplatform/pando"
)

// BenchmarkApplyManifest_newApp is the apply_manifest request of a first
// push (trace 06's manifest: env, scale, command, two routes) on a SQLite
// CCDB in a temp dir, a new app each time (the job's poll not timed).
func BenchmarkApplyManifest_newApp(b *testing.B) {
	e := ptNew(b, nil)
	n := 0
	for b.Loop() {
		n++
		yaml := fmt.Sprintf(`applications:
- name: app%d
  instances: 2
  memory: 256M
  buildpack: staticfile_buildpack
  command: $HOME/boot.sh
  env:
    GREETING: hello
    MODE: production
  routes:
  - route: app%d.localhost
  - route: www.localhost/app%d
`, n, n, n)
		rec := e.applyManifest(yaml)
		b.StopTimer()
		if j := e.job(rec); j["state"] != pando.JobComplete {
			b.Fatalf("job = %v", j)
		}
		b.StartTimer()
	}
}
