package fake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/container"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func httpGet(t *testing.T, c container.Container, port int) (string, error) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return c.Dial(ctx, port) },
	}}
	resp, err := client.Get("http://app/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestContainer_runsUntilStopped(t *testing.T) {
	ctx := ctxT(t)
	b := New(Options{})
	c, err := b.Run(ctx, container.Spec{ID: "a", Args: []string{"app"}, MemoryBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := c.Wait(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait on a running container: %v", err)
	}
	if s, _ := c.Stats(ctx); s.MemoryLimit != 1<<20 {
		t.Fatalf("stats %+v, want the spec's memory limit", s)
	}
	if err := c.Stop(ctx, time.Second); err != nil {
		t.Fatal(err)
	}
	if st, err := c.Wait(ctx); err != nil || st.Code != 143 || !st.Signaled {
		t.Fatalf("after Stop: %+v %v", st, err)
	}
	if got := b.IDs(); len(got) != 1 {
		t.Fatalf("IDs %v: a stopped container exists until destroyed", got)
	}
	for i := 0; i < 2; i++ {
		if err := c.Destroy(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := b.IDs(); len(got) != 0 {
		t.Fatalf("IDs %v after Destroy", got)
	}
	if _, err := c.Stats(ctx); !pando.IsNotFound(err) {
		t.Fatalf("Stats after Destroy: %v", err)
	}
}

func TestContainer_exitAndProcess(t *testing.T) {
	ctx := ctxT(t)
	b := New(Options{Process: func(ctx context.Context, spec container.Spec) container.ExitStatus {
		if spec.Args[0] == "task" {
			fmt.Fprintln(spec.Stdout, "staged")
			return container.ExitStatus{Code: 0}
		}
		<-ctx.Done() // a server: runs until stopped, exits on "SIGTERM"
		return container.ExitStatus{Code: 143, Signaled: true}
	}})
	var out strings.Builder
	task, err := b.Run(ctx, container.Spec{ID: "task", Args: []string{"task"}, Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := task.Wait(ctx); err != nil || st.Code != 0 || out.String() != "staged\n" {
		t.Fatalf("task: %+v %v %q", st, err, out.String())
	}

	lrp, err := b.Run(ctx, container.Spec{ID: "lrp", Args: []string{"web"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Exit("lrp", container.ExitStatus{Code: 137, OOMKilled: true, Signaled: true}); err != nil {
		t.Fatal(err)
	}
	if st, _ := lrp.Wait(ctx); !st.OOMKilled {
		t.Fatalf("Exit not reported: %+v", st)
	}
	if _, err := b.Run(ctx, container.Spec{ID: "lrp", Args: []string{"web"}}); pando.ErrorKindOf(err) != pando.EConflict {
		t.Fatalf("duplicate id: %v", err)
	}
}

func TestDial_servesRegisteredHandlers(t *testing.T) {
	ctx := ctxT(t)
	b := New(Options{Handler: func(spec container.Spec, port int) http.Handler {
		if port != 8080 {
			return nil
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "default ", spec.ID) })
	}})
	b.Serve("special", 8080, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "special") }))
	a, _ := b.Run(ctx, container.Spec{ID: "a", Args: []string{"x"}})
	s, _ := b.Run(ctx, container.Spec{ID: "special", Args: []string{"x"}})
	if got, err := httpGet(t, a, 8080); err != nil || got != "default a" {
		t.Fatalf("a: %q %v", got, err)
	}
	if got, err := httpGet(t, s, 8080); err != nil || got != "special" {
		t.Fatalf("special: %q %v", got, err)
	}
	if _, err := a.Dial(ctx, 9000); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("unserved port: %v", err)
	}
	conn, err := a.Dial(ctx, 8080)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Fatal("open connection survived Destroy")
	}
	if _, err := a.Dial(ctx, 8080); err == nil {
		t.Fatal("Dial after Destroy succeeded")
	}
}

func TestBackend_manyContainers(t *testing.T) {
	ctx := ctxT(t)
	b := New(Options{RunError: func(spec container.Spec) error {
		if spec.MemoryBytes > 1<<30 {
			return pando.Errorf(pando.EInsufficient, "insufficient resources: memory")
		}
		return nil
	}})
	var cs []container.Container
	for i := 0; i < 5000; i++ {
		c, err := b.Run(ctx, container.Spec{ID: fmt.Sprint("c", i), Args: []string{"x"}})
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	if _, err := b.Run(ctx, container.Spec{ID: "big", Args: []string{"x"}, MemoryBytes: 2 << 30}); pando.ErrorKindOf(err) != pando.EInsufficient {
		t.Fatalf("RunError ignored: %v", err)
	}
	if b.Runs() != 5000 || len(b.IDs()) != 5000 {
		t.Fatalf("runs %d ids %d", b.Runs(), len(b.IDs()))
	}
	for _, c := range cs {
		_ = c.Destroy(ctx)
	}
	if len(b.IDs()) != 0 {
		t.Fatal("containers left after Destroy")
	}
}
