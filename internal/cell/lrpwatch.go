package cell

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/container"
)

// An instance's life once started: its container created, its health
// awaited, its liveness watched until it exits, fails or is stopped.

type waitResult struct {
	st  container.ExitStatus
	err error
}

// live creates the container, waits for it to become healthy and watches
// it until it exits, fails its liveness check or is stopped. It returns
// why it crashed (unused when a stop was requested).
func (r *Rep) live(i *instance) *pando.Failure {
	ctx := i.stopCtx
	// What the start downloads (the droplet, the image's layers) comes
	// first, outside the cell's start slots: a slow download holds none.
	files, err := r.instanceFiles(ctx, i)
	defer files.close()
	if err != nil {
		return r.startFailed(ctx, i, err)
	}
	// One of the cell's bounded start slots, from the volume and files to
	// the running process; a stop while waiting for it ends the wait.
	waited := false
	release, err := r.starts.acquire(ctx, false, func(running, ahead int) {
		if !waited { // then only its details follow its place in line
			r.cellLog(i, "OUT", "Cell %s is running %d container starts: instance %s waits for a start slot (%d ahead)", r.cfg.ID, running, i.guid, ahead)
		}
		waited = true
		r.setDetails(i, fmt.Sprintf("%s %s (%d ahead)", WaitingForStartSlot, r.cfg.ID, ahead))
	})
	if err != nil {
		return &pando.Failure{Kind: pando.FailureStopped}
	}
	if waited { // its start begins: the BBS times it from now
		r.setDetails(i, "")
	}
	r.cellLog(i, "OUT", "Cell %s creating container for instance %s", r.cfg.ID, i.guid)
	spec, err := r.instanceSpec(ctx, i, files)
	if err == nil {
		var ctr container.Container
		ctr, err = r.cfg.Backend.Run(ctx, spec)
		if err == nil {
			i.mu.Lock()
			i.ctr, i.startedAt = ctr, time.Now()
			i.mu.Unlock()
		}
	}
	release()
	if err != nil {
		return r.startFailed(ctx, i, err)
	}
	ctr := i.container()
	r.cellLog(i, "OUT", "Cell %s successfully created container for instance %s", r.cfg.ID, i.guid)
	return r.watch(i, ctr, false)
}

// startFiles is what a start downloaded before it took its start slot:
// the droplet (open) or the image's layers.
type startFiles struct {
	droplet *os.File
	layers  []string
	// prepared: a docker instance's volume was made beside its pull
	// (pullImage), failing with prepErr.
	prepared bool
	prepErr  error
}

func (f startFiles) close() {
	if f.droplet != nil {
		f.droplet.Close()
	}
}

// instanceFiles downloads what the instance's start needs: the image's
// layers (kept until teardown) or its droplet.
func (r *Rep) instanceFiles(ctx context.Context, i *instance) (startFiles, error) {
	lrp := i.lrp
	switch {
	case lrp.Image != "":
		return r.pullImage(ctx, i)
	case lrp.DropletKey != "":
		f, err := r.openDroplet(ctx, lrp.DropletKey, lrp.DropletSHA256)
		return startFiles{droplet: f}, err
	}
	return startFiles{}, nil
}

// startFailed is why an instance whose container could not be made
// crashed (or stopped, when a stop cut its start short), said in its log.
func (r *Rep) startFailed(ctx context.Context, i *instance, err error) *pando.Failure {
	if ctx.Err() != nil {
		return &pando.Failure{Kind: pando.FailureStopped}
	}
	r.log.Error("create container", "instance_guid", i.guid, "error", err)
	hint := noShellHint(i.lrp.Image, err)
	r.cellLog(i, "ERR", "Cell %s failed to create container for instance %s: %v%s", r.cfg.ID, i.guid, err, parenthesized(hint))
	return &pando.Failure{Kind: pando.FailureStartFailed, Detail: err.Error(), Hint: hint}
}

// watch forwards the instance's host ports into ctr, waits for it to
// become healthy (unless adopted: it was RUNNING already), and checks its
// liveness until it exits, fails or is stopped. It returns why it crashed
// (unused when a stop was requested).
func (r *Rep) watch(i *instance, ctr container.Container, adopted bool) *pando.Failure {
	ctx := i.stopCtx
	waitCtx, waitCancel := context.WithCancel(context.Background())
	defer waitCancel()
	exited := make(chan waitResult, 1)
	go func() {
		st, err := ctr.Wait(waitCtx)
		exited <- waitResult{st, err}
	}()
	var fws []*forwarder
	defer func() {
		for _, f := range fws {
			f.Close()
		}
	}()
	for k, ln := range i.listeners {
		cport := i.ports[k].ContainerPort
		fws = append(fws, startForwarder(ln, func(ctx context.Context) (net.Conn, error) {
			return ctr.Dial(ctx, cport)
		}, r.log.With("instance_guid", i.guid, "port", cport)))
	}

	check := r.healthCheck(i, ctr)
	if !adopted {
		if why, ok := r.awaitHealthy(ctx, i, ctr, check, exited); !ok {
			return why
		}
	}
	return r.checkLiveness(ctx, i, ctr, check, exited)
}

// awaitHealthy runs the startup checks until the instance is healthy
// (then it is RUNNING, reported and recorded) or why it is not.
func (r *Rep) awaitHealthy(ctx context.Context, i *instance, ctr container.Container, check func(context.Context) error, exited <-chan waitResult) (*pando.Failure, bool) {
	hc := i.lrp.HealthCheck
	startTimeout := hc.StartTimeout
	if startTimeout <= 0 {
		startTimeout = r.cfg.StartTimeout
	}
	interval := hc.Interval
	if interval <= 0 {
		interval = r.cfg.HealthCheckInterval
	}
	r.cellLog(i, "OUT", "Starting health monitoring of container")
	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	// First check at once, then at slowly growing gaps (nextCheckDelay).
	delay := min(firstCheckDelay, interval)
	started := time.Now()
	hint := r.newListenHint(i, ctr, checkPort(i))
	for {
		lastErr := check(ctx)
		if lastErr == nil {
			break
		}
		hint.failed(ctx)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
			delay = nextCheckDelay(delay, time.Since(started), interval)
			continue
		case <-deadline.C:
			t.Stop()
			r.cellLog(i, "ERR", "Timed out after %s: health check never passed.", startTimeout)
			return hint.explain(&pando.Failure{Kind: pando.FailureHealthCheckTimeout, Timeout: startTimeout, Detail: lastErr.Error()}), false
		case w := <-exited:
			t.Stop()
			return r.exitFailure(i, w), false
		case <-ctx.Done():
			t.Stop()
			r.stopContainer(i, ctr)
			return &pando.Failure{Kind: pando.FailureStopped}, false
		}
	}
	r.cellLog(i, "OUT", "Container became healthy")
	i.mu.Lock()
	i.state = pando.ActualRunning
	i.mu.Unlock()
	r.reportActual(r.actual(i, pando.ActualRunning))
	// After the report, off the path to RUNNING: a restarted server
	// adopts the instance from this record.
	if err := r.saveRecord(i); err != nil {
		r.log.Warn("record running instance (a server restart then places it again)", "instance_guid", i.guid, "error", err)
	}
	return nil, true
}

// checkLiveness checks a RUNNING instance until it exits, fails a check
// or is stopped, and returns why it crashed.
func (r *Rep) checkLiveness(ctx context.Context, i *instance, ctr container.Container, check func(context.Context) error, exited <-chan waitResult) *pando.Failure {
	hc := i.lrp.HealthCheck
	var tick <-chan time.Time
	if hc.Type != pando.HealthCheckProcess {
		t := time.NewTicker(r.cfg.LivenessInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-tick:
			if err := r.livenessFailure(ctx, i, check); err != nil {
				r.cellLog(i, "ERR", "Container became unhealthy")
				r.stopContainer(i, ctr)
				return &pando.Failure{Kind: pando.FailureUnhealthy, Detail: err.Error()}
			}
		case w := <-exited:
			return r.exitFailure(i, w)
		case <-ctx.Done():
			r.stopContainer(i, ctr)
			return &pando.Failure{Kind: pando.FailureStopped}
		}
	}
}

// livenessFailure runs one liveness check and returns why the instance
// is unhealthy, or nil. A check the cell could not make, or one cut short
// by a stop, is no failure. An attempt that got no answer in time is
// made once more at once before it counts: on a machine starved of CPU a
// healthy app can miss one short timeout (a refused connection or a bad
// status counts at once, as in CF).
func (r *Rep) livenessFailure(ctx context.Context, i *instance, check func(context.Context) error) error {
	err := check(ctx)
	var slow *noAnswerError
	if errors.As(err, &slow) && ctx.Err() == nil {
		r.log.Warn("liveness check got no answer in time; checking again", "instance_guid", i.guid, "error", err)
		err = check(ctx)
	}
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return nil // a stop is pending: handled next round
	case errors.Is(err, errCellResources):
		// The cell could not check; the app is not to blame.
		r.log.Warn("liveness check skipped", "instance_guid", i.guid, "error", err)
		return nil
	}
	return err
}

// stopContainer stops the process gracefully (or at once when the
// instance is crashing).
func (r *Rep) stopContainer(i *instance, ctr container.Container) {
	r.parkIfDetached()
	stopping, grace := i.stopRequested()
	if stopping {
		r.cellLog(i, "OUT", "Cell %s stopping instance %s", r.cfg.ID, i.guid)
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace+destroyTimeout)
	defer cancel()
	if err := ctr.Stop(ctx, grace); err != nil {
		r.log.Warn("stop container", "instance_guid", i.guid, "error", err)
	}
}

// exitFailure is why an instance whose process ended crashed.
func (r *Rep) exitFailure(i *instance, w waitResult) *pando.Failure {
	if w.err != nil {
		return &pando.Failure{Kind: pando.FailureLost, Detail: w.err.Error()}
	}
	r.emit(i.lrp.AppGUID, appSource(i.lrp), strconv.Itoa(i.index), "OUT", fmt.Sprintf("Exit status %d", w.st.Code))
	f := &pando.Failure{Kind: pando.FailureExited, ExitCode: w.st.Code}
	if w.st.OOMKilled {
		f.Kind = pando.FailureOOM
		r.cellLog(i, "ERR", "Cell %s: instance %s was killed: out of memory (limit %d MB)", r.cfg.ID, i.guid, i.memMB)
	} else if volumeFull(i.vol) {
		f.Kind, f.LimitMB = pando.FailureDiskFull, i.diskMB
		r.cellLog(i, "ERR", "Cell %s: instance %s exited with its disk full (quota %d MB)", r.cfg.ID, i.guid, i.diskMB)
	}
	return f
}

// setDetails sets what the cell says of a CLAIMED instance (also in its
// Inventory) and reports it.
func (r *Rep) setDetails(i *instance, details string) {
	i.mu.Lock()
	i.details = details
	i.mu.Unlock()
	r.reportActual(r.actual(i, pando.ActualClaimed))
}
