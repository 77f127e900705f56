package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/pandoplatform/pando/internal/cli/api"
)

// appCommand builds a command taking an app NAME that needs a targeted
// space.
func (e *env) appCommand(use, short string, nargs int, run func(ctx context.Context, s *session, args []string) error) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(nargs),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmdContext(cmd)
			s, err := e.newSession(ctx, true)
			if err != nil {
				return err
			}
			return s.notDeveloper(run(ctx, s, args))
		},
	}
}

// appVerb is an app command whose first argument names the app; run gets
// it resolved.
func (e *env) appVerb(use, short string, nargs int, run func(ctx context.Context, s *session, app *api.App, args []string) error) *cobra.Command {
	return e.appCommand(use, short, nargs, func(ctx context.Context, s *session, args []string) error {
		app, err := s.app(ctx, args[0])
		if err != nil {
			return err
		}
		return run(ctx, s, app, args)
	})
}

// platformCommand is a verb about the platform, not an app: it needs a
// session but no targeted space.
func (e *env) platformCommand(use, short string, run func(ctx context.Context, s *session) error) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmdContext(cmd)
			s, err := e.newSession(ctx, false)
			if err != nil {
				return err
			}
			return run(ctx, s)
		},
	}
}

func waitFlag(cmd *cobra.Command, d *time.Duration) {
	cmd.Flags().DurationVar(d, "wait-timeout", 0, waitTimeoutHelp)
}

// waitTimeoutHelp describes --wait-timeout; its default (0) is startWait's.
const waitTimeoutHelp = "how long to wait for instances to run (default 2m, or the start timeout (-t) plus 30s when longer)"

func (e *env) startCmd() *cobra.Command {
	var wait time.Duration
	cmd := e.appVerb("start NAME", "Start an app (staging it first if it has no droplet)", 1,
		func(ctx context.Context, s *session, app *api.App, args []string) error {
			if app.State == "STARTED" {
				s.out("App %s is already started.\n", app.Name)
				return nil
			}
			s.out("Starting app %s in %s...\n", app.Name, s.where())
			return s.startApp(ctx, app, "start", wait)
		})
	waitFlag(cmd, &wait)
	return cmd
}

func (e *env) restartCmd() *cobra.Command {
	var wait time.Duration
	cmd := e.appVerb("restart NAME", "Restart an app's instances", 1,
		func(ctx context.Context, s *session, app *api.App, args []string) error {
			s.out("Restarting app %s in %s...\n", app.Name, s.where())
			return s.startApp(ctx, app, "restart", wait)
		})
	waitFlag(cmd, &wait)
	return cmd
}

// startApp starts (or restarts) an app and waits for it; an app that was
// never staged is staged from its newest package first.
func (s *session) startApp(ctx context.Context, app *api.App, action string, wait time.Duration) error {
	droplet, err := s.c.CurrentDroplet(ctx, app.GUID)
	if err != nil {
		return err
	}
	if droplet == nil {
		return s.stageNewest(ctx, app, wait)
	}
	if _, err := s.c.AppAction(ctx, app.GUID, action); err != nil {
		return err
	}
	s.out("\nWaiting for app %s to start...\n", app.Name)
	if err := s.waitStarted(ctx, app, wait); err != nil {
		return err
	}
	return s.showApp(ctx, app.Name)
}

// stageNewest stages the app's newest uploaded package, restarts the app
// on the new droplet and shows it.
func (s *session) stageNewest(ctx context.Context, app *api.App, wait time.Duration) error {
	pkg, err := s.c.LatestPackage(ctx, app.GUID, "READY")
	if errors.Is(err, api.ErrNotFound) {
		return fmt.Errorf("app %s has no uploaded files: push it first (pando push %s)", app.Name, app.Name)
	}
	if err != nil {
		return err
	}
	var before string
	if app.Lifecycle.Type == "docker" {
		before = s.dropletImage(ctx, app)
	}
	if err := s.stageAndRestart(ctx, app, pkg, wait, nil); err != nil {
		return err
	}
	if before != "" {
		if after := s.dropletImage(ctx, app); after != "" {
			s.out("\n%s\n", imageMoved(before, after))
		}
	}
	return s.showApp(ctx, app.Name)
}

// dropletImage is the pinned image the app's current droplet runs, or ""
// (none, or it cannot be read: the note it serves is not worth failing for).
func (s *session) dropletImage(ctx context.Context, app *api.App) string {
	d, err := s.c.CurrentDroplet(ctx, app.GUID)
	if err != nil || d == nil || d.Image == nil {
		return ""
	}
	return *d.Image
}

// imageMoved says whether a restage of a docker app changed the image it
// runs: the point of restaging one is to follow a tag that moved.
func imageMoved(before, after string) string {
	if before == after {
		return "Image unchanged: the tag still points at " + digestOf(after) + "."
	}
	return "Image changed: " + digestOf(before) + " -> " + digestOf(after) + "."
}

// digestOf is the digest of a pinned REPO@DIGEST reference, or ref itself.
func digestOf(ref string) string {
	if _, d, ok := strings.Cut(ref, "@"); ok {
		return d
	}
	return ref
}

func (e *env) stopCmd() *cobra.Command {
	return e.appVerb("stop NAME", "Stop an app", 1,
		func(ctx context.Context, s *session, app *api.App, args []string) error {
			if app.State == "STOPPED" {
				s.out("App %s is already stopped.\n", app.Name)
				return nil
			}
			s.out("Stopping app %s in %s...\n", app.Name, s.where())
			if _, err := s.c.AppAction(ctx, app.GUID, "stop"); err != nil {
				return err
			}
			s.out("OK\n")
			return nil
		})
}

func (e *env) restageCmd() *cobra.Command {
	var wait time.Duration
	cmd := e.appVerb("restage NAME", "Stage an app's newest package again and restart it", 1,
		func(ctx context.Context, s *session, app *api.App, args []string) error {
			s.out("Restaging app %s in %s...\n", app.Name, s.where())
			return s.stageNewest(ctx, app, wait)
		})
	waitFlag(cmd, &wait)
	return cmd
}

func (e *env) scaleCmd() *cobra.Command {
	var instances int
	var memory, disk, logRate, process string
	var force bool
	var wait time.Duration
	var cmd *cobra.Command
	cmd = e.appCommand("scale NAME", "Change an app's instances, memory, disk or log rate limit", 1,
		func(ctx context.Context, s *session, args []string) error {
			if !cmd.Flags().Changed("instances") {
				instances = -1 // leave as is
			}
			return s.scale(ctx, args[0], process, instances, memory, disk, logRate, force, wait)
		})
	cmd.Flags().IntVarP(&instances, "instances", "i", 0, "number of instances")
	cmd.Flags().StringVarP(&memory, "memory", "m", "", "memory limit per instance (e.g. 256M, 1G)")
	cmd.Flags().StringVarP(&disk, "disk", "k", "", "disk limit per instance (e.g. 512M, 1G)")
	cmd.Flags().StringVarP(&logRate, "log-rate-limit", "l", "", "log rate limit per second per instance (e.g. 16K, 1M, -1 for unlimited)")
	cmd.Flags().StringVar(&process, "process", "web", "process type to scale")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "restart without asking")
	waitFlag(cmd, &wait)
	return cmd
}

func (s *session) scale(ctx context.Context, name, process string, instances int, memory, disk, logRate string, force bool, wait time.Duration) error {
	app, err := s.app(ctx, name)
	if err != nil {
		return err
	}
	var inst, mem, dsk, lr *int
	if instances >= 0 {
		inst = &instances
	}
	if memory != "" {
		n, err := parseMegabytes(memory)
		if err != nil {
			return err
		}
		mem = &n
	}
	if disk != "" {
		n, err := parseMegabytes(disk)
		if err != nil {
			return err
		}
		dsk = &n
	}
	if logRate != "" {
		n, err := parseLogRate(logRate)
		if err != nil {
			return err
		}
		lr = &n
	}
	if inst == nil && mem == nil && dsk == nil && lr == nil {
		procs, err := s.c.AppProcesses(ctx, app.GUID)
		if err != nil {
			return err
		}
		for _, p := range procs {
			if p.Type == process {
				s.out("Showing current scale of app %s in %s...\n\n", app.Name, s.where())
				s.out("memory:         %s\ndisk:           %s\nlog rate limit: %s\ninstances:      %d\n",
					megabytes(p.MemoryInMB), megabytes(p.DiskInMB), logRateText(p.LogRateLimit), p.Instances)
				return nil
			}
		}
		return fmt.Errorf("app %s has no %s process", app.Name, process)
	}
	restart := (mem != nil || dsk != nil || lr != nil) && app.State == "STARTED"
	if restart && s.declined(force, "Scale", fmt.Sprintf("This will cause the app to restart. Are you sure you want to scale %s?", app.Name)) {
		return nil
	}
	s.out("Scaling app %s in %s...\n", app.Name, s.where())
	if _, err := s.c.ScaleProcess(ctx, app.GUID, process, api.Scale{Instances: inst, MemoryMB: mem, DiskMB: dsk, LogRateLimit: lr}); err != nil {
		return err
	}
	if app.State == "STARTED" {
		if restart {
			// New limits apply to new containers only.
			if _, err := s.c.AppAction(ctx, app.GUID, "restart"); err != nil {
				return err
			}
		}
		if inst == nil || *inst > 0 {
			s.out("\nWaiting for app %s to start...\n", app.Name)
		}
		if err := s.waitStarted(ctx, app, wait); err != nil {
			return err
		}
	}
	return s.showApp(ctx, app.Name)
}

func (e *env) deleteCmd() *cobra.Command {
	var force, routes bool
	cmd := e.appCommand("delete NAME", "Delete an app", 1,
		func(ctx context.Context, s *session, args []string) error {
			name := args[0]
			if s.declined(force, "Delete", fmt.Sprintf("Really delete the app %s?", name)) {
				return nil
			}
			s.out("Deleting app %s in %s...\n", name, s.where())
			app, err := s.c.AppByName(ctx, s.cfg.SpaceGUID, name)
			if errors.Is(err, api.ErrNotFound) {
				s.out("App %s does not exist.\nOK\n", name)
				return nil
			}
			if err != nil {
				return err
			}
			var mapped []api.Route
			if routes {
				if mapped, err = s.c.AppRoutes(ctx, app.GUID); err != nil {
					return fmt.Errorf("list routes: %w", err)
				}
				// Deleting a route another app uses would break that app:
				// refuse before deleting anything, as cf does.
				shared, err := s.sharedRoute(ctx, app.GUID, mapped)
				if err != nil {
					return err
				}
				if shared != nil {
					s.errf("App '%s' was not deleted because route '%s' is mapped to more than one app.\n", app.Name, shared.URL)
					s.errf("TIP: Delete the app without -r, or remove the other app's mapping first.\n")
					return fmt.Errorf("app %s not deleted: route %s is mapped to more than one app", app.Name, shared.URL)
				}
			}
			if err := s.c.DeleteApp(ctx, app.GUID); err != nil {
				return fmt.Errorf("delete app %s: %w", name, err)
			}
			for _, r := range mapped {
				if err := s.c.DeleteRoute(ctx, r.GUID); err != nil && !api.IsNotFound(err) {
					return fmt.Errorf("delete route %s: %w", r.URL, err)
				}
			}
			s.out("OK\n")
			return nil
		})
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not ask for confirmation")
	cmd.Flags().BoolVarP(&routes, "delete-routes", "r", false, "also delete the app's routes")
	return cmd
}

// sharedRoute returns the first of routes that is also mapped to an app
// other than appGUID, or nil. Destinations come with each route; a route
// listed without them is asked for its own.
func (s *session) sharedRoute(ctx context.Context, appGUID string, routes []api.Route) (*api.Route, error) {
	for i := range routes {
		dests := routes[i].Destinations
		if len(dests) == 0 {
			var err error
			if dests, err = s.c.RouteDestinations(ctx, routes[i].GUID); err != nil {
				return nil, err
			}
		}
		for _, d := range dests {
			if d.App.GUID != appGUID {
				return &routes[i], nil
			}
		}
	}
	return nil, nil
}

func (e *env) setEnvCmd() *cobra.Command {
	return e.appVerb("set-env NAME VAR VALUE", "Set an app environment variable", 3,
		func(ctx context.Context, s *session, app *api.App, args []string) error {
			s.out("Setting env variable %s for app %s in %s...\n", args[1], app.Name, s.where())
			if err := s.c.UpdateEnvVars(ctx, app.GUID, map[string]*string{args[1]: &args[2]}); err != nil {
				return err
			}
			s.out("OK\n\n%s\n", envTip(app))
			return nil
		})
}

// envTip says how an app picks up a change of its environment. A docker
// app's staging does not read it, and a restage would also resolve the
// image's tag again: restart is the way.
func envTip(app *api.App) string {
	if app.Lifecycle.Type == "docker" {
		return fmt.Sprintf("TIP: Use 'pando restart %s' for the change to take effect (a restage would also resolve its image's tag again).", app.Name)
	}
	return fmt.Sprintf("TIP: Use 'pando restage %s' (or 'pando restart %s' when staging does not read it) for the change to take effect.", app.Name, app.Name)
}

func (e *env) unsetEnvCmd() *cobra.Command {
	return e.appVerb("unset-env NAME VAR", "Remove an app environment variable", 2,
		func(ctx context.Context, s *session, app *api.App, args []string) error {
			s.out("Removing env variable %s from app %s in %s...\n", args[1], app.Name, s.where())
			env, err := s.c.AppEnv(ctx, app.GUID)
			if err != nil {
				return err
			}
			if _, set := env.EnvironmentVariables[args[1]]; !set {
				// As cf: nothing changes, so no restage is needed either.
				s.out("Env variable %s was not set.\nOK\n", args[1])
				return nil
			}
			if err := s.c.UpdateEnvVars(ctx, app.GUID, map[string]*string{args[1]: nil}); err != nil {
				return err
			}
			s.out("OK\n\n%s\n", envTip(app))
			return nil
		})
}

func (e *env) envCmd() *cobra.Command {
	return e.appVerb("env NAME", "Show an app's environment", 1,
		func(ctx context.Context, s *session, app *api.App, args []string) error {
			s.out("Getting env variables for app %s in %s...\n", app.Name, s.where())
			env, err := s.c.AppEnv(ctx, app.GUID)
			if err != nil {
				return err
			}
			s.out("System-Provided:\n")
			s.printEnvJSON(env.SystemEnvJSON)
			s.printEnvJSON(env.ApplicationEnvJSON)
			s.out("\nUser-Provided:\n")
			if len(env.EnvironmentVariables) == 0 {
				s.out("(none)\n")
			}
			s.printEnvPlain(env.EnvironmentVariables)
			if len(env.RunningEnvJSON) > 0 {
				s.out("\nRunning Environment Variable Groups:\n")
				s.printEnvPlain(env.RunningEnvJSON)
			}
			if len(env.StagingEnvJSON) > 0 {
				s.out("\nStaging Environment Variable Groups:\n")
				s.printEnvPlain(env.StagingEnvJSON)
			}
			return nil
		})
}

func (s *session) printEnvJSON(m map[string]any) {
	for _, k := range sortedKeys(m) {
		b, err := json.MarshalIndent(m[k], "", "  ")
		if err != nil {
			continue
		}
		s.out("%s: %s\n", k, b)
	}
}

func (s *session) printEnvPlain(m map[string]any) {
	for _, k := range sortedKeys(m) {
		switch v := m[k].(type) {
		case string:
			s.out("%s: %s\n", k, v)
		default:
			b, _ := json.Marshal(v)
			s.out("%s: %s\n", k, b)
		}
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (e *env) eventsCmd() *cobra.Command {
	return e.appVerb("events NAME", "Show an app's recent events", 1,
		func(ctx context.Context, s *session, app *api.App, args []string) error {
			s.out("Getting events for app %s in %s...\n\n", app.Name, s.where())
			events, err := s.c.AuditEvents(ctx, app.GUID)
			if err != nil {
				return err
			}
			if len(events) == 0 {
				s.out("No events found.\n")
				return nil
			}
			tw := tabwriter.NewWriter(s.streams.Out, 0, 0, 3, ' ', 0)
			fmt.Fprintf(tw, "time\tevent\tactor\tdescription\n")
			for _, ev := range events {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", ev.CreatedAt.In(s.loc).Format("2006-01-02T15:04:05.00-0700"),
					ev.Type, ev.Actor.Name, eventDescription(ev.Data))
			}
			return tw.Flush()
		})
}

// eventDescription renders an event's request as "key: value, ...",
// leaving out values the server hid.
func eventDescription(data map[string]any) string {
	req, ok := data["request"].(map[string]any)
	if !ok {
		req = data
	}
	var parts []string
	for _, k := range sortedKeys(req) {
		switch v := req[k].(type) {
		case string:
			if strings.Contains(v, "PRIVATE DATA HIDDEN") {
				continue
			}
			parts = append(parts, k+": "+v)
		case float64:
			parts = append(parts, k+": "+strconv.FormatFloat(v, 'f', -1, 64))
		case bool:
			parts = append(parts, k+": "+strconv.FormatBool(v))
		}
	}
	return strings.Join(parts, ", ")
}

func (e *env) cellsCmd() *cobra.Command {
	return e.platformCommand("cells", "List cells: capacity, usage and the instances on each", func(ctx context.Context, s *session) error {
		s.out("Getting cells as %s...\n\n", s.user())
		cells, err := s.c.Cells(ctx)
		if err != nil {
			return err
		}
		if len(cells) == 0 {
			s.out("No cells: no healthy cells, so no app can be placed until one joins\n(pando cell --join API_URL --token TOKEN from the server's <data-dir>/cell-token).\n")
			return nil
		}
		tw := tabwriter.NewWriter(s.streams.Out, 0, 0, 3, ' ', 0)
		fmt.Fprintf(tw, "cell\tstate\tzone\tstacks\tmemory\tdisk\tlayer cache\tcontainers\n")
		var lost []string
		for _, c := range cells {
			state := c.State
			if state == "" { // an older server
				state = "healthy"
				if c.Draining {
					state = "draining"
				}
			}
			zone := c.Zone
			if zone == "" {
				zone = "-"
			}
			if state == "lost" {
				// It did not answer: its capacity is unknown, not zero.
				lost = append(lost, c.ID)
				fmt.Fprintf(tw, "%s\t%s\t%s\t-\t-\t-\t-\t-\n", c.ID, state, zone)
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%dM of %dM\t%dM of %dM\t%dM\t%d of %d (%d starting)\n", c.ID, state, zone,
				strings.Join(c.Stacks, ","), c.MemoryMB.Used, c.MemoryMB.Total, c.DiskMB.Used, c.DiskMB.Total,
				c.DiskMB.LayerCache, c.Containers.Used, c.Containers.Total, c.Containers.Starting)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if len(lost) > 0 {
			s.out("\nlost: %s does not answer the server at its --addr. If down, its instances start on other cells once its presence expires\n"+
				"(the server's --cell-presence-ttl, 6s by default); if it still runs, check that the server reaches its --addr.\n",
				strings.Join(lost, ", "))
		}
		for _, c := range cells {
			if len(c.Instances) == 0 {
				continue
			}
			s.out("\ninstances on %s:\n", c.ID)
			tw := tabwriter.NewWriter(s.streams.Out, 0, 0, 3, ' ', 0)
			fmt.Fprintf(tw, "app\tprocess\tindex\tstate\tmemory\n")
			for _, i := range c.Instances {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%dM\n", i.AppName, i.ProcessType, i.Index, strings.ToLower(i.State), i.MemoryMB)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
		return nil
	})
}
