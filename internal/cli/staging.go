package cli

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/pandoplatform/pando/internal/cli/api"
)

// stage builds pkg, printing the staging output live, and returns the
// STAGED build. A failed build prints an explanation on stderr and returns
// an error. f is the app's STG stream if the caller opened it already
// (stage stops it); nil: stage opens one. staged, unless nil, is called
// with the STAGED build before the output's last lines are drained, so what it starts runs beside the drain.
func (s *session) stage(ctx context.Context, app *api.App, pkg *api.Package, f *follower, staged func(*api.Build)) (*api.Build, error) {
	s.out("\nStaging app and tracing logs...\n")
	if f == nil {
		f = s.follow(ctx, app, []string{"STG"}, nil)
	}
	defer f.stop()
	// Start the build only once the stream is open, so no line is missed.
	if err := f.waitOpen(ctx, "the staging output"); err != nil {
		return nil, err
	}

	s.warnOtherStaging(ctx, app)
	b, err := s.c.CreateBuild(ctx, pkg.GUID)
	if err != nil {
		return nil, err
	}
	type result struct {
		b   *api.Build
		err error
	}
	buildDone := make(chan result, 1)
	go func() {
		b, err := s.c.AwaitBuild(ctx, b.GUID)
		buildDone <- result{b, err}
	}()

	// The last staging line printed: the API ends a failed staging's
	// output with "Staging failed: REASON", which need not be said twice.
	var last string
	show := func(l api.LogLine) {
		s.printStagingLine(l)
		t := strings.TrimSpace(l.Payload)
		if i := strings.LastIndexByte(t, '\n'); i >= 0 {
			t = strings.TrimSpace(t[i+1:])
		}
		if t != "" {
			last = t
		}
	}
	var res result
wait:
	for {
		select {
		case l := <-f.lines:
			show(l)
		case res = <-buildDone:
			break wait
		case err := <-f.done:
			f.end(ctx, err, "staging output interrupted")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if errors.Is(res.err, api.ErrBuildGone) {
		return nil, fmt.Errorf("stage %s: the app was deleted while it was staging", app.Name)
	}
	if res.err != nil {
		return nil, res.err
	}
	if staged != nil && res.b.State != "FAILED" && res.b.DropletGUID() != "" {
		staged(res.b)
	}
	f.drain(ctx, show)

	b = res.b
	if b.State == "FAILED" {
		if strings.Contains(b.ErrorText(), "cancelled") && s.appGone(ctx, app) {
			// Deleting the app cancels its staging: say that, not who
			// cancelled what.
			return nil, fmt.Errorf("stage %s: the app was deleted while it was staging", app.Name)
		}
		return nil, s.stagingFailed(ctx, app, b, last)
	}
	if b.DropletGUID() == "" {
		return nil, fmt.Errorf("staging %s ended %s without a droplet", app.Name, b.State)
	}
	return b, nil
}

// appGone reports whether app no longer exists (deleted, or another app
// has its name now). A failed look says no.
func (s *session) appGone(ctx context.Context, app *api.App) bool {
	now, err := s.c.AppByName(ctx, s.cfg.SpaceGUID, app.Name)
	if errors.Is(err, api.ErrNotFound) {
		return true
	}
	return err == nil && now.GUID != app.GUID
}

// warnOtherStaging says so when the app is staging already (a second push
// or a restage of it): the stream below shows both stagings' lines, and
// the one started last makes its droplet current (see newerBuild). A
// failed look is no reason to stop the push.
func (s *session) warnOtherStaging(ctx context.Context, app *api.App) {
	builds, err := s.c.AppBuilds(ctx, app.GUID, "STAGING")
	if err != nil || len(builds) == 0 {
		return
	}
	s.errf("   warning: %s is already staging (another push or restage of it, since %s): both stagings' output shows below, "+
		"and the app gets the droplet of the one started last\n", app.Name, builds[0].CreatedAt.In(s.loc).Format("15:04:05"))
}

// newerBuild returns a build of the app started after b that is staging or
// staged (a second push or a restage begun while b staged), or nil. Its
// droplet, not b's, is the one the user wants running: b's must not
// replace it because b happened to finish last. The API lists the builds
// newest first in its own (sub-second) order, while created_at shows whole
// seconds: the builds listed before b are the newer ones, also when both
// pushes began within one second. A failed look returns nil.
func (s *session) newerBuild(ctx context.Context, app *api.App, b *api.Build) *api.Build {
	builds, err := s.c.AppBuilds(ctx, app.GUID, "STAGING", "STAGED")
	if err != nil {
		return nil
	}
	for i := range builds {
		if builds[i].GUID == b.GUID {
			return nil
		}
		if !builds[i].CreatedAt.Before(b.CreatedAt) {
			return &builds[i]
		}
	}
	return nil
}

func (s *session) printStagingLine(l api.LogLine) {
	for _, line := range strings.Split(strings.TrimRight(l.Payload, "\n"), "\n") {
		s.out("   %s\n", line)
	}
}

// stagingCode maps a build error to the lifecycle exit code it stands for
// (222..225), -1 for a staging timeout, or 0 when unknown. CF's error
// names come first; any "222".."225" in the text is a fallback.
func stagingCode(msg string) int {
	lower := strings.ToLower(msg)
	switch {
	case strings.Contains(lower, "noappdetected") || strings.Contains(lower, "no app detected") || strings.Contains(lower, "none of the buildpacks detected"):
		return 222
	case strings.Contains(lower, "buildpackcompilefailed") || strings.Contains(lower, "compile phase") || strings.Contains(lower, "finalize"):
		return 223
	case strings.Contains(lower, "buildpackreleasefailed") || strings.Contains(lower, "release phase"):
		return 224
	case strings.Contains(lower, "supply"):
		return 225
	case strings.Contains(lower, "timeexpired") || strings.Contains(lower, "timed out") || strings.Contains(lower, "time_out") || strings.Contains(lower, "timeout"):
		return -1
	}
	if m := exitCodeRE.FindString(msg); m != "" {
		n, _ := strconv.Atoi(m)
		return n
	}
	return 0
}

var exitCodeRE = regexp.MustCompile(`\b22[2-5]\b`)

// stagingFailed prints what went wrong and what to do, and returns the
// error the command exits with. lastLine is the staging output's last
// line: when it already said why, only the hints follow it.
func (s *session) stagingFailed(ctx context.Context, app *api.App, b *api.Build, lastLine string) error {
	msg := b.ErrorText()
	if msg == "" {
		msg = "staging failed"
	}
	if lastLine != "Staging failed: "+msg {
		s.errf("\nStaging failed: %s\n", msg)
	}
	switch stagingCode(msg) {
	case 222:
		tried := b.Lifecycle.Data.Buildpacks
		if len(tried) == 0 {
			tried = app.Lifecycle.Data.Buildpacks
		}
		if len(tried) == 0 {
			if bps, err := s.c.Buildpacks(ctx); err == nil {
				for _, bp := range bps {
					// Only these take part in detection, and the builtin
					// binary_buildpack never detects an app: it runs only
					// when named.
					if bp.Enabled && bp.Name != "binary_buildpack" && bp.State == "READY" && (bp.Stack == nil || *bp.Stack == "" || *bp.Stack == app.Lifecycle.Data.Stack) {
						tried = append(tried, bp.Name)
					}
				}
			}
		}
		list := "the admin buildpacks"
		if len(tried) > 0 {
			list = strings.Join(tried, ", ")
		}
		s.errf("No buildpack recognised the app (tried: %s).\n", list)
		s.errf("Name the right one with -b BUILDPACK ('pando buildpacks' lists them), or check that\n")
		s.errf("the app's files are at the top of the pushed directory (-p). The builtin buildpacks look for\n")
		s.errf("a Staticfile (a static site: add one, it may be empty), an executable jar (-p app.jar), a Gemfile,\n")
		s.errf("package.json, go.mod, requirements.txt or pyproject.toml. binary_buildpack never recognises an app:\n")
		s.errf("a prebuilt binary needs -b binary_buildpack -c CMD.\n")
	case 223:
		s.errf("The buildpack's compile/finalize step failed (exit status 223): its output above says why.\n")
	case 224:
		s.errf("The buildpack's release step failed (exit status 224): it must print YAML with\n")
		s.errf("default_process_types, or the app needs a Procfile or a start command (-c).\n")
	case 225:
		s.errf("A supply buildpack failed (exit status 225): its output above says why.\n")
	case -1:
		s.errf("Staging took longer than the server allows; make the build faster or ask the operator\n")
		s.errf("to raise --staging-timeout.\n")
	}
	return errors.New("staging " + app.Name + " failed: " + msg)
}
