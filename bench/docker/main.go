// Command docker measures a docker image's cold start on Pando (push of a
// ~50 MB image from a loopback registry to the first 200 through the
// router, with an empty layer cache) beside the floor measured in the same
// run (fetching the same blobs from the same registry and untarring them),
// and the warm start of a second instance with the layers cached. Each
// round starts its own `pando server` in a fresh data dir (an empty layer
// cache); the registry is Debian's docker-registry with htpasswd when it is
// installed, else go-containerregistry's in-process one. It needs root.
//
//	sudo PANDO_BIN=$PWD/bin/pando go run ./bench/docker [-n 3] [-mb 45] [-keep]
//
// With -pull-only it starts no server: each round times the floor and the
// cell's own pull (registry client and layer cache) in the bench's process.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/pandoplatform/pando/bench/internal/benchrun"
)

type config struct {
	rounds     int
	dataMB     int
	dataLayers int
	keep       bool
	pullOnly   bool
	pando      string
	// warmupWait is how long a round waits for the server's start-up
	// warm-up (stack probes, seeds) to end before its cold push; 0: push
	// as soon as the API answers.
	warmupWait time.Duration
	// imageLayers is how many layers the built image has.
	imageLayers int
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var cfg config
	fs := flag.NewFlagSet("docker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&cfg.rounds, "n", 3, "rounds (each: a fresh server, a cold push, the floor, a warm scale-up)")
	fs.IntVar(&cfg.dataMB, "mb", 45, "MB of incompressible data in the image, besides the server binary")
	fs.IntVar(&cfg.dataLayers, "layers", 3, "layers the data is split in")
	fs.BoolVar(&cfg.keep, "keep", false, "keep the temp dir (server logs, data dirs)")
	fs.DurationVar(&cfg.warmupWait, "warmup-wait", time.Minute, "wait up to this long for the server's start-up warm-up (runtime probes, seeds) to end before the cold push (0: push at once, competing with it)")
	fs.BoolVar(&cfg.pullOnly, "pull-only", false, "no server: time the cell's pull (resolve, layers) in this process beside the floor, wall and CPU")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if cfg.rounds < 1 || cfg.rounds > 50 || cfg.dataMB < 1 || cfg.dataMB > 1024 || cfg.dataLayers < 1 || cfg.dataLayers > 32 {
		fmt.Fprintln(stderr, "error: want 1 <= -n <= 50, 1 <= -mb <= 1024, 1 <= -layers <= 32")
		return 2
	}
	cfg.pando = benchrun.PandoBin()
	return benchrun.Main(stderr, func(ctx context.Context) error {
		rs, err := bench(ctx, cfg, stderr)
		if err != nil {
			return err
		}
		if !cfg.pullOnly {
			report(stdout, rs)
		}
		return nil
	})
}

// round is one round's measurements.
type round struct {
	cold, floor, warm, warmCLI time.Duration
	floorSync                  time.Duration
	warmup                     time.Duration // the server's start-up warm-up waited for (0: none)
	noop                       time.Duration // one no-op `runc run`, after the floor
	onDisk                     time.Duration // push to every layer marked on disk
	// cpu is what the processes used from the push to the first 200, and
	// floorRegistry what the registry used serving the floor.
	cpu           cpuUse
	floorRegistry usage
	steps         []step // nil: no breakdown
}

func bench(ctx context.Context, cfg config, progress io.Writer) ([]round, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the bench runs pando server, which needs root")
	}
	dir, err := os.MkdirTemp("", "pando-bench-docker-")
	if err != nil {
		return nil, err
	}
	if cfg.keep {
		fmt.Fprintln(progress, "keeping", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	reg, err := startRegistry(ctx, dir)
	if err != nil {
		return nil, err
	}
	defer reg.stop()
	fmt.Fprintf(progress, "registry: %s on %s\nbuilding the image (%d MB of data in %d layers + a Go server) ...\n", reg.kind, reg.host, cfg.dataMB, cfg.dataLayers)
	img, err := buildImage(ctx, dir, cfg.dataLayers, int64(cfg.dataMB)<<20)
	if err != nil {
		return nil, err
	}
	ref := reg.host + "/bench/web:v1"
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return nil, err
	}
	if err := remote.Write(r, img, remote.WithAuth(reg.auth()), remote.WithContext(ctx)); err != nil {
		return nil, fmt.Errorf("push the image to %s: %w", ref, err)
	}
	size, err := compressedSize(img)
	if err != nil {
		return nil, err
	}
	ls, err := img.Layers()
	if err != nil {
		return nil, err
	}
	cfg.imageLayers = len(ls)
	fmt.Fprintf(progress, "image %s: %.1f MB compressed\n", ref, float64(size)/(1<<20))
	if cfg.pullOnly {
		return nil, pullOnly(ctx, progress, reg, ref, dir, cfg.rounds)
	}
	noop, err := newNoopRunner(cfg.pando, dir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := noop.close(context.WithoutCancel(ctx)); err != nil {
			fmt.Fprintln(progress, "clean up the no-op containers:", err)
		}
	}()
	var rs []round
	for i := range cfg.rounds {
		rd, err := oneRound(ctx, cfg, reg, ref, dir, i, noop)
		if err != nil {
			return rs, fmt.Errorf("round %d: %w", i+1, err)
		}
		fmt.Fprintf(progress, "round %d: cold %s (on disk %s), floor %s, no-op runc run %s, warm %s (server warm-up waited %s)\n", i+1, ms(rd.cold), ms(rd.onDisk), ms(rd.floor), ms(rd.noop), ms(rd.warm), ms(rd.warmup))
		rs = append(rs, rd)
	}
	return rs, nil
}
