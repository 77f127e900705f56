// Package builder is the staging lifecycle (`pando builder`): inside a staging
// container it runs CF v2 buildpacks (detect, supply, finalize or compile,
// release) against the extracted package, then writes the droplet tgz and the
// result.json the cell reports back. Its exit codes (222-225) follow Diego's
// buildpack lifecycle so the API can explain failures the way CF does.
package builder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pandoplatform/pando"
)

// Exit codes of the builder, as Diego's buildpack lifecycle uses them.
const (
	ExitFailed          = 1   // anything that is not a buildpack's fault (bad flags, I/O)
	ExitNoAppDetected   = 222 // no buildpack's detect accepted the app
	ExitFinalizeFailed  = 223 // finalize or compile failed
	ExitReleaseFailed   = 224 // release failed or printed unusable YAML
	ExitSupplyFailed    = 225 // supply failed
	maxReleaseOutput    = 1 << 20
	maxDetectOutput     = 4 << 10
	maxSmallFile        = 1 << 20
	defaultProfileDName = "profile.d"
)

// Config is what `pando builder` is told by its flags (see docs/contracts.md).
type Config struct {
	BuildDir       string   // the extracted package; becomes the droplet's ./app
	BuildpacksDir  string   // one extracted buildpack per sub-directory
	BuildpackOrder []string // sub-directory names, in detect/run order
	SkipDetect     bool     // run BuildpackOrder as given: last is final, others supply
	CacheDir       string   // per-app build cache; each buildpack gets CacheDir/<name>
	DepsDir        string   // supply/finalize dependencies; becomes ./deps
	ProfileDir     string   // finalize's 5th argument; becomes ./profile.d. Default $TMPDIR/profile.d
	OutputDroplet  string
	OutputMetadata string
	// Env is the environment buildpacks run with; nil means os.Environ().
	Env []string
}

// ExitError is a staging failure with the exit code the builder ends with.
// Phase and Buildpack say where it happened, when a buildpack caused it.
type ExitError struct {
	Code      int
	Phase     string // detect, supply, finalize, compile, release, droplet, setup
	Buildpack string
	Err       error
}

func (e *ExitError) Error() string {
	var b strings.Builder
	b.WriteString(e.Phase)
	b.WriteString(" failed")
	if e.Buildpack != "" {
		fmt.Fprintf(&b, " (buildpack %s)", e.Buildpack)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode is the process exit status for this failure.
func (e *ExitError) ExitCode() int { return e.Code }

// ExitCode maps an error returned by Build or the command to the process exit
// status: 0 for nil, the ExitError's code, else 1.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var c interface{ ExitCode() int }
	if errors.As(err, &c) {
		return c.ExitCode()
	}
	return ExitFailed
}

type buildpack struct {
	name  string
	dir   string
	index int
}

// Build stages cfg.BuildDir with the configured buildpacks, streaming their
// output to stdout and stderr as it comes, and writes the droplet and the
// result metadata. Failures are *ExitError values carrying the exit code.
func Build(ctx context.Context, cfg Config, stdout, stderr io.Writer) (pando.StagingResult, error) {
	if err := cfg.check(); err != nil {
		return pando.StagingResult{}, &ExitError{Code: ExitFailed, Phase: "setup", Err: err}
	}
	if cfg.Env == nil {
		cfg.Env = os.Environ()
	}
	if cfg.ProfileDir == "" {
		cfg.ProfileDir = filepath.Join(os.TempDir(), defaultProfileDName)
	}
	for _, d := range []string{cfg.CacheDir, cfg.DepsDir, cfg.ProfileDir, filepath.Dir(cfg.OutputDroplet), filepath.Dir(cfg.OutputMetadata)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return pando.StagingResult{}, &ExitError{Code: ExitFailed, Phase: "setup", Err: err}
		}
	}
	awaitEgress(ctx, cfg.Env, stderr)
	s := &stager{cfg: cfg, stdout: stdout, stderr: stderr}
	return s.run(ctx)
}

func (c *Config) check() error {
	for flag, v := range map[string]string{
		"--build-dir": c.BuildDir, "--buildpacks-dir": c.BuildpacksDir, "--cache-dir": c.CacheDir,
		"--deps-dir": c.DepsDir, "--output-droplet": c.OutputDroplet, "--output-metadata": c.OutputMetadata,
	} {
		if v == "" {
			return fmt.Errorf("%s is required", flag)
		}
	}
	if fi, err := os.Stat(c.BuildDir); err != nil || !fi.IsDir() {
		return fmt.Errorf("build dir %s is not a directory", c.BuildDir)
	}
	for _, n := range c.BuildpackOrder {
		if n == "" || n == "." || n == ".." || strings.ContainsAny(n, `/\`) {
			return fmt.Errorf("invalid buildpack name %q", n)
		}
	}
	if c.SkipDetect && len(c.BuildpackOrder) == 0 {
		return errors.New("--skip-detect needs at least one buildpack in --buildpack-order")
	}
	return nil
}

type stager struct {
	cfg            Config
	stdout, stderr io.Writer
}

func (s *stager) progress(format string, args ...any) {
	fmt.Fprintf(s.stdout, "-----> "+format+"\n", args...)
}

func (s *stager) run(ctx context.Context) (pando.StagingResult, error) {
	var res pando.StagingResult
	bps := make([]buildpack, len(s.cfg.BuildpackOrder))
	for i, n := range s.cfg.BuildpackOrder {
		bps[i] = buildpack{name: n, dir: filepath.Join(s.cfg.BuildpacksDir, n), index: i}
		if fi, err := os.Stat(bps[i].dir); err != nil || !fi.IsDir() {
			return res, &ExitError{Code: ExitFailed, Phase: "setup", Buildpack: n, Err: fmt.Errorf("buildpack directory %s not found", bps[i].dir)}
		}
	}

	var final buildpack
	var supply []buildpack
	if s.cfg.SkipDetect {
		final, supply = bps[len(bps)-1], bps[:len(bps)-1]
		res.DetectedBuildpack = final.name
	} else {
		bp, out, err := s.detect(ctx, bps)
		if err != nil {
			return res, err
		}
		// Detect mode runs a single buildpack: it is index 0 of the deps dir.
		final = buildpack{name: bp.name, dir: bp.dir, index: 0}
		res.DetectedBuildpack = out
		if out == "" {
			res.DetectedBuildpack = bp.name
		}
	}
	res.BuildpackName = final.name
	res.BuildpackVersion = readFirstLine(filepath.Join(final.dir, "VERSION"))
	for _, bp := range supply {
		res.Buildpacks = append(res.Buildpacks, pando.StagedBuildpack{Name: bp.name, Version: readFirstLine(filepath.Join(bp.dir, "VERSION"))})
	}
	res.Buildpacks = append(res.Buildpacks, pando.StagedBuildpack{Name: final.name, Version: res.BuildpackVersion, DetectOutput: res.DetectedBuildpack})

	for i := 0; i <= final.index; i++ {
		if err := os.MkdirAll(filepath.Join(s.cfg.DepsDir, strconv.Itoa(i)), 0o755); err != nil {
			return res, &ExitError{Code: ExitFailed, Phase: "setup", Err: err}
		}
	}
	for _, bp := range supply {
		if err := s.supply(ctx, bp); err != nil {
			return res, err
		}
	}
	if err := s.finalize(ctx, final); err != nil {
		return res, err
	}
	types, err := s.release(ctx, final)
	if err != nil {
		return res, err
	}
	res.ProcessTypes = types
	res.StartCommand = types["web"]

	if err := s.writeOutputs(res); err != nil {
		return res, err
	}
	return res, nil
}

// detect runs bin/detect of each buildpack in order; the first to exit 0 wins.
func (s *stager) detect(ctx context.Context, bps []buildpack) (buildpack, string, error) {
	s.progress("Running detect")
	for _, bp := range bps {
		script := filepath.Join(bp.dir, "bin", "detect")
		if err := checkExecutable(script); err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				fmt.Fprintf(s.stderr, "Warning: skipping buildpack %s: %v\n", bp.name, err)
			}
			continue
		}
		out := &boundedBuffer{limit: maxDetectOutput}
		err := s.exec(ctx, script, []string{s.cfg.BuildDir}, out, s.stderr)
		if ctx.Err() != nil {
			return bp, "", &ExitError{Code: ExitFailed, Phase: "detect", Buildpack: bp.name, Err: ctx.Err()}
		}
		if err == nil {
			detected := firstLine(out.String())
			if detected != "" {
				s.progress("Detected %s (%s)", bp.name, detected)
			} else {
				s.progress("Detected %s", bp.name)
			}
			return bp, detected, nil
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			fmt.Fprintf(s.stderr, "Warning: detect of buildpack %s could not run: %v\n", bp.name, err)
		}
	}
	return buildpack{}, "", &ExitError{Code: ExitNoAppDetected, Phase: "detect",
		//lint:ignore ST1005 CF's wording, which users search for
		Err: errors.New("None of the buildpacks detected a compatible application")}
}

func (s *stager) cacheDir(bp buildpack) (string, error) {
	d := filepath.Join(s.cfg.CacheDir, bp.name)
	return d, os.MkdirAll(d, 0o755)
}

func (s *stager) supply(ctx context.Context, bp buildpack) error {
	script := filepath.Join(bp.dir, "bin", "supply")
	if err := checkExecutable(script); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			err = errors.New("one of the buildpacks chosen to supply dependencies does not support multi-buildpack apps (no bin/supply)")
		}
		return &ExitError{Code: ExitSupplyFailed, Phase: "supply", Buildpack: bp.name, Err: err}
	}
	return s.runSupply(ctx, bp, script)
}

func (s *stager) runSupply(ctx context.Context, bp buildpack, script string) error {
	cache, err := s.cacheDir(bp)
	if err != nil {
		return &ExitError{Code: ExitFailed, Phase: "setup", Err: err}
	}
	s.progress("Running supply for %s", bp.name)
	if err := s.exec(ctx, script, []string{s.cfg.BuildDir, cache, s.cfg.DepsDir, strconv.Itoa(bp.index)}, s.stdout, s.stderr); err != nil {
		return &ExitError{Code: ExitSupplyFailed, Phase: "supply", Buildpack: bp.name, Err: err}
	}
	return nil
}

// finalize runs the final buildpack: supply (if it has one) then finalize,
// or the legacy compile when it has no finalize.
func (s *stager) finalize(ctx context.Context, bp buildpack) error {
	cache, err := s.cacheDir(bp)
	if err != nil {
		return &ExitError{Code: ExitFailed, Phase: "setup", Err: err}
	}
	fin := filepath.Join(bp.dir, "bin", "finalize")
	ferr := checkExecutable(fin)
	if ferr == nil {
		sup := filepath.Join(bp.dir, "bin", "supply")
		switch serr := checkExecutable(sup); {
		case serr == nil:
			if err := s.runSupply(ctx, bp, sup); err != nil {
				return err
			}
		case !errors.Is(serr, os.ErrNotExist):
			return &ExitError{Code: ExitSupplyFailed, Phase: "supply", Buildpack: bp.name, Err: serr}
		}
		s.progress("Running finalize for %s", bp.name)
		args := []string{s.cfg.BuildDir, cache, s.cfg.DepsDir, strconv.Itoa(bp.index), s.cfg.ProfileDir}
		if err := s.exec(ctx, fin, args, s.stdout, s.stderr); err != nil {
			return &ExitError{Code: ExitFinalizeFailed, Phase: "finalize", Buildpack: bp.name, Err: err}
		}
		return nil
	}
	if !errors.Is(ferr, os.ErrNotExist) {
		return &ExitError{Code: ExitFinalizeFailed, Phase: "finalize", Buildpack: bp.name, Err: ferr}
	}
	comp := filepath.Join(bp.dir, "bin", "compile")
	if err := checkExecutable(comp); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			err = errors.New("buildpack has neither bin/finalize nor bin/compile")
		}
		return &ExitError{Code: ExitFinalizeFailed, Phase: "compile", Buildpack: bp.name, Err: err}
	}
	s.progress("Running compile for %s", bp.name)
	if err := s.exec(ctx, comp, []string{s.cfg.BuildDir, cache}, s.stdout, s.stderr); err != nil {
		return &ExitError{Code: ExitFinalizeFailed, Phase: "compile", Buildpack: bp.name, Err: err}
	}
	return nil
}

// release runs bin/release and merges its default_process_types with the
// app's Procfile, which wins.
func (s *stager) release(ctx context.Context, bp buildpack) (map[string]string, error) {
	fail := func(err error) error {
		return &ExitError{Code: ExitReleaseFailed, Phase: "release", Buildpack: bp.name, Err: err}
	}
	script := filepath.Join(bp.dir, "bin", "release")
	if err := checkExecutable(script); err != nil {
		return nil, fail(err)
	}
	s.progress("Running release for %s", bp.name)
	out := &boundedBuffer{limit: maxReleaseOutput}
	if err := s.exec(ctx, script, []string{s.cfg.BuildDir}, out, s.stderr); err != nil {
		return nil, fail(err)
	}
	if out.overflow {
		return nil, fail(fmt.Errorf("release output exceeds %d bytes", maxReleaseOutput))
	}
	types, err := parseRelease(out.Bytes())
	if err != nil {
		return nil, fail(err)
	}
	procfile, err := readProcfile(s.cfg.BuildDir)
	if err != nil {
		return nil, fail(err)
	}
	if procfile != nil {
		s.progress("Using process types from Procfile")
		warnings := procfile.warnings
		for _, w := range warnings {
			fmt.Fprintf(s.stderr, "Warning: Procfile: %s\n", w)
		}
		for k, v := range procfile.types {
			types[k] = v
		}
	}
	for _, k := range sortedKeys(types) {
		fmt.Fprintf(s.stdout, "       %s: %s\n", k, types[k])
	}
	return types, nil
}

// exec runs one buildpack script with cwd = the build dir, in its own process
// group so a cancelled staging takes its children down too.
func (s *stager) exec(ctx context.Context, script string, args []string, stdout, stderr io.Writer) error {
	cmd := exec.CommandContext(ctx, script, args...)
	cmd.Dir = s.cfg.BuildDir
	cmd.Env = s.cfg.Env
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	// A script's background children may hold its output pipes open.
	cmd.WaitDelay = 5 * time.Second
	return cmd.Run()
}

// checkExecutable reports os.ErrNotExist (wrapped) for a missing script and a
// descriptive error for one that is not a regular executable file.
func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not executable (check the buildpack zip's file modes)", path)
	}
	return nil
}

// boundedBuffer keeps the first limit bytes written and notes overflow,
// so a chatty script cannot exhaust the builder's memory.
type boundedBuffer struct {
	bytes.Buffer
	limit    int
	overflow bool
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	room := b.limit - b.Len()
	if len(p) > room {
		b.overflow = true
		if room > 0 {
			b.Buffer.Write(p[:room])
		}
		return len(p), nil
	}
	return b.Buffer.Write(p)
}

func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			if len(l) > 255 {
				l = l[:255]
			}
			return l
		}
	}
	return ""
}

// readFirstLine returns the first line of a small file, "" if unreadable.
func readFirstLine(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, 4<<10))
	return firstLine(string(b))
}
