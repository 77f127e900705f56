package runc

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/pandoplatform/pando/internal/container"
)

func TestListen_servesTheContainersLoopbackFromTheHostProcess(t *testing.T) {
	b := newBackend(t, t.TempDir())
	ctx := testCtx(t)
	var out, errb syncBuffer
	// The container fetches from its own 127.0.0.1:3128 until the host
	// process listens there (at most ~10 s).
	c, err := b.Run(ctx, container.Spec{
		ID:     "listen",
		Args:   []string{"sh", "-c", "for i in $(seq 100); do busybox wget -q -O - http://127.0.0.1:3128/x && exit 0; sleep 0.1; done; exit 1"},
		Stdout: &out, Stderr: &errb,
		MemoryBytes: 64 << 20, PidsLimit: 100,
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	defer c.Destroy(ctx)
	ln, err := c.(*Container).Listen(ctx, 3128)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	defer ln.Close()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "served by the host process for %s\n", r.URL.Path)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	st, err := c.Wait(ctx)
	if err != nil || st.Code != 0 {
		t.Fatalf("container exit %+v %v; stderr %q", st, err, errb.String())
	}
	if got, want := out.String(), "served by the host process for /x\n"; got != want {
		t.Fatalf("the container read %q, want %q", got, want)
	}
	if _, err := c.(*Container).Listen(ctx, 3128); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Fatalf("Listen in an exited container: %v, want ErrNotRunning", err)
	}
}
