// Package cli implements the pando client verbs (login, push, apps, logs,
// scale, ...). They speak the CF v3 API exactly as the cf CLI does, plus
// Pando's streaming additions so a push shows staging output and instance
// start-up without fixed-interval polling. Configuration (target, tokens,
// org and space) lives in ~/.pando/config.json.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pandoplatform/pando/internal/cli/api"
)

// IOStreams are the command's standard streams.
type IOStreams struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// StdStreams returns the process's standard streams.
func StdStreams() IOStreams { return IOStreams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr} }

// env is everything a command needs from its surroundings; tests replace
// parts of it.
type env struct {
	streams IOStreams
	getenv  func(string) string
	// localAPI is the local server's URL (LocalAPI), the default target.
	localAPI   string
	euid       int
	httpClient *http.Client
	loc        *time.Location
	now        func() time.Time
	// pollMin/pollMax bound job, package and build polling.
	pollMin, pollMax time.Duration
	// statsPoll is the stats polling interval on servers without Pando's
	// long-poll endpoint.
	statsPoll time.Duration
	// startWaitMin and startWaitMargin make the default wait for
	// instances (see session.startWait).
	startWaitMin, startWaitMargin time.Duration
	// cellHintEvery is how often a wait for starting instances reads what
	// the cells logged about them (see cellHints).
	cellHintEvery time.Duration
	// slowStartNote is how long instances may be starting before the wait
	// says once what the health check waits for (see slowStartText).
	slowStartNote time.Duration
	// drainIdle: after staging ends, keep reading staging lines until the
	// stream is quiet this long (bounded by drainMax).
	drainIdle, drainMax time.Duration
	// drainCatchUp bounds the wait, once the work ended, for the stream
	// to be back and to deliver the newest line the log store holds.
	drainCatchUp time.Duration
	// reconnectMin/reconnectMax bound the wait between attempts to reach
	// a server that went away while a log stream was followed.
	reconnectMin, reconnectMax time.Duration
}

func defaultEnv(streams IOStreams) *env {
	return &env{
		streams:    streams,
		getenv:     os.Getenv,
		localAPI:   LocalAPI,
		euid:       os.Geteuid(),
		httpClient: &http.Client{},
		loc:        time.Local,
		now:        time.Now,
		pollMin:    100 * time.Millisecond,
		pollMax:    time.Second,
		statsPoll:  250 * time.Millisecond,
		drainIdle:  50 * time.Millisecond,
		drainMax:   3 * time.Second,
		// A restarted server answers the build before the stream is back.
		drainCatchUp: 10 * time.Second,

		cellHintEvery:   3 * time.Second,
		slowStartNote:   15 * time.Second,
		startWaitMin:    2 * time.Minute,
		startWaitMargin: 30 * time.Second,

		reconnectMin: time.Second,
		reconnectMax: 5 * time.Second,
	}
}

// NewCommands returns the client verbs, ready to add to the root command
// (with Groups).
// Each command silences cobra's usage and error printing: the caller prints
// a returned error with ReportError and exits non-zero.
func NewCommands(streams IOStreams) []*cobra.Command {
	return defaultEnv(streams).commands()
}

// interruptedMsg is what Ctrl-C says. A push cut short before its restart
// leaves the app as it was: running its previous droplet if it ran (the
// staging under way still ends on the server, its droplet unused), stopped
// if it is new.
const interruptedMsg = "error: interrupted (the server keeps what it already did and ends a staging under way: 'pando app NAME' shows where the app stands; " +
	"a push cut short before the restart leaves the app as it was, on its previous droplet (a new app stopped): push again)"

// ReportError prints err as one line "error: <cause>" and returns the exit
// status (0 when err is nil).
func ReportError(w io.Writer, err error) int {
	if err == nil {
		return 0
	}
	if errors.Is(err, context.Canceled) {
		// Ctrl-C: the server carries on with what it was already asked.
		fmt.Fprintln(w, interruptedMsg)
		return 1
	}
	msg := err.Error()
	if m, ok := unknownCommand(msg); ok {
		fmt.Fprintf(w, "error: %s\n", m)
		return 1
	}
	var op *net.OpError
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound && strings.HasSuffix(strings.TrimSuffix(dnsErr.Name, "."), ".localhost"):
		msg += " (this machine does not resolve *.localhost names: use the API's IP address, e.g. 'pando login -a http://127.0.0.1:9022')"
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		msg += " (no such host name: is the API URL right? 'pando endpoint' shows it)"
	case errors.As(err, &op) && op.Op == "dial" && op.Addr != nil && strings.HasSuffix(LocalAPI, "//"+op.Addr.String()):
		msg += " (is the local server running? start it with 'pando server')"
	case errors.As(err, &op) && op.Op == "dial" && op.Addr != nil:
		msg += " (is the server running there, and is the API URL right? 'pando endpoint' shows it)"
	case strings.Contains(msg, "server gave HTTP response to HTTPS client"):
		msg += " (the server speaks plain HTTP: log in with an http:// URL, e.g. 'pando login -a http://HOST:PORT')"
	}
	msg += quotaHint(msg)
	msg += certificateHint(err)
	fmt.Fprintf(w, "error: %s\n", msg)
	return 1
}

func (e *env) commands() []*cobra.Command {
	cmds := []*cobra.Command{
		e.apiCmd(), e.loginCmd(), e.logoutCmd(), e.targetCmd(),
		e.pushCmd(), e.appsCmd(), e.appCmd(), e.logsCmd(),
		e.scaleCmd(), e.startCmd(), e.stopCmd(), e.restartCmd(), e.restageCmd(),
		e.deleteCmd(), e.setEnvCmd(), e.unsetEnvCmd(), e.envCmd(), e.eventsCmd(),
		e.buildpacksCmd(), e.createBuildpackCmd(), e.updateBuildpackCmd(), e.deleteBuildpackCmd(), e.stacksCmd(), e.cellsCmd(),
		e.runTaskCmd(), e.tasksCmd(), e.terminateTaskCmd(),
		e.orgsCmd(), e.spacesCmd(), e.createOrgCmd(), e.deleteOrgCmd(), e.createSpaceCmd(), e.deleteSpaceCmd(),
		e.createUserCmd(), e.deleteUserCmd(), e.passwdCmd(),
		e.setOrgRoleCmd(), e.unsetOrgRoleCmd(), e.setSpaceRoleCmd(), e.unsetSpaceRoleCmd(), e.orgUsersCmd(), e.spaceUsersCmd(),
		e.quotasCmd(), e.createQuotaCmd(), e.updateQuotaCmd(), e.setQuotaCmd(),
		e.spaceQuotasCmd(), e.createSpaceQuotaCmd(), e.setSpaceQuotaCmd(), e.unsetSpaceQuotaCmd(),
		e.createUserProvidedServiceCmd(), e.updateUserProvidedServiceCmd(), e.servicesCmd(), e.bindServiceCmd(), e.unbindServiceCmd(), e.deleteServiceCmd(),
		e.domainsCmd(), e.createDomainCmd(), e.createSharedDomainCmd(), e.createPrivateDomainCmd(), e.deleteDomainCmd(),
		e.sharePrivateDomainCmd(), e.unsharePrivateDomainCmd(),
		e.routesCmd(), e.createRouteCmd(), e.deleteRouteCmd(), e.mapRouteCmd(), e.unmapRouteCmd(),
	}
	for _, c := range cmds {
		if c.Example == "" {
			c.Example = examples[c.Name()]
		}
		c.GroupID = verbGroup[c.Name()]
		c.SilenceUsage = true
		c.SilenceErrors = true
		withUsage(c)
	}
	return cmds
}

// withUsage makes a wrong number of arguments say the command's usage line,
// not only cobra's "accepts 1 arg(s), received 0".
func withUsage(c *cobra.Command) {
	check := c.Args
	if check == nil {
		return
	}
	c.Args = func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			// "pando help cell drain" for a command under another.
			verb := strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
			return fmt.Errorf("%w; usage: %s ('pando help %s' for more)", err, strings.TrimSuffix(cmd.UseLine(), " [flags]"), verb)
		}
		return nil
	}
}

func (e *env) out(format string, args ...any) { fmt.Fprintf(e.streams.Out, format, args...) }

func (e *env) errf(format string, args ...any) { fmt.Fprintf(e.streams.Err, format, args...) }

func cmdContext(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

// session is a loaded config plus an API client.
type session struct {
	*env
	cfg *Config
	c   *api.Client
}

// errNotLoggedIn is returned when a command needs a session and there is
// no way to get one.
var errNotLoggedIn = errors.New("not logged in: run 'pando login'")

// errSeveralSpaces: the targeted org has several spaces and none was named.
var errSeveralSpaces = errors.New("several spaces")

// newClient builds an API client for the config's target; new tokens are
// saved to the config. For the default local server it can log in as admin
// by itself (PANDO_ADMIN_PASSWORD or the data dir's admin-password file).
func (e *env) newClient(cfg *Config) (*api.Client, error) {
	target := cfg.Target
	if target == "" {
		target = e.localAPI
	}
	acfg := api.Config{
		URL:        target,
		HTTPClient: e.clientFor(cfg),
		Tokens:     api.Tokens{Access: cfg.AccessToken, Refresh: cfg.RefreshToken},
		Now:        e.now,
		PollMin:    e.pollMin,
		PollMax:    e.pollMax,
		OnTokens: func(t api.Tokens) {
			cfg.Target = target
			cfg.AccessToken, cfg.RefreshToken = t.Access, t.Refresh
			if err := e.saveConfig(cfg); err != nil {
				e.errf("warning: %v\n", err)
			}
		},
	}
	if e.isLocalTarget(target) {
		acfg.Reauth = func(ctx context.Context, c *api.Client) (api.Tokens, error) {
			pw := e.localAdminPassword()
			if pw == "" {
				return api.Tokens{}, errNotLoggedIn
			}
			return c.PasswordGrant(ctx, "admin", pw)
		}
	}
	return api.New(acfg)
}

// newSession loads the config and makes a client. With needSpace it makes
// sure an org and space are targeted, choosing them when there is exactly
// one of each.
func (e *env) newSession(ctx context.Context, needSpace bool) (*session, error) {
	cfg, err := e.loadConfig()
	if err != nil {
		return nil, err
	}
	c, err := e.newClient(cfg)
	if err != nil {
		return nil, err
	}
	s := &session{env: e, cfg: cfg, c: c}
	if cfg.AccessToken == "" && cfg.RefreshToken == "" {
		pw := ""
		if e.isLocalTarget(c.URL()) {
			pw = e.localAdminPassword()
		}
		if pw == "" && e.isLocalTarget(c.URL()) {
			return nil, fmt.Errorf("not logged in, and no local server's admin password was found in %s: start one with 'sudo pando server' (or 'make run'); for a server on another address or data dir run 'pando login -a URL'", filepath.Join(e.dataDir(), "admin-password"))
		}
		if pw == "" {
			return nil, errNotLoggedIn
		}
		// The local server's admin: log in without being asked.
		if _, err := c.PasswordGrant(ctx, "admin", pw); err != nil {
			return nil, err
		}
		if err := s.save(); err != nil {
			return nil, err
		}
	}
	if needSpace && cfg.SpaceGUID == "" {
		if err := s.autoTarget(ctx, "", ""); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// user is the logged-in user's name, from the access token.
func (s *session) user() string {
	cl, err := api.ParseClaims(s.c.Tokens().Access)
	if err != nil || cl.UserName == "" {
		return "(unknown user)"
	}
	return cl.UserName
}

// where is "org O / space S as U", as in the cf CLI's progress lines.
func (s *session) where() string {
	return fmt.Sprintf("org %s / space %s as %s", s.cfg.OrgName, s.cfg.SpaceName, s.user())
}

// autoTarget targets org (or the only one) and space (or the only one) and
// saves the choice.
func (s *session) autoTarget(ctx context.Context, org, space string) error {
	var orgs []api.Org
	var err error
	if org != "" {
		orgs, err = s.c.Orgs(ctx, org)
	} else {
		orgs, err = s.c.Orgs(ctx)
	}
	if err != nil {
		return fmt.Errorf("list orgs: %w", err)
	}
	switch {
	case len(orgs) == 0 && org != "":
		return fmt.Errorf("organization '%s' not found (or you have no role in it): 'pando orgs' lists yours", org)
	case len(orgs) == 0:
		return fmt.Errorf("no organization found: %s has no role yet; ask an admin or org manager for one (pando set-space-role %s ORG SPACE SpaceDeveloper)", s.user(), s.user())
	case len(orgs) > 1:
		return errors.New("several organizations: choose one with 'pando target -o ORG -s SPACE'")
	}
	if orgs[0].GUID != s.cfg.OrgGUID {
		s.cfg.SpaceGUID, s.cfg.SpaceName = "", ""
	}
	s.cfg.OrgGUID, s.cfg.OrgName = orgs[0].GUID, orgs[0].Name
	var spaces []api.Space
	if space != "" {
		spaces, err = s.c.Spaces(ctx, orgs[0].GUID, space)
	} else {
		spaces, err = s.c.Spaces(ctx, orgs[0].GUID)
	}
	if err != nil {
		return fmt.Errorf("list spaces: %w", err)
	}
	switch {
	case len(spaces) == 0 && space != "":
		return fmt.Errorf("space '%s' not found in org %s (or you have no role in it): 'pando spaces' lists yours", space, orgs[0].Name)
	case len(spaces) == 0:
		return fmt.Errorf("no space in org %s: ask an admin to create one", orgs[0].Name)
	case len(spaces) > 1:
		if err := s.save(); err != nil {
			return err
		}
		return fmt.Errorf("%w in org %s: choose one with 'pando target -s SPACE'", errSeveralSpaces, orgs[0].Name)
	}
	s.cfg.SpaceGUID, s.cfg.SpaceName = spaces[0].GUID, spaces[0].Name
	return s.save()
}

func (s *session) save() error {
	s.cfg.Target = s.c.URL()
	t := s.c.Tokens()
	s.cfg.AccessToken, s.cfg.RefreshToken = t.Access, t.Refresh
	return s.saveConfig(s.cfg)
}

// app finds an app by name in the targeted space.
func (s *session) app(ctx context.Context, name string) (*api.App, error) {
	a, err := s.c.AppByName(ctx, s.cfg.SpaceGUID, name)
	if err != nil {
		if errors.Is(err, api.ErrNotFound) {
			return nil, fmt.Errorf("app '%s' not found in %s", name, s.where())
		}
		return nil, err
	}
	return a, nil
}
