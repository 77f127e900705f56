package cli

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/pandoplatform/pando/internal/cli/api"
)

func (e *env) domainsCmd() *cobra.Command {
	return e.teamCommand("domains", "List the shared domains and your orgs' private domains", "  pando domains", cobra.NoArgs, false,
		func(ctx context.Context, s *session, args []string) error {
			s.out("Getting domains as %s...\n\n", s.user())
			ds, err := s.c.Domains(ctx)
			if err != nil {
				return err
			}
			if len(ds) == 0 {
				s.out("No domains found.\n")
				return nil
			}
			orgName, err := s.orgNames(ctx)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(s.streams.Out, 0, 0, 3, ' ', 0)
			fmt.Fprintf(tw, "name\tavailability\n")
			for _, d := range ds {
				avail := "shared"
				if g := d.Relationships.Organization.GUID(); g != "" {
					avail = "private"
					if n := orgName[g]; n != "" {
						avail += " (org " + n + ")"
					}
				}
				if d.Internal {
					avail += ", internal"
				}
				fmt.Fprintf(tw, "%s\t%s\n", d.Name, avail)
			}
			return tw.Flush()
		})
}

func (e *env) createDomainCmd() *cobra.Command {
	var orgName string
	cmd := e.teamCommand("create-domain DOMAIN", "Create a shared domain (admins), or with -o ORG a private one (org managers)",
		"  pando create-domain apps.example.com\n  pando create-domain shop.example.com -o shop", cobra.ExactArgs(1), false,
		func(ctx context.Context, s *session, args []string) error {
			name := args[0]
			if orgName == "" {
				s.out("Creating shared domain %s as %s...\n", name, s.user())
				if _, err := s.c.CreateDomain(ctx, name, ""); err != nil {
					return s.denied(err, "admin rights")
				}
			} else {
				org, err := s.org(ctx, orgName)
				if err != nil {
					return err
				}
				s.out("Creating private domain %s for org %s as %s...\n", name, org.Name, s.user())
				if _, err := s.c.CreateDomain(ctx, name, org.GUID); err != nil {
					return s.notOrgManager(err, org.Name)
				}
			}
			s.out("OK\n\nTIP: Point DNS for %s (or *.%s) at the router, then 'pando map-route APP %s --hostname HOST'.\n", name, name, name)
			return nil
		})
	cmd.Flags().StringVarP(&orgName, "org", "o", "", "make a private domain of this org")
	return cmd
}

func (e *env) routesCmd() *cobra.Command {
	return e.teamCommand("routes", "List the routes in the targeted space and their apps", "  pando routes", cobra.NoArgs, true,
		func(ctx context.Context, s *session, args []string) error {
			s.out("Getting routes in %s...\n\n", s.where())
			rs, err := s.c.SpaceRoutes(ctx, s.cfg.SpaceGUID)
			if err != nil {
				return err
			}
			if len(rs) == 0 {
				s.out("No routes found.\n")
				return nil
			}
			appName, err := s.appNames(ctx)
			if err != nil {
				return err
			}
			sort.Slice(rs, func(i, j int) bool { return rs[i].URL < rs[j].URL })
			tw := tabwriter.NewWriter(s.streams.Out, 0, 0, 3, ' ', 0)
			fmt.Fprintf(tw, "route\thost\tpath\tapps\n")
			for _, r := range rs {
				var names []string
				for _, d := range r.Destinations {
					if n := appName[d.App.GUID]; n != "" && !contains(names, n) {
						names = append(names, n)
					}
				}
				sort.Strings(names)
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.URL, r.Host, r.Path, strings.Join(names, ", "))
			}
			return tw.Flush()
		})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// routeFlags are a route's --hostname and --path.
type routeFlags struct{ host, path string }

func (f *routeFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&f.host, "hostname", "n", "", "host name of the route (none: the bare domain)")
	cmd.Flags().StringVar(&f.path, "path", "", "path of the route, e.g. /api")
}

func (f *routeFlags) normPath() string {
	if f.path == "" || strings.HasPrefix(f.path, "/") {
		return f.path
	}
	return "/" + f.path
}

// resolve finds domain and gives the route's normalised path and its text
// (host.domain/path).
func (f *routeFlags) resolve(ctx context.Context, s *session, domain string) (*api.Domain, string, string, error) {
	d, err := s.domain(ctx, domain)
	if err != nil {
		return nil, "", "", err
	}
	path := f.normPath()
	return d, path, routeText(f.host, d.Name, path), nil
}

func routeText(host, domain, path string) string {
	if host != "" {
		domain = host + "." + domain
	}
	return domain + path
}

func (s *session) domain(ctx context.Context, name string) (*api.Domain, error) {
	ds, err := s.c.Domains(ctx, name)
	if err != nil {
		return nil, err
	}
	if len(ds) == 0 {
		return nil, fmt.Errorf("domain '%s' not found: 'pando domains' lists them", name)
	}
	return &ds[0], nil
}

func (e *env) mapRouteCmd() *cobra.Command {
	var f routeFlags
	cmd := e.teamCommand("map-route APP DOMAIN", "Map a route to an app (created in the targeted space when missing)",
		"  pando map-route shop example.com --hostname www\n  pando map-route api example.com --hostname www --path /api",
		cobra.ExactArgs(2), true,
		func(ctx context.Context, s *session, args []string) error {
			app, err := s.app(ctx, args[0])
			if err != nil {
				return err
			}
			d, path, text, err := f.resolve(ctx, s, args[1])
			if err != nil {
				return err
			}
			need := "space developer role in space " + s.cfg.SpaceName
			r, err := s.c.FindRoute(ctx, d.GUID, f.host, path)
			if errors.Is(err, api.ErrNotFound) {
				s.out("Creating route %s in %s...\n", text, s.where())
				r, err = s.c.CreateRoute(ctx, s.cfg.SpaceGUID, d.GUID, f.host, path)
				if err != nil {
					return fmt.Errorf("create route %s: %w", text, s.denied(err, need))
				}
			} else if err != nil {
				return err
			}
			s.out("Mapping route %s to app %s in %s...\n", text, app.Name, s.where())
			if err := s.c.MapRoute(ctx, r.GUID, app.GUID); err != nil {
				return fmt.Errorf("map route %s: %w", text, s.denied(err, need))
			}
			s.out("OK\n")
			return nil
		})
	f.add(cmd)
	return cmd
}

func (e *env) unmapRouteCmd() *cobra.Command {
	var f routeFlags
	cmd := e.teamCommand("unmap-route APP DOMAIN", "Stop routing a route to an app (the route stays)",
		"  pando unmap-route shop example.com --hostname www", cobra.ExactArgs(2), true,
		func(ctx context.Context, s *session, args []string) error {
			app, err := s.app(ctx, args[0])
			if err != nil {
				return err
			}
			d, path, text, err := f.resolve(ctx, s, args[1])
			if err != nil {
				return err
			}
			s.out("Removing route %s from app %s in %s...\n", text, app.Name, s.where())
			r, err := s.c.FindRoute(ctx, d.GUID, f.host, path)
			if errors.Is(err, api.ErrNotFound) {
				return fmt.Errorf("route %s does not exist", text)
			}
			if err != nil {
				return err
			}
			dests := r.Destinations
			if len(dests) == 0 {
				if dests, err = s.c.RouteDestinations(ctx, r.GUID); err != nil {
					return err
				}
			}
			removed := false
			for _, dst := range dests {
				if dst.App.GUID != app.GUID {
					continue
				}
				if err := s.c.UnmapRoute(ctx, r.GUID, dst.GUID); err != nil && !api.IsNotFound(err) {
					return fmt.Errorf("unmap route %s: %w", text, s.notDeveloper(err))
				}
				removed = true
			}
			if !removed {
				s.out("Route %s was not mapped to app %s.\n", text, app.Name)
			}
			s.out("OK\n")
			return nil
		})
	f.add(cmd)
	return cmd
}
