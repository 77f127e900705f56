package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/pandoplatform/pando/internal/cli/api"
)

func (e *env) pushCmd() *cobra.Command {
	f := &pushFlags{}
	var waitTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "push [NAME]",
		Short: "Push an app: upload, stage and start it",
		Long: "Push an app from a directory (or a manifest): upload the files the server lacks,\n" +
			"stage them with a buildpack (or use --docker-image), then start the app and\n" +
			"wait until its instances run.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.instancesSet = cmd.Flags().Changed("instances")
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			return e.push(cmdContext(cmd), name, f, waitTimeout)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.path, "path", "p", "", "app directory or .zip/.jar/.war (default \".\")")
	fl.StringArrayVarP(&f.buildpacks, "buildpack", "b", nil, "buildpack name (repeat for several; the last is final)")
	fl.StringVarP(&f.command, "start-command", "c", "", "start command")
	fl.StringVarP(&f.memory, "memory", "m", "", "memory limit per instance (e.g. 256M, 1G)")
	fl.StringVarP(&f.disk, "disk", "k", "", "disk limit per instance (e.g. 512M, 1G)")
	fl.StringVarP(&f.logRate, "log-rate-limit", "l", "", "log rate limit per second per instance (e.g. 16K, 1M, -1 for unlimited)")
	fl.IntVarP(&f.instances, "instances", "i", 0, "number of instances")
	fl.StringVarP(&f.manifest, "manifest", "f", "", "manifest file (default ./manifest.yml when present)")
	fl.BoolVar(&f.noManifest, "no-manifest", false, "ignore ./manifest.yml")
	fl.StringArrayVar(&f.vars, "var", nil, "manifest variable NAME=VALUE for ((NAME)) (repeatable)")
	fl.StringArrayVar(&f.varsFiles, "vars-file", nil, "YAML file of manifest variables (repeatable)")
	fl.StringVarP(&f.stack, "stack", "s", "", "stack to stage and run on")
	fl.StringVarP(&f.healthCheck, "health-check-type", "u", "", "health check type: port, http or process")
	fl.StringVar(&f.endpoint, "endpoint", "", "path the http health check requests (with -u http), e.g. /health")
	fl.IntVarP(&f.timeout, "timeout", "t", 0, "seconds the app may take to become healthy after starting")
	fl.StringVar(&f.dockerImage, "docker-image", "", "Docker image to run (no upload, no buildpack)")
	fl.StringVar(&f.dockerUsername, "docker-username", "", "registry user for --docker-image (password from CF_DOCKER_PASSWORD)")
	fl.BoolVar(&f.noStart, "no-start", false, "upload only: do not stage or start")
	fl.BoolVar(&f.noRoute, "no-route", false, "do not map a route")
	fl.BoolVar(&f.randomRoute, "random-route", false, "map NAME-RANDOM.DOMAIN instead of NAME.DOMAIN (when the app has no route)")
	fl.DurationVar(&waitTimeout, "wait-timeout", 0, waitTimeoutHelp)
	return cmd
}

func (e *env) push(ctx context.Context, name string, f *pushFlags, waitTimeout time.Duration) error {
	manifestPath := f.manifest
	// implicit: the manifest is read only because it is in the current
	// directory, which a user pushing with -p may not think of.
	implicit := false
	if manifestPath == "" && !f.noManifest {
		manifestPath = defaultManifest()
		implicit = manifestPath != ""
	}
	var fromManifest []*manifestApp
	if manifestPath != "" {
		var err error
		vars, err := loadVars(f.varsFiles, f.vars)
		if err != nil {
			return err
		}
		if fromManifest, err = readManifest(manifestPath, vars); err != nil {
			return implicitManifestHint(err, implicit)
		}
		for _, a := range fromManifest {
			for _, w := range unknownKeyWarnings(a) {
				e.errf("warning: %s\n", w)
			}
		}
	}
	apps, err := selectApps(name, fromManifest, f)
	if err != nil {
		return implicitManifestHint(err, implicit)
	}
	// Read every app's files first: a wrong path or an empty directory
	// fails before anything changes on the server.
	var dockerPassword string
	for _, a := range apps {
		if image, user := a.docker(); image != "" {
			// The registry password too: a missing one fails before
			// the app is created.
			if user != "" && dockerPassword == "" {
				if dockerPassword, err = e.dockerPassword(); err != nil {
					return err
				}
			}
			a.dockerPassword = dockerPassword
			continue
		}
		if a.files, err = collectFiles(a.path); err != nil {
			return fmt.Errorf("app %s: %w", a.name(), err)
		}
		if len(a.files) == 0 {
			dir := a.path
			if abs, err := filepath.Abs(dir); err == nil {
				dir = abs
			}
			//lint:ignore ST1005 the cf CLI's wording
			return fmt.Errorf("No app files found in '%s'", dir)
		}
	}
	s, err := e.newSession(ctx, true)
	if err != nil {
		return err
	}
	manifest, err := manifestYAML(apps)
	if err != nil {
		return fmt.Errorf("render manifest: %w", err)
	}
	if manifestPath != "" {
		e.out("Applying manifest %s...\n", manifestPath)
	}
	if err := s.c.ApplyManifest(ctx, s.cfg.SpaceGUID, manifest); err != nil {
		if api.IsStatus(err, http.StatusNotFound) {
			return fmt.Errorf("the targeted space %s no longer exists, or %s has no role in it: choose one with 'pando target -o ORG -s SPACE'", s.cfg.SpaceName, s.user())
		}
		return s.denied(err, "space developer role in space "+s.cfg.SpaceName)
	}
	var limits *api.InstanceMemoryLimits
	if !f.noStart {
		limits = s.instanceLimits(ctx)
	}
	for i, a := range apps {
		if i > 0 {
			s.out("\n")
		}
		if err := s.pushApp(ctx, a, f.noStart, waitTimeout, limits); err != nil {
			if len(apps) > 1 {
				return fmt.Errorf("push %s: %w", a.name(), err)
			}
			return err
		}
	}
	return nil
}

// implicitManifestHint adds to err, when the manifest was read only because
// it is in the current directory, that it was and how to leave it out.
func implicitManifestHint(err error, implicit bool) error {
	if !implicit {
		return err
	}
	return fmt.Errorf("%w (the manifest in the current directory is read unless --no-manifest is given)", err)
}

func (s *session) pushApp(ctx context.Context, m *manifestApp, noStart bool, waitTimeout time.Duration, limits *api.InstanceMemoryLimits) error {
	name := m.name()
	s.out("Pushing app %s to %s...\n", name, s.where())
	app, err := s.app(ctx, name)
	if err != nil {
		return err
	}
	if err := s.checkInstanceMemory(ctx, app, limits); err != nil {
		return err
	}
	var pkg *api.Package
	var stg *follower // the staging output's stream, opened early
	defer func() {
		if stg != nil {
			stg.stop()
		}
	}()
	if image, user := m.docker(); image != "" {
		d := &api.DockerData{Image: image, Username: user}
		if user != "" {
			d.Password = m.dockerPassword
		}
		s.out("Using Docker image %s\n", image)
		if !noStart {
			// No upload to wait for: open the staging stream while the
			// package is created rather than after.
			stg = s.follow(ctx, app, []string{"STG"}, nil)
		}
		if pkg, err = s.c.CreatePackage(ctx, app.GUID, d); err != nil {
			return err
		}
	} else if app.Lifecycle.Type == "docker" {
		// Before any upload: the API refuses files for a docker app.
		return fmt.Errorf("app %s runs a docker image: push it with --docker-image, or delete it ('pando delete %s') to push files under this name", name, name)
	} else if pkg, err = s.uploadBits(ctx, app, m.files); err != nil {
		return err
	}
	if pkg, err = s.c.WaitPackageReady(ctx, pkg); err != nil {
		return fmt.Errorf("process uploaded files: %w", err)
	}
	if noStart {
		if app.State == "STARTED" {
			if _, err := s.c.AppAction(ctx, app.GUID, "stop"); err != nil {
				return err
			}
		}
		s.out("\nUploaded; not staged or started (--no-start). Run 'pando start %s' to stage and start it.\n", name)
		return nil
	}
	f := stg
	stg = nil // stage stops it
	if err := s.stageAndRestart(ctx, app, pkg, waitTimeout, f); err != nil {
		return err
	}
	return s.showApp(ctx, name)
}

// stageAndRestart stages pkg, makes the droplet current and (re)starts the
// app, waiting for its instances. stg is the staging output's stream when
// the caller opened it already (nil: stage opens it).
//
// The droplet is made current and the app restarted while the staging
// output's last lines are drained, not after: the drain waits for the
// stream to go quiet, and the instances can start meanwhile.
func (s *session) stageAndRestart(ctx context.Context, app *api.App, pkg *api.Package, waitTimeout time.Duration, stg *follower) error {
	var restarted chan error
	_, err := s.stage(ctx, app, pkg, stg, func(b *api.Build) {
		restarted = make(chan error, 1)
		go func() {
			if nb := s.newerBuild(ctx, app, b); nb != nil {
				restarted <- fmt.Errorf("a newer push or restage of %s (staging since %s) replaces this one: this push's droplet was not made current",
					app.Name, nb.CreatedAt.In(s.loc).Format("15:04:05"))
				return
			}
			if err := s.c.SetCurrentDroplet(ctx, app.GUID, b.DropletGUID()); err != nil {
				restarted <- err
				return
			}
			_, err := s.c.AppAction(ctx, app.GUID, "restart")
			restarted <- err
		}()
	})
	if restarted == nil {
		if err == nil {
			err = fmt.Errorf("staging %s returned no droplet", app.Name)
		}
		return err
	}
	if rerr := <-restarted; err == nil {
		err = rerr
	}
	if err != nil {
		return err
	}
	s.out("\nWaiting for app %s to start...\n", app.Name)
	return s.waitStarted(ctx, app, waitTimeout)
}

func (e *env) dockerPassword() (string, error) {
	if p := e.getenv("CF_DOCKER_PASSWORD"); p != "" {
		return p, nil
	}
	if isTerminal(e.streams.In) {
		return e.promptSecret("Docker password")
	}
	return "", errors.New("--docker-username needs the password in the environment variable CF_DOCKER_PASSWORD")
}

// uploadBits sends the files the server does not have and returns the
// package.
func (s *session) uploadBits(ctx context.Context, app *api.App, files []appFile) (*api.Package, error) {
	s.out("Packaging files to upload...\n")
	var ask []api.Resource
	for _, f := range files {
		// Zero-byte files and links are always zipped, never matched.
		if f.size > 0 && f.symlink == "" {
			ask = append(ask, f.resource())
		}
	}
	have := map[string]string{}
	if len(ask) > 0 {
		matched, err := s.c.ResourceMatches(ctx, ask)
		if err != nil {
			return nil, err
		}
		for _, r := range matched {
			have[r.Path] = r.Checksum.Value
		}
	}
	var upload []appFile
	var matched []api.Resource
	var uploadBytes int64
	for _, f := range files {
		if sum, ok := have[f.rel]; ok && f.size > 0 && f.symlink == "" && sum == f.sha1 {
			matched = append(matched, f.resource())
			continue
		}
		upload = append(upload, f)
		uploadBytes += f.size
	}
	if err := s.checkUploadLimit(ctx, upload, uploadBytes); err != nil {
		return nil, err
	}
	s.out("Uploading %s (%s), %d unchanged\n", plural(len(upload), "file"), iecBytes(uploadBytes), len(matched))
	if uploadBytes >= bigUpload {
		s.errf("warning: a big upload; largest files: %s. Leave out what the app does not need at run time with a .cfignore file.\n", largestFiles(upload, 3))
	}
	pkg, err := s.c.CreatePackage(ctx, app.GUID, nil)
	if err != nil {
		return nil, err
	}
	uploaded, err := s.sendPackage(ctx, pkg.GUID, upload, matched)
	var apiErr *api.Error
	if errors.As(err, &apiErr) && apiErr.StatusCode == 422 && strings.Contains(err.Error(), "is not in the resource cache") {
		// The server trimmed its cache between the match and the upload:
		// send every file.
		s.out("The server no longer has some unchanged files; uploading all %s (%s)\n", plural(len(files), "file"), iecBytes(totalSize(files)))
		uploaded, err = s.sendPackage(ctx, pkg.GUID, files, nil)
	}
	if api.IsStatus(err, http.StatusRequestEntityTooLarge) || (api.IsStatus(err, http.StatusUnprocessableEntity) && strings.Contains(err.Error(), "zip bomb")) {
		return nil, fmt.Errorf("%w (largest files: %s; leave out what the app does not need with a .cfignore file)", err, largestFiles(upload, 3))
	}
	return uploaded, err
}

// bigUpload is the upload size from which push names the largest files.
const bigUpload = 100 << 20

// largestFiles names the n biggest of files with their sizes.
func largestFiles(files []appFile, n int) string {
	sorted := slices.Clone(files)
	slices.SortFunc(sorted, func(a, b appFile) int { return cmp.Compare(b.size, a.size) })
	parts := make([]string, 0, n)
	for _, f := range sorted[:min(n, len(sorted))] {
		parts = append(parts, fmt.Sprintf("%s (%s)", f.rel, iecBytes(f.size)))
	}
	return strings.Join(parts, ", ")
}

func totalSize(files []appFile) int64 {
	var n int64
	for _, f := range files {
		n += f.size
	}
	return n
}

// sendPackage zips files and uploads them with the matched resources.
func (s *session) sendPackage(ctx context.Context, pkgGUID string, files []appFile, matched []api.Resource) (*api.Package, error) {
	tmp, err := os.CreateTemp("", "pando-package-*.zip")
	if err != nil {
		return nil, fmt.Errorf("create package zip: %w", err)
	}
	zipPath := tmp.Name()
	tmp.Close()
	defer os.Remove(zipPath)
	if err := writeZip(zipPath, files); err != nil {
		return nil, fmt.Errorf("create package zip: %w", err)
	}
	fi, err := os.Stat(zipPath)
	if err != nil {
		return nil, err
	}
	prog := s.newProgress()
	pkg, err := s.c.UploadPackage(ctx, pkgGUID, matched, api.Upload{
		Open:     func() (io.ReadCloser, error) { return os.Open(zipPath) },
		Size:     fi.Size(),
		Filename: "package.zip",
		Progress: prog.update,
	})
	prog.done()
	if err != nil {
		return nil, err
	}
	return pkg, nil
}

// progress draws "Uploading 1.2 MiB / 3.4 MiB (35%)" on a terminal's
// stderr, at most every 100 ms.
type progress struct {
	mu     sync.Mutex
	e      *env
	on     bool
	last   time.Time
	shown  bool
	sent   int64
	total  int64
	prefix string
}

func (e *env) newProgress() *progress {
	return &progress{e: e, on: isTerminal(e.streams.Err), prefix: "Uploading"}
}

func (p *progress) update(sent, total int64) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent, p.total = sent, total
	now := time.Now()
	if sent < total && now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	p.shown = true
	pct := 100
	if total > 0 {
		pct = int(sent * 100 / total)
	}
	p.e.errf("\r%s %s / %s (%d%%)\x1b[K", p.prefix, iecBytes(sent), iecBytes(total), pct)
}

func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		p.e.errf("\n")
		p.shown = false
	}
}

// plural renders "1 file", "3 files".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
