package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/pandoplatform/pando/internal/cli/api"
)

func (e *env) orgsCmd() *cobra.Command {
	return e.teamCommand("orgs", "List the orgs you see", "  pando orgs", cobra.NoArgs, false,
		func(ctx context.Context, s *session, args []string) error {
			s.out("Getting orgs as %s...\n\n", s.user())
			orgs, err := s.c.Orgs(ctx)
			if err != nil {
				return fmt.Errorf("list orgs: %w", err)
			}
			if len(orgs) == 0 {
				s.out("No orgs found.\n")
				return nil
			}
			s.out("name\n")
			for _, o := range orgs {
				s.out("%s\n", o.Name)
			}
			return nil
		})
}

func (e *env) spacesCmd() *cobra.Command {
	var orgName string
	cmd := e.teamCommand("spaces", "List the spaces you see in the targeted org (or -o ORG)",
		"  pando spaces\n  pando spaces -o shop", cobra.NoArgs, false,
		func(ctx context.Context, s *session, args []string) error {
			org, err := s.org(ctx, orgName)
			if err != nil {
				return err
			}
			s.out("Getting spaces in org %s as %s...\n\n", org.Name, s.user())
			spaces, err := s.c.Spaces(ctx, org.GUID)
			if err != nil {
				return fmt.Errorf("list spaces: %w", err)
			}
			if len(spaces) == 0 {
				s.out("No spaces found.\n")
				return nil
			}
			s.out("name\n")
			for _, sp := range spaces {
				s.out("%s\n", sp.Name)
			}
			return nil
		})
	cmd.Flags().StringVarP(&orgName, "org", "o", "", "org (default: the targeted one)")
	return cmd
}

func (e *env) createOrgCmd() *cobra.Command {
	var quota string
	cmd := e.teamCommand("create-org ORG", "Create an org (admins)", "  pando create-org shop\n  pando create-org shop -q small",
		cobra.ExactArgs(1), false,
		func(ctx context.Context, s *session, args []string) error {
			name := args[0]
			var q *api.Quota
			if quota != "" {
				qs, err := s.c.OrgQuotas(ctx, quota)
				if err != nil {
					return err
				}
				if len(qs) == 0 {
					return fmt.Errorf("quota '%s' not found: 'pando quotas' lists them", quota)
				}
				q = &qs[0]
			}
			s.out("Creating org %s as %s...\n", name, s.user())
			org, err := s.c.CreateOrg(ctx, name)
			if unprocessable(err, "already exists") {
				s.out("Org %s already exists.\nOK\n", name)
				return nil
			}
			if err != nil {
				return s.denied(err, "admin rights")
			}
			if q != nil {
				s.out("Setting quota %s on org %s...\n", q.Name, name)
				if err := s.c.ApplyOrgQuota(ctx, q.GUID, org.GUID); err != nil {
					return fmt.Errorf("set quota %s on org %s: %w", q.Name, name, err)
				}
			}
			s.out("OK\n\nTIP: Use 'pando create-space SPACE -o %s' to add a space, then 'pando target -o %s -s SPACE'.\n", name, name)
			return nil
		})
	cmd.Flags().StringVarP(&quota, "quota", "q", "", "org quota to apply")
	return cmd
}

func (e *env) deleteOrgCmd() *cobra.Command {
	var force bool
	cmd := e.teamCommand("delete-org ORG", "Delete an org with all its spaces, apps, routes and services (admins)",
		"  pando delete-org shop -f", cobra.ExactArgs(1), false,
		func(ctx context.Context, s *session, args []string) error {
			name := args[0]
			if s.declined(force, "Delete", fmt.Sprintf("Really delete the org %s, including its spaces, apps, service instances, routes and domains?", name)) {
				return nil
			}
			s.out("Deleting org %s as %s...\n", name, s.user())
			org, err := s.c.OrgByName(ctx, name)
			if api.IsNotFound(err) {
				s.out("Org %s does not exist.\nOK\n", name)
				return nil
			}
			if err != nil {
				return err
			}
			if err := s.c.DeleteOrg(ctx, org.GUID); err != nil {
				return fmt.Errorf("delete org %s: %w", name, s.denied(err, "admin rights"))
			}
			s.out("OK\n")
			return s.forget(org.GUID, "")
		})
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not ask for confirmation")
	return cmd
}

func (e *env) createSpaceCmd() *cobra.Command {
	var orgName string
	cmd := e.teamCommand("create-space SPACE", "Create a space in the targeted org (or -o ORG), managed by you",
		"  pando create-space dev -o shop", cobra.ExactArgs(1), false,
		func(ctx context.Context, s *session, args []string) error {
			name := args[0]
			org, err := s.org(ctx, orgName)
			if err != nil {
				return err
			}
			s.out("Creating space %s in org %s as %s...\n", name, org.Name, s.user())
			sp, err := s.c.CreateSpace(ctx, org.GUID, name)
			if unprocessable(err, "must be unique") || unprocessable(err, "already exists") {
				s.out("Space %s already exists.\nOK\n", name)
				return nil
			}
			if err != nil {
				return s.notOrgManager(err, org.Name)
			}
			// As the cf CLI does: the creator may manage and push to it.
			user := s.user()
			if _, err := s.c.CreateRole(ctx, "organization_user", "organization", org.GUID, user); err != nil && !unprocessable(err, "already has") {
				s.errf("warning: could not give %s a role in org %s: %v\n", user, org.Name, err)
			}
			for _, typ := range []string{"space_manager", "space_developer"} {
				if _, err := s.c.CreateRole(ctx, typ, "space", sp.GUID, user); err != nil && !unprocessable(err, "already has") {
					s.errf("warning: could not make %s a %s of space %s: %v\n", user, typ, name, err)
				}
			}
			s.out("OK\n\nTIP: Use 'pando target -o %s -s %s' to target the new space.\n", org.Name, name)
			return nil
		})
	cmd.Flags().StringVarP(&orgName, "org", "o", "", "org (default: the targeted one)")
	return cmd
}

func (e *env) deleteSpaceCmd() *cobra.Command {
	var orgName string
	var force bool
	cmd := e.teamCommand("delete-space SPACE", "Delete a space with its apps, routes and services",
		"  pando delete-space dev -o shop -f", cobra.ExactArgs(1), false,
		func(ctx context.Context, s *session, args []string) error {
			name := args[0]
			org, err := s.org(ctx, orgName)
			if err != nil {
				return err
			}
			if s.declined(force, "Delete", fmt.Sprintf("Really delete the space %s in org %s, including its apps, service instances and routes?", name, org.Name)) {
				return nil
			}
			s.out("Deleting space %s in org %s as %s...\n", name, org.Name, s.user())
			sp, err := s.c.SpaceByName(ctx, org.GUID, name)
			if api.IsNotFound(err) {
				s.out("Space %s does not exist.\nOK\n", name)
				return nil
			}
			if err != nil {
				return err
			}
			if err := s.c.DeleteSpace(ctx, sp.GUID); err != nil {
				return fmt.Errorf("delete space %s: %w", name, s.notOrgManager(err, org.Name))
			}
			s.out("OK\n")
			return s.forget("", sp.GUID)
		})
	cmd.Flags().StringVarP(&orgName, "org", "o", "", "org (default: the targeted one)")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not ask for confirmation")
	return cmd
}
