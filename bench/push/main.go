// Command push measures Pando's push-to-first-200 for a static site and a
// prebuilt Go binary, next to a floor measured in the same run (zip+upload of
// the same bytes over loopback, two `runc run` of a no-op container, untar of
// the droplet), and prints the ratio with a per-step breakdown. It starts its
// own `pando server` on free loopback ports in a temp dir; it needs root.
//
//	sudo PANDO_BIN=$PWD/bin/pando go run ./bench/push [-n 5] [-json]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"
)

// config is the bench's configuration, from flags.
type config struct {
	runs     int
	json     bool
	repeat   bool
	edit     bool
	cli      bool
	verbose  bool
	keep     bool
	pandoBin string
	apps     []string
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg := config{}
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&cfg.runs, "n", 5, "pushes per app and variant")
	fs.BoolVar(&cfg.json, "json", false, "print the results as JSON on stdout (the table and progress go to stderr)")
	fs.BoolVar(&cfg.repeat, "repeat", true, "also measure re-pushing the same app unchanged")
	fs.BoolVar(&cfg.edit, "edit", true, "also measure re-pushing the same app with one file changed (it stages again)")
	fs.BoolVar(&cfg.cli, "cli", true, "also measure `pando push` run as a subprocess")
	fs.BoolVar(&cfg.verbose, "v", false, "print every run's steps and the server log level debug")
	fs.BoolVar(&cfg.keep, "keep", false, "keep the temp dir (server log, data dir) for inspection")
	defaultApps := "static,binary"
	if _, err := exec.LookPath("npm"); err == nil {
		defaultApps += ",node" // the Node.js app needs npm on the host (lock file, floor)
	}
	appList := fs.String("apps", defaultApps, "apps to push (static, binary, node)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if cfg.runs < 1 || cfg.runs > 100 {
		fmt.Fprintln(stderr, "error: -n must be between 1 and 100")
		return 2
	}
	apps, err := parseApps(*appList)
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 2
	}
	cfg.apps = apps
	cfg.pandoBin = os.Getenv("PANDO_BIN")

	level := slog.LevelInfo
	if cfg.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := benchmark(ctx, cfg, log)
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	if cfg.json {
		printReport(stderr, res, cfg.verbose)
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			fmt.Fprintln(stderr, "error:", err)
			return 1
		}
		return 0
	}
	printReport(stdout, res, cfg.verbose)
	return 0
}

// benchmark sets up, measures every app and tears down; teardown runs
// whatever happened, with its own time budget.
func benchmark(ctx context.Context, cfg config, log *slog.Logger) (_ *results, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the bench runs runc containers and a pando server: run it as root (sudo)")
	}
	b, err := newBench(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 90*time.Second)
		defer cancel()
		if cerr := b.close(cctx, err != nil); cerr != nil {
			log.Warn("clean up", "error", cerr)
		}
	}()
	return b.run(ctx)
}
