package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/pandoplatform/pando/internal/layers"
	"github.com/pandoplatform/pando/internal/registry"
)

// pullOnly times, in each of rounds, the floor and then the cell's own
// pull of ref in this process (registry.Client and layers.Cache, as the
// server uses them, the layers' syncs off: the server does them after
// the container has its layers): what the pull costs without the rest of
// a cold start around it, wall and CPU.
func pullOnly(ctx context.Context, w io.Writer, reg *benchRegistry, ref, dir string, rounds int) error {
	client, err := registry.New(registry.Options{Insecure: []string{reg.host}})
	if err != nil {
		return err
	}
	var creds *registry.Credentials
	if reg.user != "" {
		creds = &registry.Credentials{Username: reg.user, Password: reg.pass}
	}
	var floors, pulls, cpus []time.Duration
	regUsage := func() usage {
		if reg.pid == 0 {
			return usage{}
		}
		u, _ := processUsage(reg.pid)
		return u
	}
	for i := range rounds {
		reg0 := regUsage()
		fl, _, err := floor(ctx, reg, ref, dir)
		if err != nil {
			return err
		}
		reg1 := regUsage()
		cache, err := layers.Open(filepath.Join(dir, fmt.Sprintf("pull%d", i+1)), layers.Options{NoSync: true})
		if err != nil {
			return err
		}
		cpu0 := processCPU()
		start := time.Now()
		img, err := client.Resolve(ctx, ref, creds)
		if err == nil {
			var src *registry.Blobs
			if src, err = client.Blobs(img.Pinned, creds); err == nil {
				ls := make([]layers.Layer, len(img.Layers))
				for k, l := range img.Layers {
					ls[k] = layers.Layer{Digest: l.Digest, Size: l.Size, MediaType: l.MediaType}
				}
				var release func()
				if _, release, err = cache.Pull(ctx, src, ls, layers.Shift{}); err == nil {
					release()
				}
			}
		}
		took, cpu := time.Since(start), processCPU()-cpu0
		reg2 := regUsage()
		cache.Close()
		if err != nil {
			return fmt.Errorf("pull %s: %w", ref, err)
		}
		fmt.Fprintf(w, "round %d: floor %s, pull (resolve + layers) %s, its CPU %s", i+1, ms(fl), ms(took), ms(cpu))
		if reg.pid != 0 {
			f, p := reg1.sub(reg0), reg2.sub(reg1)
			fmt.Fprintf(w, "; registry CPU (page faults) serving the floor %s (%d), the pull %s (%d)", ms(f.run), f.minflt, ms(p.run), p.minflt)
		}
		fmt.Fprintln(w)
		floors, pulls, cpus = append(floors, fl), append(pulls, took), append(cpus, cpu)
	}
	med := func(ds []time.Duration) time.Duration {
		ds = slices.Clone(ds)
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	fmt.Fprintf(w, "median of %d rounds: floor %s, pull %s (%.2fx), pull CPU (user + system) %s\n",
		rounds, ms(med(floors)), ms(med(pulls)), float64(med(pulls))/float64(med(floors)), ms(med(cpus)))
	return nil
}

// processCPU is the user and system time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
