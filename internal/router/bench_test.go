package router

import (
	"io"
	"net/http"
	"testing"

	"github.com/pandoplatform/pando"
)

type discardSink struct{}

func (discardSink) Emit(pando.LogEnvelope) {}

// BenchmarkRouter_keepAlive measures a routed GET over keep-alive
// connections, client and backend on loopback, with access logging on.
func BenchmarkRouter_keepAlive(b *testing.B) {
	backend := newHandlerBackend(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from the bench app\n")
	}))
	r := New(Config{LogSink: discardSink{}})
	r.SetRoutes("proc", "app", []string{"bench.localhost"})
	r.SetBackends("proc", []Backend{{InstanceGUID: "i", Addr: backend}})
	addr := serve(b, r)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
			req.Host = "bench.localhost"
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}
