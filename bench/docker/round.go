package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"text/tabwriter"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// pollEvery is how often the bench looks for the first 200 or the second
// instance.
const pollEvery = 5 * time.Millisecond

// oneRound starts a fresh server (empty layer cache), times a cold push
// to the first 200 through the router, the floor, and a warm scale to two
// instances.
func oneRound(ctx context.Context, cfg config, reg *benchRegistry, ref, dir string, i int, noop *noopRunner) (round, error) {
	var rd round
	rdir := filepath.Join(dir, fmt.Sprintf("round%d", i+1))
	if err := os.MkdirAll(rdir, 0o700); err != nil {
		return rd, err
	}
	srv, err := startServer(ctx, cfg.pando, rdir, reg.host)
	if err != nil {
		return rd, err
	}
	defer srv.Stop()
	if cfg.warmupWait > 0 {
		began := time.Now()
		done, err := srv.awaitWarmup(ctx, cfg.warmupWait)
		if err != nil {
			return rd, err
		}
		if !done {
			fmt.Fprintf(os.Stderr, "round %d: no \"start-up warm-up done\" line in the server log within %s (an older pando?); pushing anyway\n", i+1, cfg.warmupWait)
		}
		rd.warmup = time.Since(began)
	}
	app := fmt.Sprintf("dockerbench%d", i+1)
	args := []string{"push", app, "--docker-image", ref}
	var env []string
	if reg.user != "" {
		args = append(args, "--docker-username", reg.user)
		env = []string{"CF_DOCKER_PASSWORD=" + reg.pass}
	}

	meter := startMeter(srv.Pid(), reg.pid)
	start := time.Now()
	pushDone := make(chan error, 1)
	go func() {
		out, err := srv.CLI(ctx, env, args...)
		if err != nil {
			err = fmt.Errorf("pando push: %w\n%s", err, out)
		}
		pushDone <- err
	}()
	var pushErr error
	pushed := false
	if err := pollUntil(ctx, 5*time.Minute, func() (bool, error) {
		if !pushed {
			select {
			case pushErr = <-pushDone:
				pushed = true
				if pushErr != nil {
					return false, pushErr
				}
			default:
			}
		}
		return srv.get200(ctx, app), nil
	}); err != nil {
		return rd, fmt.Errorf("cold start: %w", err)
	}
	firstOK := time.Now()
	rd.cold = firstOK.Sub(start)
	rd.cpu = meter.stop()
	if !pushed {
		if err := <-pushDone; err != nil {
			return rd, err
		}
	}
	// The CLI is reaped once the push returns, which may be after the
	// first 200.
	_, children := selfUsage()
	rd.cpu.cli = children - meter.children0

	m, err := readMarks(srv.LogPath)
	if err != nil {
		return rd, err
	}
	rd.steps = m.breakdown(start, firstOK)
	if cs := m.containerSteps(firstOK); rd.steps != nil && cs != nil {
		rd.steps = append(rd.steps, cs...)
	}

	// The cell syncs the layers to disk in the background after the
	// container has them: wait for that (it would slow the floor down),
	// and say when it was done.
	complete := filepath.Join(srv.DataDir, "layers", "cache", "complete")
	if err := pollUntil(ctx, 2*time.Minute, func() (bool, error) {
		des, err := os.ReadDir(complete)
		return err == nil && len(des) >= cfg.imageLayers, nil
	}); err != nil {
		return rd, fmt.Errorf("layers on disk: %w", err)
	}
	rd.onDisk = time.Since(start)

	var reg0 usage
	if reg.pid > 0 {
		reg0, _ = processUsage(reg.pid)
	}
	if rd.floor, rd.floorSync, err = floor(ctx, reg, ref, rdir); err != nil {
		return rd, err
	}
	if reg.pid > 0 {
		if reg1, err := processUsage(reg.pid); err == nil {
			rd.floorRegistry = reg1.sub(reg0)
		}
	}
	if rd.noop, err = noop.run(ctx); err != nil {
		return rd, err
	}

	tok, err := srv.Token(ctx)
	if err != nil {
		return rd, err
	}
	guid, err := srv.AppGUID(ctx, tok, app)
	if err != nil {
		return rd, err
	}
	start = time.Now()
	type scaled struct {
		took time.Duration
		err  error
	}
	scaleDone := make(chan scaled, 1)
	go func() {
		out, err := srv.CLI(ctx, nil, "scale", app, "-i", "2")
		if err != nil {
			err = fmt.Errorf("pando scale: %w\n%s", err, out)
		}
		scaleDone <- scaled{time.Since(start), err}
	}()
	if err := pollUntil(ctx, 2*time.Minute, func() (bool, error) {
		n, err := srv.running(ctx, tok, guid)
		return n >= 2, err
	}); err != nil {
		return rd, fmt.Errorf("warm start: %w", err)
	}
	rd.warm = time.Since(start)
	sc := <-scaleDone
	if sc.err != nil {
		return rd, sc.err
	}
	rd.warmCLI = sc.took
	return rd, nil
}

// pollUntil calls f every pollEvery until it says done, fails, or the
// timeout passes.
func pollUntil(ctx context.Context, timeout time.Duration, f func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		done, err := f()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not done within %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}

func compressedSize(img v1.Image) (int64, error) {
	ls, err := img.Layers()
	if err != nil {
		return 0, err
	}
	var n int64
	for _, l := range ls {
		s, err := l.Size()
		if err != nil {
			return 0, err
		}
		n += s
	}
	return n, nil
}

// report prints the median of every measure over the rounds and the
// ratios.
func report(w io.Writer, rs []round) {
	med := func(f func(round) time.Duration) time.Duration {
		ds := make([]time.Duration, len(rs))
		for i, r := range rs {
			ds[i] = f(r)
		}
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	cold, fl := med(func(r round) time.Duration { return r.cold }), med(func(r round) time.Duration { return r.floor })
	warm, warmCLI := med(func(r round) time.Duration { return r.warm }), med(func(r round) time.Duration { return r.warmCLI })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "median of %d rounds\t\ttarget\t\n", len(rs))
	fmt.Fprintf(tw, "cold: push to first 200 (empty layer cache)\t%s\t\t\n", ms(cold))
	fmt.Fprintf(tw, "floor: fetch + verify + gunzip + untar the same blobs\t%s\t\t\n", ms(fl))
	fmt.Fprintf(tw, "cold / floor\t%.2fx\t<= 1.5x\t\n", float64(cold)/float64(fl))
	// The floor has no container start in it: beside it, the ratio to
	// the floor and one no-op container start, each of the same round.
	noop := med(func(r round) time.Duration { return r.noop })
	withRunc := med(func(r round) time.Duration { return r.floor + r.noop })
	fmt.Fprintf(tw, "one no-op `runc run` (/bin/true to its exit), after the floor\t%s\t\t\n", ms(noop))
	fmt.Fprintf(tw, "cold / (floor + no-op runc run)\t%.2fx\t\t\n", float64(cold)/float64(withRunc))
	fmt.Fprintf(tw, "one syncfs after the floor's untar (not in the floor)\t%s\t\t\n", ms(med(func(r round) time.Duration { return r.floorSync })))
	fmt.Fprintf(tw, "cold: push to every layer synced and marked on disk (after the 200)\t%s\t\t\n", ms(med(func(r round) time.Duration { return r.onDisk })))
	fmt.Fprintf(tw, "warm: scale -i 2 to the second instance RUNNING\t%s\t< 500 ms\t\n", ms(warm))
	fmt.Fprintf(tw, "warm: `pando scale` command returned\t%s\t\t\n", ms(warmCLI))
	tw.Flush()
	reportCPU(w, rs)
	if len(rs[len(rs)-1].steps) == 0 {
		return
	}
	fmt.Fprintln(w, "\ncold start by step, from the server log (median of each step):")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for k, st := range rs[len(rs)-1].steps {
		var ds []time.Duration
		for _, r := range rs {
			if len(r.steps) > k {
				ds = append(ds, r.steps[k].took)
			}
		}
		slices.Sort(ds)
		fmt.Fprintf(tw, "%s\t%s\t\n", st.name, ms(ds[len(ds)/2]))
	}
	tw.Flush()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }
