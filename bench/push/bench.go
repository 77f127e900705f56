package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/pandoplatform/pando/internal/cgroupclean"
	"github.com/pandoplatform/pando/internal/cli/api"
	"github.com/pandoplatform/pando/internal/container/runc"
	"github.com/pandoplatform/pando/internal/mountinfo"
)

// bench holds what one benchmark run set up: a temp dir, the server, a
// logged-in API client, the floor's upload sink and runc backend.
type bench struct {
	cfg      config
	log      *slog.Logger
	tmp      string
	pandoBin string
	cliHome  string
	runID    string

	srv          *server
	c            *api.Client
	spaceGUID    string
	routerClient *http.Client
	sink         *floorSink
	floorBackend *runc.Backend
	apps         []*appSpec
	// registry serves the Node.js app's packages (nil without that app).
	registry *npmRegistry
}

func newBench(ctx context.Context, cfg config, log *slog.Logger) (_ *bench, err error) {
	tmp, err := os.MkdirTemp("", "pando-bench-*")
	if err != nil {
		return nil, err
	}
	id := make([]byte, 3)
	_, _ = rand.Read(id)
	b := &bench{
		cfg:     cfg,
		log:     log,
		tmp:     tmp,
		cliHome: filepath.Join(tmp, "cli-home"),
		runID:   hex.EncodeToString(id),
		// New connections each time, as separate curls; no proxy.
		routerClient: &http.Client{
			Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
			Timeout:   5 * time.Second,
		},
	}
	defer func() {
		if err != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 90*time.Second)
			defer cancel()
			if cerr := b.close(cctx, true); cerr != nil {
				log.Warn("clean up", "error", cerr)
			}
		}
	}()
	if b.pandoBin, err = findPando(ctx, cfg.pandoBin, tmp, log); err != nil {
		return b, err
	}
	var serverArgs []string
	if slices.Contains(cfg.apps, appNode) {
		if b.registry, err = startNPMRegistry(); err != nil {
			return b, err
		}
		serverArgs = append(serverArgs, "--staging-env", "npm_config_registry="+b.registry.url+"/")
	}
	for _, kind := range cfg.apps {
		a, err := prepareApp(ctx, kind, filepath.Join(tmp, "apps"), b.registry)
		if err != nil {
			return b, err
		}
		b.apps = append(b.apps, a)
	}
	if b.srv, err = startServer(ctx, b.pandoBin, tmp, cfg.verbose, log, serverArgs...); err != nil {
		return b, err
	}
	if err := b.login(ctx); err != nil {
		return b, err
	}
	if b.sink, err = startFloorSink(tmp); err != nil {
		return b, err
	}
	if b.floorBackend, err = newFloorBackend(filepath.Join(tmp, "floor-containers"), b.pandoBin, b.floorCgroup()); err != nil {
		return b, err
	}
	return b, nil
}

// findPando returns PANDO_BIN, else bin/pando of the module, else builds
// one into dir.
func findPando(ctx context.Context, fromEnv, dir string, log *slog.Logger) (string, error) {
	if fromEnv != "" {
		p, err := filepath.Abs(fromEnv)
		if err != nil {
			return "", err
		}
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("PANDO_BIN: %w", err)
		}
		return p, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	if p := filepath.Join(root, "bin", "pando"); fileExists(p) {
		return p, nil
	}
	goBin, err := findGo()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "pando")
	log.Info("building pando (set PANDO_BIN to skip)", "output", out)
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-o", out, "./cmd/pando")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build pando: %w: %s", err, strings.TrimSpace(string(b)))
	}
	return out, nil
}

// moduleRoot walks up from the working directory to Pando's go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/pandoplatform/pando")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run the bench inside the pando repository, or set PANDO_BIN")
		}
		dir = parent
	}
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// login gets a token as admin and finds the seeded org's only space; with
// -cli it also logs the CLI in (config under the temp dir).
func (b *bench) login(ctx context.Context) error {
	c, err := api.New(api.Config{URL: b.srv.apiURL})
	if err != nil {
		return err
	}
	if _, err := c.PasswordGrant(ctx, "admin", b.srv.Password); err != nil {
		return fmt.Errorf("log in: %w", err)
	}
	orgs, err := c.Orgs(ctx)
	if err != nil {
		return err
	}
	if len(orgs) == 0 {
		return errors.New("the server has no organization")
	}
	spaces, err := c.Spaces(ctx, orgs[0].GUID)
	if err != nil {
		return err
	}
	if len(spaces) == 0 {
		return fmt.Errorf("org %s has no space", orgs[0].Name)
	}
	b.c, b.spaceGUID = c, spaces[0].GUID
	if !b.cfg.cli {
		return nil
	}
	cmd := exec.CommandContext(ctx, b.pandoBin, "login", "-a", b.srv.apiURL, "-u", "admin", "-p", b.srv.Password,
		"-o", orgs[0].Name, "-s", spaces[0].Name)
	cmd.Env = b.cliEnv()
	cmd.Dir = b.tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pando login: %w\n%s", err, out)
	}
	return nil
}

// run measures every app: fresh pushes, repeat pushes of the last one,
// CLI pushes, then the floor; the apps are deleted after each app's block.
func (b *bench) run(ctx context.Context) (*results, error) {
	res := &results{
		Date:          time.Now().UTC().Format(time.RFC3339),
		Host:          hostInfo(ctx),
		Runs:          b.cfg.runs,
		PandoBin:      b.pandoBin,
		TargetSeconds: targetSeconds,
		TargetRatio:   targetRatio,
	}
	for _, a := range b.apps {
		ar, err := b.measureApp(ctx, a)
		if err != nil {
			return nil, fmt.Errorf("%s app: %w", a.Kind, err)
		}
		res.Apps = append(res.Apps, *ar)
	}
	return res, nil
}

func (b *bench) measureApp(ctx context.Context, a *appSpec) (*appResult, error) {
	ar := &appResult{App: a}
	var names []string
	defer func() {
		// Free the cell for the next app; untimed.
		for _, n := range names {
			if app, err := b.c.AppByName(ctx, b.spaceGUID, n); err == nil {
				if err := b.c.DeleteApp(ctx, app.GUID); err != nil {
					b.log.Warn("delete app", "app", n, "error", err)
				}
			}
		}
	}()
	name := func(variant string, i int) string {
		n := fmt.Sprintf("bench-%s-%s-%s-%d", b.runID, a.Kind, variant, i)
		names = append(names, n)
		return n
	}

	// The floor is measured between the fresh pushes, so that load from
	// elsewhere on the machine weighs on both alike.
	var fresh []*pushRun
	var up, rc, untar, install []time.Duration
	for i := range b.cfg.runs {
		r, err := b.push(ctx, a, name("f", i))
		if err != nil {
			return nil, fmt.Errorf("fresh push %d: %w", i+1, err)
		}
		b.progress(a, variantFresh, i, r)
		fresh = append(fresh, r)

		fl, err := b.floor(ctx, a, r.DropletGUID, i)
		if err != nil {
			return nil, err
		}
		up, rc, untar = append(up, fl.parts[0]), append(rc, fl.parts[1]), append(untar, fl.parts[2])
		ar.DropletBytes = fl.dropletBytes
		if fl.install > 0 {
			install = append(install, fl.install)
		}
	}
	ar.Floor = summarizeFloor(up, rc, untar)
	if len(install) > 0 {
		ar.Floor.InstallMS = ms(median(install))
	}
	ar.Variants = append(ar.Variants, newVariant(variantFresh, fresh))
	last := fresh[len(fresh)-1]

	if b.cfg.repeat {
		var rep []*pushRun
		for i := range b.cfg.runs {
			r, err := b.push(ctx, a, last.Name)
			if err != nil {
				return nil, fmt.Errorf("repeat push %d: %w", i+1, err)
			}
			b.progress(a, variantRepeat, i, r)
			rep = append(rep, r)
		}
		ar.Variants = append(ar.Variants, newVariant(variantRepeat, rep))
	}
	if b.cfg.edit {
		edits, err := b.editPushes(ctx, a, last.Name)
		if err != nil {
			return nil, err
		}
		ar.Variants = append(ar.Variants, newVariant(variantEdit, edits))
	}
	if b.cfg.cli {
		var cli []*pushRun
		for i := range b.cfg.runs {
			r, err := b.cliPush(ctx, a, name("c", i))
			if err != nil {
				return nil, fmt.Errorf("CLI push %d: %w", i+1, err)
			}
			b.progress(a, variantCLI, i, r)
			cli = append(cli, r)
		}
		ar.Variants = append(ar.Variants, newVariant(variantCLI, cli))
	}

	for k := range ar.Variants {
		ar.Variants[k].summarize(ar.Floor)
	}
	return ar, nil
}

// editPushes re-pushes app name with one more file whose content changes
// every run, as after an edit: the droplet cannot be reused, the build
// cache can. The file is removed afterwards.
func (b *bench) editPushes(ctx context.Context, a *appSpec, name string) ([]*pushRun, error) {
	edited := filepath.Join(a.Dir, "CHANGES.txt")
	defer os.Remove(edited)
	var runs []*pushRun
	for i := range b.cfg.runs {
		if err := os.WriteFile(edited, fmt.Appendf(nil, "edit %d of %s\n", i+1, b.runID), 0o644); err != nil {
			return nil, fmt.Errorf("edit %s: %w", edited, err)
		}
		r, err := b.push(ctx, a, name)
		if err != nil {
			return nil, fmt.Errorf("edited push %d: %w", i+1, err)
		}
		b.progress(a, variantEdit, i, r)
		runs = append(runs, r)
	}
	return runs, nil
}

// floorSample is one measurement of the floor's parts: zip+upload, two
// runc runs, untar of the droplet.
type floorSample struct {
	parts        [3]time.Duration
	install      time.Duration // the Node.js app's npm install; 0 for others
	dropletBytes int64
}

// floor measures each part of the floor once, with the droplet of the push
// just made.
func (b *bench) floor(ctx context.Context, a *appSpec, dropletGUID string, round int) (floorSample, error) {
	var fs floorSample
	tgz, err := b.fetchDroplet(ctx, dropletGUID)
	if err != nil {
		return fs, err
	}
	defer os.Remove(tgz)
	if fi, err := os.Stat(tgz); err == nil {
		fs.dropletBytes = fi.Size()
	}
	if fs.parts[0], err = b.floorUpload(ctx, a); err != nil {
		return fs, err
	}
	if fs.parts[1], err = b.floorRunc(ctx, round); err != nil {
		return fs, err
	}
	if fs.parts[2], err = b.floorUntar(ctx, tgz); err != nil {
		return fs, err
	}
	if a.Kind == appNode {
		if fs.install, err = b.floorInstall(ctx, a); err != nil {
			return fs, err
		}
	}
	return fs, nil
}

func (b *bench) progress(a *appSpec, variant string, i int, r *pushRun) {
	b.log.Info("push", "app", a.Kind, "variant", variant, "run", i+1,
		"total", r.total().Round(time.Millisecond), "uploaded_bytes", r.UploadedBytes)
}

// floorCgroup is where the floor's containers get their cgroups.
func (b *bench) floorCgroup() string { return "/pando/bench-floor-" + b.runID }

// close stops the server (which stops its containers), removes leftover
// containers and the temp dir (kept with -keep, or on failure with -v).
func (b *bench) close(ctx context.Context, failed bool) error {
	var errs []error
	if b.registry != nil {
		if err := b.registry.close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if b.sink != nil {
		if err := b.sink.close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if b.srv != nil {
		if err := b.srv.stop(ctx); err != nil {
			errs = append(errs, err)
		}
		if failed {
			b.log.Error("bench failed", "server_log", b.srv.LogPath)
			fmt.Fprintln(os.Stderr, b.srv.LogTail(30))
		}
	}
	if b.floorBackend != nil {
		if err := b.floorBackend.Cleanup(ctx); err != nil {
			errs = append(errs, err)
		}
		cgroupclean.Remove(b.floorCgroup())
	}
	if b.cfg.keep || (failed && b.cfg.verbose) {
		b.log.Info("kept the bench's temp dir", "dir", b.tmp)
		return errors.Join(errs...)
	}
	if mounted, err := mountinfo.Under(b.tmp); err != nil || len(mounted) > 0 {
		errs = append(errs, fmt.Errorf("not removing %s: still mounted: %s (%v)", b.tmp, strings.Join(mounted, ", "), err))
		return errors.Join(errs...)
	}
	if err := os.RemoveAll(b.tmp); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func hostInfo(ctx context.Context) host {
	h := host{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			h.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.CommandContext(ctx, "runc", "--version").Output(); err == nil {
		h.Runc, _, _ = strings.Cut(strings.TrimSpace(string(out)), "\n")
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				h.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return h
}
