package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/pandoplatform/pando/internal/cli/api"
)

// pushTimeout bounds one push from start to first 200.
const pushTimeout = 3 * time.Minute

// pushRun is one measured push.
type pushRun struct {
	Name          string `json:"name"`
	UploadedFiles int    `json:"uploaded_files"`
	UploadedBytes int64  `json:"uploaded_bytes"`
	MatchedFiles  int    `json:"matched_files"`
	DropletGUID   string `json:"droplet_guid,omitempty"`
	// Not200 counts router answers before the first 200.
	Not200 int   `json:"not_200"`
	marks  marks // kept for the breakdown
}

func (r *pushRun) total() time.Duration { return r.marks[mFirst200].Sub(r.marks[mStart]) }

// manifest renders what apply_manifest receives for app a named name,
// with the default route (as the CLI sends it).
func manifest(a *appSpec, name string) ([]byte, error) {
	app := map[string]any{"name": name, "default-route": true}
	if len(a.Buildpacks) > 0 {
		app["buildpacks"] = a.Buildpacks
	}
	if a.Command != "" {
		app["command"] = a.Command
	}
	return yaml.Marshal(map[string]any{"applications": []any{app}})
}

// push pushes a.Dir as app name through the API, the way `pando push`
// does, and times each step until GET / through the router answers 200.
func (b *bench) push(ctx context.Context, a *appSpec, name string) (*pushRun, error) {
	ctx, cancel := context.WithTimeout(ctx, pushTimeout)
	defer cancel()
	r := &pushRun{Name: name, marks: marks{}}
	m := r.marks
	m[mStart] = time.Now()

	mf, err := manifest(a, name)
	if err != nil {
		return nil, err
	}
	if err := b.c.ApplyManifest(ctx, b.spaceGUID, mf); err != nil {
		return nil, err
	}
	app, err := b.c.AppByName(ctx, b.spaceGUID, name)
	if err != nil {
		return nil, err
	}
	m[mAppReady] = time.Now()

	// Follow STG and CELL lines from the push's start (the server replays
	// what came before the stream opened), in parallel with the upload.
	tap, connected := tapLogs(ctx, b.c, app.GUID, m[mStart].Add(-time.Millisecond), b.log)
	tapStopped := false
	defer func() {
		if !tapStopped {
			_ = tap.stop(marks{})
		}
	}()

	pkg, err := b.upload(ctx, app, a, r)
	if err != nil {
		return nil, err
	}
	m[mPackageReady] = time.Now()

	// As the CLI: start the build once the stream is open.
	select {
	case <-connected:
	case <-tap.stopped:
		return nil, fmt.Errorf("follow staging logs: %v", tap.err)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	build, err := b.c.CreateBuild(ctx, pkg.GUID)
	if err != nil {
		return nil, err
	}
	m[mBuildCreated] = time.Now()
	build, err = b.c.AwaitBuild(ctx, build.GUID)
	if err != nil {
		return nil, err
	}
	m[mStaged] = time.Now()
	if build.State != "STAGED" || build.DropletGUID() == "" {
		return nil, fmt.Errorf("staging %s ended %s: %s", name, build.State, build.ErrorText())
	}
	r.DropletGUID = build.DropletGUID()

	if err := b.c.SetCurrentDroplet(ctx, app.GUID, r.DropletGUID); err != nil {
		return nil, err
	}
	if _, err := b.c.AppAction(ctx, app.GUID, "restart"); err != nil {
		return nil, err
	}
	m[mRestarted] = time.Now()
	if err := b.waitRunning(ctx, app.GUID); err != nil {
		return nil, err
	}
	m[mRunning] = time.Now()

	at, not200, err := b.waitFor200(ctx, name)
	if err != nil {
		return nil, err
	}
	m[mFirst200], r.Not200 = at, not200

	// The cell's lines are in the log store before RUNNING is reported;
	// give the stream a moment to deliver them.
	tap.await(ctx, 2*time.Second, cellMarks...)
	tapStopped = true
	if err := tap.stop(m); err != nil {
		b.log.Warn("log stream ended early: breakdown may lack cell steps", "app", name, "error", err)
	}
	return r, nil
}

// upload sends the files the server lacks (resource matching, zip, upload)
// and returns the READY package.
func (b *bench) upload(ctx context.Context, app *api.App, a *appSpec, r *pushRun) (*api.Package, error) {
	files, err := collectFiles(a.Dir)
	if err != nil {
		return nil, err
	}
	var ask []api.Resource
	for _, f := range files {
		if f.size > 0 { // zero-byte files are always zipped (as the CLI does)
			ask = append(ask, f.resource())
		}
	}
	have := map[string]string{}
	if len(ask) > 0 {
		matched, err := b.c.ResourceMatches(ctx, ask)
		if err != nil {
			return nil, err
		}
		for _, res := range matched {
			have[res.Path] = res.Checksum.Value
		}
	}
	r.marks[mMatched] = time.Now()
	var send []appFile
	var matched []api.Resource
	for _, f := range files {
		if sum, ok := have[f.rel]; ok && f.size > 0 && sum == f.sha1 {
			matched = append(matched, f.resource())
			continue
		}
		send = append(send, f)
		r.UploadedBytes += f.size
	}
	r.UploadedFiles, r.MatchedFiles = len(send), len(matched)
	zipPath, size, err := zipToTemp(b.tmp, send)
	if err != nil {
		return nil, err
	}
	defer os.Remove(zipPath)
	r.marks[mZipped] = time.Now()
	pkg, err := b.c.CreatePackage(ctx, app.GUID, nil)
	if err != nil {
		return nil, err
	}
	r.marks[mPkgCreated] = time.Now()
	pkg, err = b.c.UploadPackage(ctx, pkg.GUID, matched, api.Upload{
		Open:     func() (io.ReadCloser, error) { return os.Open(zipPath) },
		Size:     size,
		Filename: "package.zip",
	})
	if err != nil {
		return nil, err
	}
	return b.c.WaitPackageReady(ctx, pkg)
}

// waitRunning long-polls the stats of the app's processes until each has
// all its instances RUNNING, as `pando push` does. A crash is an error.
func (b *bench) waitRunning(ctx context.Context, appGUID string) error {
	procs, err := b.c.AppProcesses(ctx, appGUID)
	if err != nil {
		return err
	}
	for _, p := range procs {
		if p.Instances == 0 {
			continue
		}
		since := ""
		for {
			st, err := b.c.WaitStats(ctx, p.GUID, since, 30*time.Second)
			if err != nil {
				return err
			}
			running, total := 0, 0
			for _, in := range st.Resources {
				total++
				switch in.State {
				case "RUNNING":
					running++
				case "CRASHED":
					return fmt.Errorf("instance %d crashed: %s", in.Index, in.DetailsText())
				}
			}
			if running >= p.Instances && running == total {
				break
			}
			if st.StateHash == "" {
				return errors.New("the server's stats endpoint did not long-poll (no pando_state_hash)")
			}
			since = st.StateHash
		}
	}
	return nil
}

// router200Poll is how often the bench asks the router; it bounds the
// route step's resolution.
const router200Poll = 2 * time.Millisecond

// waitFor200 polls GET / through the router with the app's host on new
// connections (as separate curls would) until it answers 200. It returns
// when, and how many non-200 answers came first.
func (b *bench) waitFor200(ctx context.Context, name string) (time.Time, int, error) {
	host := name + ".localhost"
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	not200 := 0
	last := ""
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b.srv.RouterAddr+"/", nil)
		if err != nil {
			return time.Time{}, 0, err
		}
		req.Host = host
		resp, err := b.routerClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Now(), not200, nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		not200++
		t := time.NewTimer(router200Poll)
		select {
		case <-deadline.C:
			t.Stop()
			return time.Time{}, 0, fmt.Errorf("GET / with Host %s through the router: no 200 within 30s (last: %s)", host, last)
		case <-ctx.Done():
			t.Stop()
			return time.Time{}, 0, ctx.Err()
		case <-t.C:
		}
	}
}

// cliPush runs `pando push` as a user would and then polls the router: the
// whole client, summary included, against the API-driven measurement.
func (b *bench) cliPush(ctx context.Context, a *appSpec, name string) (*pushRun, error) {
	ctx, cancel := context.WithTimeout(ctx, pushTimeout)
	defer cancel()
	r := &pushRun{Name: name, marks: marks{}}
	args := []string{"push", name, "-p", a.Dir}
	for _, bp := range a.Buildpacks {
		args = append(args, "-b", bp)
	}
	if a.Command != "" {
		args = append(args, "-c", a.Command)
	}
	cmd := exec.CommandContext(ctx, b.pandoBin, args...)
	cmd.Env = b.cliEnv()
	cmd.Dir = b.tmp
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	r.marks[mStart] = time.Now()
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("pando %s: %w\n%s", strings.Join(args, " "), err, tail(out.String(), 20))
	}
	r.marks[mCLIExited] = time.Now()
	at, not200, err := b.waitFor200(ctx, name)
	if err != nil {
		return nil, err
	}
	r.marks[mFirst200], r.Not200 = at, not200
	return r, nil
}

// cliEnv points the CLI at the bench's own config dir.
func (b *bench) cliEnv() []string {
	env := []string{"PANDO_HOME=" + b.cliHome}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PANDO_") || strings.HasPrefix(kv, "CF_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
