package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/pandoplatform/pando/internal/cli/api"
)

// The cf CLI's domain and route verbs beside create-domain, map-route and
// unmap-route: create-shared-domain, create-private-domain, delete-domain,
// share-private-domain, unshare-private-domain, create-route, delete-route.

func (e *env) createSharedDomainCmd() *cobra.Command {
	return e.teamCommand("create-shared-domain DOMAIN", "Create a domain every org may put routes on (admins)",
		"  pando create-shared-domain apps.example.com", cobra.ExactArgs(1), false,
		func(ctx context.Context, s *session, args []string) error {
			return s.createDomain(ctx, args[0], nil)
		})
}

func (e *env) createPrivateDomainCmd() *cobra.Command {
	return e.teamCommand("create-private-domain ORG DOMAIN", "Create a domain of one org (its org managers)",
		"  pando create-private-domain shop shop.example.com", cobra.ExactArgs(2), false,
		func(ctx context.Context, s *session, args []string) error {
			org, err := s.org(ctx, args[0])
			if err != nil {
				return err
			}
			return s.createDomain(ctx, args[1], org)
		})
}

// createDomain creates a shared domain (org nil) or a private one.
func (s *session) createDomain(ctx context.Context, name string, org *api.Org) error {
	if org == nil {
		s.out("Creating shared domain %s as %s...\n", name, s.user())
		if _, err := s.c.CreateDomain(ctx, name, ""); err != nil {
			return fmt.Errorf("create domain %s: %w", name, s.denied(err, "admin rights"))
		}
	} else {
		s.out("Creating private domain %s for org %s as %s...\n", name, org.Name, s.user())
		if _, err := s.c.CreateDomain(ctx, name, org.GUID); err != nil {
			return fmt.Errorf("create domain %s: %w", name, s.notOrgManager(err, org.Name))
		}
	}
	s.out("OK\n\nTIP: Point DNS for %s (or *.%s) at the router, then 'pando map-route APP %s --hostname HOST'.\n", name, name, name)
	return nil
}

// orgName is the name of the org with guid, or the guid when the caller
// does not see it.
func (s *session) orgName(ctx context.Context, guid string) string {
	orgs, err := s.c.Orgs(ctx)
	if err == nil {
		for _, o := range orgs {
			if o.GUID == guid {
				return o.Name
			}
		}
	}
	return guid
}

func (e *env) deleteDomainCmd() *cobra.Command {
	var force bool
	cmd := e.teamCommand("delete-domain DOMAIN", "Delete a shared (admins) or private (org managers) domain and its routes",
		"  pando delete-domain shop.example.com -f", cobra.ExactArgs(1), false,
		func(ctx context.Context, s *session, args []string) error {
			name := args[0]
			if s.declined(force, "Delete", fmt.Sprintf("Deleting domain %s also deletes its routes. Really delete it?", name)) {
				return nil
			}
			s.out("Deleting domain %s as %s...\n", name, s.user())
			ds, err := s.c.Domains(ctx, name)
			if err != nil {
				return err
			}
			if len(ds) == 0 {
				s.out("Domain %s does not exist.\nOK\n", name)
				return nil
			}
			d := ds[0]
			need := "admin rights"
			if g := d.Relationships.Organization.GUID(); g != "" {
				need = "org manager role in org " + s.orgName(ctx, g)
			}
			if err := s.c.DeleteDomain(ctx, d.GUID); err != nil {
				return fmt.Errorf("delete domain %s: %w", name, s.denied(err, need))
			}
			s.out("OK\n")
			return nil
		})
	cmd.Aliases = []string{"delete-shared-domain", "delete-private-domain"}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not ask for confirmation")
	return cmd
}

// privateDomain finds a private domain by name.
func (s *session) privateDomain(ctx context.Context, name string) (*api.Domain, error) {
	d, err := s.domain(ctx, name)
	if err != nil {
		return nil, err
	}
	if d.Relationships.Organization.GUID() == "" {
		return nil, fmt.Errorf("domain %s is a shared domain: only private domains are shared with orgs", name)
	}
	return d, nil
}

// orgAndPrivateDomain finds the org and the private domain of a (un)share.
func (s *session) orgAndPrivateDomain(ctx context.Context, orgName, domain string) (*api.Org, *api.Domain, error) {
	org, err := s.org(ctx, orgName)
	if err != nil {
		return nil, nil, err
	}
	d, err := s.privateDomain(ctx, domain)
	if err != nil {
		return nil, nil, err
	}
	return org, d, nil
}

func (e *env) sharePrivateDomainCmd() *cobra.Command {
	return e.teamCommand("share-private-domain ORG DOMAIN", "Let another org put routes on a private domain (managers of both orgs)",
		"  pando share-private-domain partners shop.example.com", cobra.ExactArgs(2), false,
		func(ctx context.Context, s *session, args []string) error {
			org, d, err := s.orgAndPrivateDomain(ctx, args[0], args[1])
			if err != nil {
				return err
			}
			s.out("Sharing domain %s with org %s as %s...\n", d.Name, org.Name, s.user())
			if err := s.c.ShareDomain(ctx, d.GUID, org.GUID); err != nil {
				owner := s.orgName(ctx, d.Relationships.Organization.GUID())
				return fmt.Errorf("share domain %s: %w", d.Name, s.denied(err, "org manager role in orgs "+owner+" and "+org.Name))
			}
			s.out("OK\n")
			return nil
		})
}

func (e *env) unsharePrivateDomainCmd() *cobra.Command {
	var force bool
	cmd := e.teamCommand("unshare-private-domain ORG DOMAIN", "Stop sharing a private domain with an org (org managers)",
		"  pando unshare-private-domain partners shop.example.com -f", cobra.ExactArgs(2), false,
		func(ctx context.Context, s *session, args []string) error {
			org, d, err := s.orgAndPrivateDomain(ctx, args[0], args[1])
			if err != nil {
				return err
			}
			if s.declined(force, "Unshare", fmt.Sprintf("Org %s will no longer be able to use domain %s. Really unshare it?", org.Name, d.Name)) {
				return nil
			}
			s.out("Unsharing domain %s from org %s as %s...\n", d.Name, org.Name, s.user())
			if err := s.c.UnshareDomain(ctx, d.GUID, org.GUID); err != nil {
				owner := s.orgName(ctx, d.Relationships.Organization.GUID())
				return fmt.Errorf("unshare domain %s: %w", d.Name, s.denied(err, "org manager role in org "+owner+" or "+org.Name))
			}
			s.out("OK\n")
			return nil
		})
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not ask for confirmation")
	return cmd
}

func (e *env) createRouteCmd() *cobra.Command {
	var f routeFlags
	cmd := e.teamCommand("create-route DOMAIN", "Create a route in the targeted space (map it to an app with map-route)",
		"  pando create-route example.com --hostname www\n  pando create-route example.com --hostname www --path /api",
		cobra.ExactArgs(1), true,
		func(ctx context.Context, s *session, args []string) error {
			d, path, text, err := f.resolve(ctx, s, args[0])
			if err != nil {
				return err
			}
			s.out("Creating route %s in %s...\n", text, s.where())
			if _, err := s.c.CreateRoute(ctx, s.cfg.SpaceGUID, d.GUID, f.host, path); err != nil {
				if unprocessable(err, "already exists") {
					// As cf create-route: an existing route is not an error.
					s.out("Route %s already exists.\nOK\n", text)
					return nil
				}
				return fmt.Errorf("create route %s: %w", text, s.notDeveloper(err))
			}
			s.out("Route %s has been created.\nOK\n", text)
			return nil
		})
	f.add(cmd)
	return cmd
}

func (e *env) deleteRouteCmd() *cobra.Command {
	var f routeFlags
	var force bool
	cmd := e.teamCommand("delete-route DOMAIN", "Delete a route of the targeted space (unmapping its apps)",
		"  pando delete-route example.com --hostname www -f\n  pando delete-route example.com --hostname www --path /api -f",
		cobra.ExactArgs(1), true,
		func(ctx context.Context, s *session, args []string) error {
			d, path, text, err := f.resolve(ctx, s, args[0])
			if err != nil {
				return err
			}
			if s.declined(force, "Delete", fmt.Sprintf("Really delete the route %s?", text)) {
				return nil
			}
			s.out("Deleting route %s in %s...\n", text, s.where())
			r, err := s.c.FindRoute(ctx, d.GUID, f.host, path)
			if errors.Is(err, api.ErrNotFound) {
				s.out("Unable to delete: route %s does not exist.\nOK\n", text)
				return nil
			}
			if err != nil {
				return err
			}
			if err := s.c.DeleteRoute(ctx, r.GUID); err != nil {
				return fmt.Errorf("delete route %s: %w", text, s.notDeveloper(err))
			}
			s.out("OK\n")
			return nil
		})
	f.add(cmd)
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not ask for confirmation")
	return cmd
}
