package cc

// The runtime of the API's tests: the real BBS with simulated cells
// (internal/simcell: the real cell.Rep on the fake container backend), so
// placement, instance reports, stops, crashes and staging go through
// production code. Only what a container runs is simulated: a builder that
// writes the output files a staging cell expects (see internal/cell's
// staging.go) and an app that prints a line and serves every port.
// Helpers here are prefixed rr.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/bbs"
	"github.com/pandoplatform/pando/internal/cell"
	"github.com/pandoplatform/pando/internal/container"
	"github.com/pandoplatform/pando/internal/simcell"
)

// rrMemUsage is what every simulated container reports as its memory use.
const rrMemUsage = 48 << 20

// rrRuntime is a running BBS with simulated cells.
type rrRuntime struct {
	board   *bbs.BBS
	cluster *simcell.Cluster
	// hold makes every buildpack staging wait in held until the test ends
	// it (rrStaging.succeed, fail).
	hold bool
	held chan *rrStaging

	mu sync.Mutex
	// tasks are the tasks the BBS was asked to run, first version of each,
	// in order, as its event stream showed them.
	tasks []pando.Task
	seen  map[string]bool
	// crashing are the apps whose instances exit at once with that code.
	crashing map[string]int
	// unhealthy are the apps whose instances refuse connections.
	unhealthy map[string]bool
}

// rrOpts tunes the runtime.
type rrOpts struct {
	hold bool
	// cell changes every cell's config (e.g. a docker stager).
	cell func(*cell.Config)
}

// rrStart starts the BBS and one simulated cell on blobs, logging to
// logs; everything stops, in order, when the test ends.
func rrStart(tb testing.TB, blobs cell.BlobStore, blobPath func(string) (string, bool), logs pando.LogSink, o rrOpts) *rrRuntime {
	tb.Helper()
	quiet := slog.New(slog.DiscardHandler)
	r := &rrRuntime{
		board: bbs.New(bbs.Config{Logger: quiet}),
		hold:  o.hold, held: make(chan *rrStaging, 64),
		seen: map[string]bool{}, crashing: map[string]int{}, unhealthy: map[string]bool{},
	}
	ctx, cancel := context.WithCancel(context.Background())
	events, err := r.board.Subscribe(ctx, 0)
	if err != nil {
		tb.Fatal(err)
	}
	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		for ev := range events {
			if ev.Task != nil {
				r.record(*ev.Task)
			}
		}
	}()
	ran := make(chan error, 1)
	go func() { ran <- r.board.Run(ctx) }()

	r.cluster, err = simcell.New(ctx, simcell.Config{
		Dir: tb.TempDir(), MemoryMB: 8192, Stacks: []string{"host", "cflinuxfs4"},
		Reporter: r.board, Blobs: blobs, BlobPath: blobPath, Logs: logs,
		// A loopback /16 of its own, mostly: parallel tests share less.
		AddrBase: 100 + rand.IntN(150),
		Process:  r.process,
		Handler:  r.handler,
		Stats:    container.Stats{MemoryBytes: rrMemUsage, DiskBytes: 12 << 20},
		Logger:   quiet,
	})
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		if err := r.cluster.Shutdown(sctx); err != nil {
			tb.Errorf("cells shutdown: %v", err)
		}
		cancel()
		if err := <-ran; err != nil {
			tb.Errorf("bbs Run: %v", err)
		}
		<-recorded
	})
	if _, err := r.cluster.Add(1, o.cell, r.board.RegisterCell); err != nil {
		tb.Fatal(err)
	}
	return r
}

func (r *rrRuntime) record(t pando.Task) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.seen[t.GUID] {
		r.seen[t.GUID] = true
		r.tasks = append(r.tasks, t)
	}
}

// desiredLRP is the BBS's desired LRP, if there is one.
func (r *rrRuntime) desiredLRP(guid string) (pando.DesiredLRP, bool) {
	l, err := r.board.DesiredLRP(context.Background(), guid)
	return l, err == nil
}

// stagingTasks are the tasks (stagings and CF tasks) the BBS was asked to
// run so far, in order. A task is in the BBS's event stream before
// DesireTask returns; the recorder reads the stream a moment later.
func (r *rrRuntime) stagingTasks() []pando.Task {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.tasks)
}

// waitTasks waits until at least n tasks were desired and returns them.
func (r *rrRuntime) waitTasks(tb testing.TB, n int) []pando.Task {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ts := r.stagingTasks(); len(ts) >= n {
			return ts
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the BBS was asked to run %d tasks, want %d", len(r.stagingTasks()), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// crash makes the app's instances started from now on exit at once with
// code (a crash loop).
func (r *rrRuntime) crash(appGUID string, code int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.crashing[appGUID] = code
}

// actualLRPs are the BBS's instances of a process.
func (r *rrRuntime) actualLRPs(tb testing.TB, guid string) []pando.ActualLRP {
	tb.Helper()
	as, err := r.board.ActualLRPs(context.Background(), guid)
	if err != nil {
		tb.Fatal(err)
	}
	return as
}

// containers are the ids of the containers the cells run.
func (r *rrRuntime) containers() []string { return r.cluster.Backend().IDs() }

// process is what a simulated container runs: the builder of a
// buildpack staging, or an app instance.
func (r *rrRuntime) process(ctx context.Context, spec container.Spec) container.ExitStatus {
	if len(spec.Args) > 1 && spec.Args[1] == "builder" {
		return r.build(ctx, spec)
	}
	if code, ok := r.crashCode(spec); ok {
		fmt.Fprintf(spec.Stderr, "crashing with status %d\n", code)
		return container.ExitStatus{Code: code}
	}
	if len(spec.Args) > 1 && spec.Args[1] == "launcher" {
		fmt.Fprintf(spec.Stdout, "instance %s listening on 8080\n", rrEnv(spec, "CF_INSTANCE_INDEX"))
		fmt.Fprintln(spec.Stderr, "warning: running in a contract test")
	}
	<-ctx.Done()
	return container.ExitStatus{Code: 143, Signaled: true}
}

// unhealthyApp makes the app's instances refuse connections from now on:
// their port health checks fail and they stay STARTING.
func (r *rrRuntime) unhealthyApp(appGUID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unhealthy[appGUID] = true
}

var rrOK = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })

func (r *rrRuntime) handler(spec container.Spec, _ int) http.Handler {
	app := rrAppGUID(spec)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.unhealthy[app] {
		return nil
	}
	return rrOK
}

func (r *rrRuntime) crashCode(spec container.Spec) (int, bool) {
	app := rrAppGUID(spec)
	r.mu.Lock()
	defer r.mu.Unlock()
	code, ok := r.crashing[app]
	return code, ok
}

// rrAppGUID is the app a container belongs to ("" for a staging).
func rrAppGUID(spec container.Spec) string {
	var app struct {
		ID string `json:"application_id"`
	}
	if err := json.Unmarshal([]byte(rrEnv(spec, "VCAP_APPLICATION")), &app); err != nil {
		return ""
	}
	return app.ID
}

func rrEnv(spec container.Spec, name string) string {
	for _, kv := range spec.Env {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

// rrStaging is a buildpack staging's builder, held until the test ends it.
type rrStaging struct {
	pando.Task // as the BBS holds it
	spec       container.Spec
	lines      chan string
	printed    chan struct{}
	end        chan rrOutcome
}

type rrOutcome struct {
	lines []string
	code  int // 0: success
}

// print writes a line of the builder's output, as a buildpack prints, and
// returns once the builder wrote it.
func (s *rrStaging) print(line string) {
	s.lines <- line
	<-s.printed
}

// succeed ends the staging: the builder prints lines and writes a droplet
// and its result.
func (s *rrStaging) succeed(lines ...string) { s.end <- rrOutcome{lines: lines} }

// fail ends the staging as a failed buildpack phase: the builder prints
// the compile error and exits with code (222, 223, 224 or 225, as
// CF's builder).
func (s *rrStaging) fail(code int) {
	s.end <- rrOutcome{lines: []string{"Failed to compile droplet: exit status 1"}, code: code}
}

// rrDefaultLines are what an unheld staging's buildpack prints.
var rrDefaultLines = []string{"Downloading staticfile_buildpack...", "-----> Installing nginx"}

func (r *rrRuntime) build(ctx context.Context, spec container.Spec) container.ExitStatus {
	out := rrOutcome{lines: rrDefaultLines}
	if r.hold {
		guid := strings.TrimPrefix(spec.ID, "stg-")
		t, err := r.board.Task(ctx, guid)
		if err != nil {
			fmt.Fprintf(spec.Stderr, "staging task %s: %v\n", guid, err)
			return container.ExitStatus{Code: 1}
		}
		s := &rrStaging{Task: t, spec: spec, lines: make(chan string), printed: make(chan struct{}), end: make(chan rrOutcome, 1)}
		select {
		case r.held <- s:
		case <-ctx.Done():
			return container.ExitStatus{Code: 143, Signaled: true}
		}
	wait:
		for {
			select {
			case l := <-s.lines:
				fmt.Fprintln(spec.Stdout, l)
				s.printed <- struct{}{}
			case out = <-s.end:
				break wait
			case <-ctx.Done():
				return container.ExitStatus{Code: 143, Signaled: true}
			}
		}
	}
	for _, l := range out.lines {
		if out.code != 0 {
			fmt.Fprintln(spec.Stderr, l)
		} else {
			fmt.Fprintln(spec.Stdout, l)
		}
	}
	if out.code != 0 {
		return container.ExitStatus{Code: out.code}
	}
	if err := rrWriteOutput(spec); err != nil {
		fmt.Fprintf(spec.Stderr, "builder: %v\n", err)
		return container.ExitStatus{Code: 1}
	}
	return container.ExitStatus{}
}

// rrWriteOutput writes what CF's builder leaves in /tmp/output: the
// droplet and result.json naming the buildpack that ran (the first of
// --buildpack-order, else staticfile_buildpack).
func rrWriteOutput(spec container.Spec) error {
	dir := ""
	for _, m := range spec.Mounts {
		if m.Destination == "/tmp/output" {
			dir = m.Source
		}
	}
	if dir == "" {
		return fmt.Errorf("no /tmp/output mount")
	}
	bp := "staticfile_buildpack"
	if i := slices.Index(spec.Args, "--buildpack-order"); i >= 0 && i+1 < len(spec.Args) {
		bp, _, _ = strings.Cut(spec.Args[i+1], ",")
	}
	tgz, err := simcell.DropletTgz()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "droplet.tgz"), tgz, 0o644); err != nil {
		return err
	}
	res, err := json.Marshal(pando.StagingResult{
		DetectedBuildpack: bp, BuildpackName: bp, BuildpackVersion: "1.6.0",
		StartCommand: "sh boot.sh", ProcessTypes: map[string]string{"web": "sh boot.sh"},
	})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "result.json"), res, 0o644)
}

// nextStaging is the next held staging.
func (r *rrRuntime) nextStaging(tb testing.TB) *rrStaging {
	tb.Helper()
	select {
	case s := <-r.held:
		return s
	case <-time.After(10 * time.Second):
		tb.Fatal("no staging started on a cell")
		return nil
	}
}

// rrStats are the cells' figures of an instance, as internal/server
// reads them.
type rrStats struct{ board *bbs.BBS }

func (s rrStats) InstanceStats(ctx context.Context, cellID, guid string) (pando.InstanceStats, error) {
	c, ok := s.board.Cell(cellID)
	if !ok {
		return pando.InstanceStats{}, pando.Errorf(pando.ENotFound, "cell %s not found", cellID)
	}
	return c.Stats(ctx, guid)
}

// rrDroplet stores a droplet the simulated cells can run under key and
// returns its SHA-256.
func rrDroplet(tb testing.TB, blobs interface {
	Put(context.Context, string, io.Reader) (pando.BlobInfo, error)
}, key string) string {
	tb.Helper()
	tgz, err := simcell.DropletTgz()
	if err != nil {
		tb.Fatal(err)
	}
	info, err := blobs.Put(context.Background(), key, strings.NewReader(string(tgz)))
	if err != nil {
		tb.Fatal(err)
	}
	return info.SHA256
}
