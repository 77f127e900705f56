package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"

	"github.com/spf13/cobra"

	"github.com/pandoplatform/pando/internal/cli/api"
)

// readNewPassword reads a new password: asked twice on a terminal, else
// one line of the input.
func (e *env) readNewPassword(label string) (string, error) {
	pw, err := e.promptSecret(label)
	if err != nil {
		return "", err
	}
	if pw == "" {
		return "", errors.New("the password must not be empty")
	}
	if isTerminal(e.streams.In) {
		again, err := e.promptSecret("Verify " + label)
		if err != nil {
			return "", err
		}
		if again != pw {
			return "", errors.New("the passwords do not match")
		}
	}
	return pw, nil
}

func (e *env) createUserCmd() *cobra.Command {
	cmd := e.teamCommand("create-user USERNAME [PASSWORD]", "Create a user who logs in with a password (admins)",
		"  pando create-user alice                     # asks for the password\n"+
			"  printf '%s\\n' \"$PW\" | pando create-user alice # reads it from the input",
		cobra.RangeArgs(1, 2), false,
		func(ctx context.Context, s *session, args []string) error {
			name := args[0]
			var pw string
			if len(args) == 2 {
				pw = args[1]
			} else {
				var err error
				if pw, err = s.readNewPassword("Password"); err != nil {
					return err
				}
			}
			s.out("Creating user %s as %s...\n", name, s.user())
			_, err := s.c.CreateUser(ctx, name, pw)
			if api.IsStatus(err, http.StatusConflict) {
				s.out("User '%s' already exists.\nOK\n", name)
				return nil
			}
			if err != nil {
				return s.denied(err, "admin rights")
			}
			s.out("OK\n\nTIP: Give the user a role, e.g. 'pando set-space-role %s ORG SPACE SpaceDeveloper'.\n", name)
			return nil
		})
	cmd.Long = "Create a user who logs in with a password (admins). Without PASSWORD it is asked for\n" +
		"(twice, not shown) on a terminal, else read as one line from the input, so it stays\n" +
		"out of the shell history and the process list."
	return cmd
}

func (e *env) deleteUserCmd() *cobra.Command {
	var force bool
	cmd := e.teamCommand("delete-user USERNAME", "Delete a user and their roles (admins)", "  pando delete-user alice -f",
		cobra.ExactArgs(1), false,
		func(ctx context.Context, s *session, args []string) error {
			name := args[0]
			if s.declined(force, "Delete", fmt.Sprintf("Really delete the user %s?", name)) {
				return nil
			}
			s.out("Deleting user %s as %s...\n", name, s.user())
			id, err := s.c.UAAUserID(ctx, name)
			if api.IsNotFound(err) {
				s.out("User '%s' does not exist.\nOK\n", name)
				return nil
			}
			if err != nil {
				return s.denied(err, "admin rights")
			}
			if err := s.c.DeleteUser(ctx, id); err != nil {
				return fmt.Errorf("delete user %s: %w", name, s.denied(err, "admin rights"))
			}
			s.out("OK\n")
			return nil
		})
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not ask for confirmation")
	return cmd
}

func (e *env) passwdCmd() *cobra.Command {
	return e.teamCommand("passwd", "Change your password (asked for, or read from the input: current, then new)",
		"  pando passwd", cobra.NoArgs, false,
		func(ctx context.Context, s *session, args []string) error {
			cl, err := api.ParseClaims(s.c.Tokens().Access)
			if err != nil || cl.UserID == "" {
				return errors.New("cannot tell who is logged in: run 'pando login' first")
			}
			old, err := s.promptSecret("Current password")
			if err != nil {
				return err
			}
			pw, err := s.readNewPassword("New password")
			if err != nil {
				return err
			}
			s.out("Changing password for user %s...\n", cl.UserName)
			if err := s.c.ChangePassword(ctx, cl.UserID, old, pw); err != nil {
				if api.IsStatus(err, http.StatusUnauthorized) {
					return errors.New("password not changed: the current password is wrong")
				}
				return fmt.Errorf("change password: %w", err)
			}
			// The old refresh token no longer works: log in again with the
			// new password rather than make the user do it.
			if _, err := s.c.PasswordGrant(ctx, cl.UserName, pw); err != nil {
				s.out("OK\n")
				return fmt.Errorf("password changed, but logging in again failed: %w (run 'pando login')", err)
			}
			if err := s.save(); err != nil {
				return err
			}
			s.out("OK\n")
			return nil
		})
}

func (e *env) setOrgRoleCmd() *cobra.Command {
	return e.teamCommand("set-org-role USERNAME ORG ROLE", "Give a user a role in an org (OrgManager, BillingManager, OrgAuditor, OrgUser)",
		"  pando set-org-role alice shop OrgManager", cobra.ExactArgs(3), false,
		func(ctx context.Context, s *session, args []string) error {
			user, r, org, _, err := s.roleArgs(ctx, orgRoles, args)
			if err != nil {
				return err
			}
			s.out("Assigning role %s to user %s in org %s as %s...\n", r.cli, user, org.Name, s.user())
			_, err = s.c.CreateRole(ctx, r.api, "organization", org.GUID, user)
			return s.roleResult(err, user, r, "org "+org.Name, orgManager(org.Name))
		})
}

func (e *env) setSpaceRoleCmd() *cobra.Command {
	return e.teamCommand("set-space-role USERNAME ORG SPACE ROLE",
		"Give a user a space role (SpaceManager, SpaceDeveloper, SpaceAuditor, SpaceSupporter)",
		"  pando set-space-role alice shop dev SpaceDeveloper", cobra.ExactArgs(4), false,
		func(ctx context.Context, s *session, args []string) error {
			user, r, org, sp, err := s.roleArgs(ctx, spaceRoles, args)
			if err != nil {
				return err
			}
			need := "space manager or org manager role in space " + sp.Name
			s.out("Assigning role %s to user %s in org %s / space %s as %s...\n", r.cli, user, org.Name, sp.Name, s.user())
			// A space role needs an org role first, as the cf CLI does it.
			if _, err := s.c.CreateRole(ctx, "organization_user", "organization", org.GUID, user); err != nil &&
				!unprocessable(err, "already has") && !api.IsStatus(err, http.StatusForbidden) {
				return s.roleResult(err, user, orgRoles[3], "org "+org.Name, need)
			}
			_, err = s.c.CreateRole(ctx, r.api, "space", sp.GUID, user)
			return s.roleResult(err, user, r, "space "+sp.Name, need)
		})
}

// roleArgs resolves the (un)set role verbs' USERNAME ORG [SPACE] ROLE: the
// role first, then the org and, with four args, its space.
func (s *session) roleArgs(ctx context.Context, roles []roleName, args []string) (string, roleName, *api.Org, *api.Space, error) {
	r, err := parseRole(roles, args[len(args)-1])
	if err != nil {
		return "", roleName{}, nil, nil, err
	}
	if len(args) == 3 {
		org, err := s.org(ctx, args[1])
		return args[0], r, org, nil, err
	}
	org, sp, err := s.orgSpace(ctx, args[1], args[2])
	return args[0], r, org, sp, err
}

// roleResult reports a role change's outcome the way the cf CLI does: a
// role the user already has is not an error.
func (s *session) roleResult(err error, user string, r roleName, where, need string) error {
	switch {
	case err == nil:
		s.out("OK\n")
		return nil
	case unprocessable(err, "already has"):
		s.out("User '%s' already has role %s in %s.\nOK\n", user, r.cli, where)
		return nil
	case unprocessable(err, "No user exists"):
		return fmt.Errorf("user '%s' not found: create it with 'pando create-user %s'", user, user)
	}
	return s.denied(err, need)
}

func (e *env) unsetOrgRoleCmd() *cobra.Command {
	return e.teamCommand("unset-org-role USERNAME ORG ROLE", "Remove a user's role in an org",
		"  pando unset-org-role alice shop OrgManager", cobra.ExactArgs(3), false,
		func(ctx context.Context, s *session, args []string) error {
			user, r, org, _, err := s.roleArgs(ctx, orgRoles, args)
			if err != nil {
				return err
			}
			s.out("Removing role %s from user %s in org %s as %s...\n", r.cli, user, org.Name, s.user())
			q := url.Values{"types": {r.api}, "organization_guids": {org.GUID}}
			return s.unsetRole(ctx, q, user, r, "org "+org.Name, orgManager(org.Name))
		})
}

func (e *env) unsetSpaceRoleCmd() *cobra.Command {
	return e.teamCommand("unset-space-role USERNAME ORG SPACE ROLE", "Remove a user's role in a space",
		"  pando unset-space-role alice shop dev SpaceDeveloper", cobra.ExactArgs(4), false,
		func(ctx context.Context, s *session, args []string) error {
			user, r, org, sp, err := s.roleArgs(ctx, spaceRoles, args)
			if err != nil {
				return err
			}
			s.out("Removing role %s from user %s in org %s / space %s as %s...\n", r.cli, user, org.Name, sp.Name, s.user())
			q := url.Values{"types": {r.api}, "space_guids": {sp.GUID}}
			return s.unsetRole(ctx, q, user, r, "space "+sp.Name, "space manager or org manager role in space "+sp.Name)
		})
}

func (s *session) unsetRole(ctx context.Context, q url.Values, user string, r roleName, where, need string) error {
	roles, users, err := s.c.Roles(ctx, q)
	if err != nil {
		return err
	}
	for _, role := range roles {
		if u, ok := users[role.Relationships.User.GUID()]; ok && u.Username == user {
			if err := s.c.DeleteRole(ctx, role.GUID); err != nil {
				return s.denied(err, need)
			}
			s.out("OK\n")
			return nil
		}
	}
	s.out("User '%s' does not have role %s in %s.\nOK\n", user, r.cli, where)
	return nil
}

func (e *env) orgUsersCmd() *cobra.Command {
	return e.teamCommand("org-users ORG", "List an org's users by role", "  pando org-users shop", cobra.ExactArgs(1), false,
		func(ctx context.Context, s *session, args []string) error {
			org, err := s.org(ctx, args[0])
			if err != nil {
				return err
			}
			s.out("Getting users in org %s as %s...\n", org.Name, s.user())
			q := url.Values{"organization_guids": {org.GUID}, "types": {"organization_manager,organization_billing_manager,organization_auditor,organization_user"}}
			return s.printRoles(ctx, q, orgRoles)
		})
}

func (e *env) spaceUsersCmd() *cobra.Command {
	return e.teamCommand("space-users ORG SPACE", "List a space's users by role", "  pando space-users shop dev", cobra.ExactArgs(2), false,
		func(ctx context.Context, s *session, args []string) error {
			org, sp, err := s.orgSpace(ctx, args[0], args[1])
			if err != nil {
				return err
			}
			s.out("Getting users in org %s / space %s as %s...\n", org.Name, sp.Name, s.user())
			return s.printRoles(ctx, url.Values{"space_guids": {sp.GUID}}, spaceRoles)
		})
}

// printRoles prints the users of each role, as cf org-users/space-users.
func (s *session) printRoles(ctx context.Context, q url.Values, kinds []roleName) error {
	roles, users, err := s.c.Roles(ctx, q)
	if err != nil {
		return err
	}
	byType := map[string][]string{}
	for _, r := range roles {
		u, ok := users[r.Relationships.User.GUID()]
		name := r.Relationships.User.GUID()
		if ok {
			name = u.Name()
			if u.Origin != "" {
				name += " (" + u.Origin + ")"
			}
		}
		byType[r.Type] = append(byType[r.Type], name)
	}
	for _, k := range kinds {
		s.out("\n%s\n", k.heading)
		names := byType[k.api]
		sort.Strings(names)
		if len(names) == 0 {
			s.out("  No %s found\n", k.heading)
		}
		for _, n := range names {
			s.out("  %s\n", n)
		}
	}
	return nil
}
