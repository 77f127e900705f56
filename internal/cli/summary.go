package cli

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/pandoplatform/pando/internal/cli/api"
)

func (e *env) appCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "app NAME",
		Short: "Show an app's state, routes and instances",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmdContext(cmd)
			s, err := e.newSession(ctx, true)
			if err != nil {
				return err
			}
			s.out("Showing health and status for app %s in %s...\n", args[0], s.where())
			return s.showApp(ctx, args[0])
		},
	}
}

// showApp prints the app summary: name, state, routes, droplet, and each
// process with its instances.
func (s *session) showApp(ctx context.Context, name string) error {
	app, err := s.app(ctx, name)
	if err != nil {
		return err
	}
	procs, err := s.c.AppProcesses(ctx, app.GUID)
	if err != nil {
		return fmt.Errorf("list processes: %w", err)
	}
	routes, err := s.c.AppRoutes(ctx, app.GUID)
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	droplet, err := s.c.CurrentDroplet(ctx, app.GUID)
	if err != nil {
		return err
	}
	base := s.routeBase(ctx)
	urls := make([]string, 0, len(routes))
	hosts := make([]string, 0, len(routes))
	for _, r := range routes {
		urls = append(urls, routeURL(r, base))
		hosts = append(hosts, routeHost(routeURL(r, nil)))
	}

	s.out("\n")
	tw := tabwriter.NewWriter(s.streams.Out, 0, 0, 3, ' ', 0)
	fmt.Fprintf(tw, "name:\t%s\n", app.Name)
	fmt.Fprintf(tw, "requested state:\t%s\n", strings.ToLower(app.State))
	fmt.Fprintf(tw, "routes:\t%s\n", strings.Join(urls, ", "))
	if droplet != nil {
		fmt.Fprintf(tw, "last uploaded:\t%s\n", droplet.CreatedAt.In(s.loc).Format("Mon 02 Jan 15:04:05 MST 2006"))
		if droplet.Image != nil && *droplet.Image != "" {
			fmt.Fprintf(tw, "docker image:\t%s\n", *droplet.Image)
		} else {
			fmt.Fprintf(tw, "stack:\t%s\n", droplet.Stack)
			bps := make([]string, 0, len(droplet.Buildpacks))
			for _, bp := range droplet.Buildpacks {
				n := bp.Name
				if n == "" {
					n = bp.BuildpackName
				}
				if bp.Version != "" {
					n += " " + bp.Version
				}
				bps = append(bps, n)
			}
			fmt.Fprintf(tw, "buildpacks:\t%s\n", strings.Join(bps, ", "))
		}
	} else {
		fmt.Fprintf(tw, "last uploaded:\t(never staged)\n")
	}
	tw.Flush()
	s.out("%s", s.routeNote(base, hosts))

	for _, p := range procs {
		st, err := s.c.ProcessStats(ctx, p.GUID)
		if err != nil {
			return err
		}
		s.printProcess(p, st)
	}
	return nil
}

func (s *session) printProcess(p api.Process, st *api.Stats) {
	c := countInstances(st)
	s.out("\n")
	tw := tabwriter.NewWriter(s.streams.Out, 0, 0, 3, ' ', 0)
	fmt.Fprintf(tw, "type:\t%s\n", p.Type)
	fmt.Fprintf(tw, "instances:\t%d/%d\n", c.running, p.Instances)
	fmt.Fprintf(tw, "memory usage:\t%s\n", megabytes(p.MemoryInMB))
	if p.Command != nil && *p.Command != "" {
		fmt.Fprintf(tw, "start command:\t%s\n", *p.Command)
	}
	tw.Flush()
	if len(st.Resources) == 0 {
		if p.Instances == 0 {
			s.out("There are no running instances of this process.\n")
		}
		return
	}
	tw = tabwriter.NewWriter(s.streams.Out, 0, 0, 3, ' ', 0)
	fmt.Fprintf(tw, "\tstate\tsince\tcpu\tmemory\tdisk\tdetails\n")
	now := s.now()
	for _, in := range st.Resources {
		since := ""
		if in.State == "RUNNING" {
			started := in.StartedAt
			if started.IsZero() {
				// A server without pando_started_at: derived from the
				// whole-second uptime, it may move by a second between calls.
				started = now.Add(-time.Duration(in.Uptime) * time.Second)
			}
			since = started.UTC().Format("2006-01-02T15:04:05Z")
		}
		fmt.Fprintf(tw, "#%d\t%s\t%s\t%.1f%%\t%s of %s\t%s of %s\t%s\n",
			in.Index, strings.ToLower(in.State), since, in.Usage.CPU*100,
			cfBytes(in.Usage.Mem), quota(in.MemQuota), cfBytes(in.Usage.Disk), quota(in.DiskQuota),
			in.DetailsText())
	}
	tw.Flush()
}

// routeBase is the scheme and port apps are reached at: the server's
// advertised router (links.pando_router), else for a server on this
// machine the default router port 8080.
func (s *session) routeBase(ctx context.Context) *url.URL {
	if root, err := s.c.Root(ctx); err == nil {
		if h := root.Href("pando_router"); h != "" {
			if u, err := url.Parse(h); err == nil && u.Scheme != "" {
				return u
			}
		}
	}
	if u, err := url.Parse(s.c.URL()); err == nil {
		host := u.Hostname()
		if ip := net.ParseIP(host); (ip != nil && ip.IsLoopback()) || host == "localhost" {
			return &url.URL{Scheme: "http", Host: "127.0.0.1:8080"}
		}
	}
	return &url.URL{Scheme: "http"}
}

// routeNote is routeReachNote for this session's API.
func (s *session) routeNote(base *url.URL, hosts []string) string {
	api, _ := url.Parse(s.c.URL())
	return routeReachNote(base, api, hosts)
}

// routeURL renders a route as a URL a browser can open:
// myapp.localhost → http://myapp.localhost:8080.
func routeURL(r api.Route, base *url.URL) string {
	u := r.URL
	if u == "" {
		u = r.Host + r.Path
	}
	if strings.Contains(u, "://") {
		return u
	}
	host, rest := u, ""
	if i := strings.IndexByte(u, '/'); i >= 0 {
		host, rest = u[:i], u[i:]
	}
	scheme := "http"
	if base != nil && base.Scheme != "" {
		scheme = base.Scheme
	}
	if base != nil && base.Port() != "" && !strings.Contains(host, ":") {
		host += ":" + base.Port()
	}
	return scheme + "://" + host + rest
}

func (e *env) appsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "apps",
		Short: "List the apps in the targeted space",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmdContext(cmd)
			s, err := e.newSession(ctx, true)
			if err != nil {
				return err
			}
			return s.listApps(ctx)
		},
	}
}

func (s *session) listApps(ctx context.Context) error {
	s.out("Getting apps in %s...\n\n", s.where())
	apps, err := s.c.Apps(ctx, s.cfg.SpaceGUID)
	if err != nil {
		return fmt.Errorf("list apps: %w", err)
	}
	if len(apps) == 0 {
		s.out("No apps found.\n")
		return nil
	}
	guids := make([]string, len(apps))
	for i, a := range apps {
		guids[i] = a.GUID
	}
	procs, err := s.c.ProcessesForApps(ctx, guids)
	if err != nil {
		return fmt.Errorf("list processes: %w", err)
	}
	routes, err := s.c.RoutesForApps(ctx, guids)
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	base := s.routeBase(ctx)
	procsByApp := map[string][]string{}
	for _, p := range procs {
		running := 0
		if p.Instances > 0 {
			st, err := s.c.ProcessStats(ctx, p.GUID)
			if err != nil {
				return err
			}
			running = countInstances(st).running
		}
		procsByApp[p.AppGUID()] = append(procsByApp[p.AppGUID()], fmt.Sprintf("%s:%d/%d", p.Type, running, p.Instances))
	}
	routesByApp := map[string][]string{}
	var hosts []string
	for _, r := range routes {
		hosts = append(hosts, routeHost(routeURL(r, nil)))
		seen := map[string]bool{}
		for _, d := range r.Destinations {
			if !seen[d.App.GUID] {
				seen[d.App.GUID] = true
				routesByApp[d.App.GUID] = append(routesByApp[d.App.GUID], routeURL(r, base))
			}
		}
	}
	tw := tabwriter.NewWriter(s.streams.Out, 0, 0, 3, ' ', 0)
	fmt.Fprintf(tw, "name\trequested state\tprocesses\troutes\n")
	for _, a := range apps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.Name, strings.ToLower(a.State),
			strings.Join(procsByApp[a.GUID], ","), strings.Join(routesByApp[a.GUID], ", "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if note := s.routeNote(base, hosts); note != "" {
		s.out("\n%s", note)
	}
	return nil
}

// megabytes renders a size in MB as cf does: 1024 → 1G, 256 → 256M.
func megabytes(mb int) string {
	if mb > 0 && mb%1024 == 0 {
		return strconv.Itoa(mb/1024) + "G"
	}
	return strconv.Itoa(mb) + "M"
}

// cfBytes renders bytes as cf does: 12.1M, 1G, 0B.
func cfBytes(n int64) string {
	units := []string{"B", "K", "M", "G", "T"}
	f := float64(n)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	s := strconv.FormatFloat(f, 'f', 1, 64)
	s = strings.TrimSuffix(s, ".0")
	return s + units[i]
}

func quota(q *int64) string {
	if q == nil {
		return "?"
	}
	if *q < 0 {
		return "unlimited"
	}
	return cfBytes(*q)
}

// iecBytes renders bytes with binary units: 12.3 KiB.
func iecBytes(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	units := []string{"KiB", "MiB", "GiB", "TiB"}
	f := float64(n) / 1024
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return strconv.FormatFloat(f, 'f', 1, 64) + " " + units[i]
}

// parseMegabytes parses 256M, 1G, 512MB, 1024 (MB) into megabytes.
func parseMegabytes(s string) (int, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(t, "B")
	mult := 1
	switch {
	case strings.HasSuffix(t, "G"):
		mult, t = 1024, strings.TrimSuffix(t, "G")
	case strings.HasSuffix(t, "M"):
		t = strings.TrimSuffix(t, "M")
	case strings.HasSuffix(t, "T"):
		mult, t = 1024*1024, strings.TrimSuffix(t, "T")
	}
	n, err := strconv.Atoi(t)
	if err != nil || n <= 0 || n > 1<<30/mult {
		return 0, fmt.Errorf("invalid size %q: use a number with M or G, e.g. 256M or 1G", s)
	}
	return n * mult, nil
}

// parseLogRate reads a log rate limit per second as cf does: -1 or
// "unlimited", else bytes with an optional B, K, M or G suffix.
func parseLogRate(s string) (int, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	if t == "-1" || t == "UNLIMITED" {
		return -1, nil
	}
	t = strings.TrimSuffix(t, "B")
	mult := 1
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}} {
		if strings.HasSuffix(t, u.suffix) {
			mult, t = u.mult, strings.TrimSuffix(t, u.suffix)
			break
		}
	}
	n, err := strconv.Atoi(t)
	if err != nil || n < 0 || n > 1<<40/mult {
		return 0, fmt.Errorf("invalid log rate limit %q: use a size per second, e.g. 16K or 1M, or -1 for unlimited", s)
	}
	return n * mult, nil
}

// logRateText renders a log rate limit as cf does: 16K, 1M, unlimited.
func logRateText(b int) string {
	switch {
	case b < 0:
		return "unlimited"
	case b >= 1<<20 && b%(1<<20) == 0:
		return strconv.Itoa(b>>20) + "M"
	case b >= 1<<10 && b%(1<<10) == 0:
		return strconv.Itoa(b>>10) + "K"
	}
	return strconv.Itoa(b) + "B"
}
