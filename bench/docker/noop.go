package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/pandoplatform/pando/internal/cgroupclean"
	"github.com/pandoplatform/pando/internal/container"
	"github.com/pandoplatform/pando/internal/container/runc"
)

// noopRunner runs a no-op container with the runc backend Pando's cells
// use (host stack, no volume, no image): what one container start costs
// however the rootfs arrives. The floor (fetch + untar) has no
// container start in it; floor + this is the least a cold start can cost.
type noopRunner struct {
	be     *runc.Backend
	parent string // cgroup parent, removed by close
	n      int
}

func newNoopRunner(pandoBin, dir string) (*noopRunner, error) {
	stateDir := filepath.Join(dir, "noop-containers")
	parent := cgroupclean.DefaultParent(stateDir)
	be, err := runc.New(runc.Config{StateDir: stateDir, LifecycleBinary: pandoBin, CgroupParent: parent})
	if err != nil {
		return nil, fmt.Errorf("no-op container backend: %w", err)
	}
	return &noopRunner{be: be, parent: parent}, nil
}

// run times one `runc run` of /bin/true: Run (to the container's pid)
// and Wait (its exit); the Destroy after it is not counted.
func (r *noopRunner) run(ctx context.Context) (time.Duration, error) {
	r.n++
	start := time.Now()
	ctr, err := r.be.Run(ctx, container.Spec{ID: fmt.Sprintf("bench-noop-%d", r.n), Args: []string{"/bin/true"}})
	if err != nil {
		return 0, fmt.Errorf("no-op container: %w", err)
	}
	st, werr := ctr.Wait(ctx)
	took := time.Since(start)
	derr := ctr.Destroy(context.WithoutCancel(ctx))
	switch {
	case werr != nil:
		return 0, fmt.Errorf("no-op container: %w", werr)
	case derr != nil:
		return 0, fmt.Errorf("no-op container: %w", derr)
	case st.Code != 0:
		return 0, fmt.Errorf("no-op container: /bin/true exited %d", st.Code)
	}
	return took, nil
}

func (r *noopRunner) close(ctx context.Context) error {
	err := r.be.Cleanup(ctx)
	r.be.Close()
	cgroupclean.Remove(r.parent)
	return err
}
