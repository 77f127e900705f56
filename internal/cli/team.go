package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pandoplatform/pando/internal/cli/api"
)

// Helpers shared by the team verbs (orgs, spaces, users, roles, quotas,
// services, domains and routes).

// teamCommand is a verb that needs a session; with needSpace, a targeted
// space too.
func (e *env) teamCommand(use, short, example string, args cobra.PositionalArgs, needSpace bool,
	run func(ctx context.Context, s *session, args []string) error) *cobra.Command {
	return &cobra.Command{
		Use:     use,
		Short:   short,
		Example: example,
		Args:    args,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmdContext(cmd)
			s, err := e.newSession(ctx, needSpace)
			if err != nil {
				return err
			}
			return run(ctx, s, args)
		},
	}
}

// denied turns the API's refusal (CF-NotAuthorized, UAA's
// insufficient_scope) into what the user lacks: "not authorized: NEED
// needed (logged in as U)". Other errors pass unchanged.
func (s *session) denied(err error, need string) error {
	var e *api.Error
	if !errors.As(err, &e) || e.StatusCode != http.StatusForbidden {
		return err
	}
	if len(e.Errors) > 0 && !e.HasTitle("CF-NotAuthorized") && !e.HasTitle("insufficient_scope") {
		// For example CF-FeatureDisabled: its own text says it best.
		return err
	}
	return fmt.Errorf("not authorized: %s needed (logged in as %s)", need, s.user())
}

// notDeveloper is denied for the verbs that change the targeted space.
func (s *session) notDeveloper(err error) error {
	return s.denied(err, "space developer role in space "+s.cfg.SpaceName)
}

// notOrgManager is denied for the verbs that change org org.
func (s *session) notOrgManager(err error, org string) error {
	return s.denied(err, orgManager(org))
}

// orgManager is what an org's management needs, as denied words it.
func orgManager(org string) string { return "org manager role in org " + org }

// unprocessable reports whether err is a 422 whose detail contains text.
func unprocessable(err error, text string) bool {
	var e *api.Error
	if !errors.As(err, &e) || e.StatusCode != http.StatusUnprocessableEntity {
		return false
	}
	for _, it := range e.Errors {
		if strings.Contains(it.Detail, text) {
			return true
		}
	}
	return false
}

// org finds an org by name; "" is the targeted org.
func (s *session) org(ctx context.Context, name string) (*api.Org, error) {
	if name == "" {
		if s.cfg.OrgGUID != "" {
			return &api.Org{GUID: s.cfg.OrgGUID, Name: s.cfg.OrgName}, nil
		}
		// None targeted: the only one the user sees will do.
		orgs, err := s.c.Orgs(ctx)
		if err != nil {
			return nil, fmt.Errorf("list orgs: %w", err)
		}
		if len(orgs) != 1 {
			return nil, errors.New("no org targeted: use -o ORG or 'pando target -o ORG'")
		}
		return &orgs[0], nil
	}
	o, err := s.c.OrgByName(ctx, name)
	if errors.Is(err, api.ErrNotFound) {
		return nil, fmt.Errorf("organization '%s' not found (or %s has no role in it): 'pando orgs' lists yours", name, s.user())
	}
	return o, err
}

// space finds a space of org by name.
func (s *session) space(ctx context.Context, org *api.Org, name string) (*api.Space, error) {
	sp, err := s.c.SpaceByName(ctx, org.GUID, name)
	if errors.Is(err, api.ErrNotFound) {
		return nil, fmt.Errorf("space '%s' not found in org %s (or %s has no role in it): 'pando spaces -o %s' lists yours", name, org.Name, s.user(), org.Name)
	}
	return sp, err
}

// forget drops the targeted org (and space) or space after it was deleted.
func (s *session) forget(orgGUID, spaceGUID string) error {
	switch {
	case orgGUID != "" && s.cfg.OrgGUID == orgGUID:
		s.cfg.OrgGUID, s.cfg.OrgName, s.cfg.SpaceGUID, s.cfg.SpaceName = "", "", "", ""
	case spaceGUID != "" && s.cfg.SpaceGUID == spaceGUID:
		s.cfg.SpaceGUID, s.cfg.SpaceName = "", ""
	default:
		return nil
	}
	if err := s.save(); err != nil {
		return err
	}
	s.out("TIP: No space targeted now: use 'pando target -o ORG -s SPACE'.\n")
	return nil
}

// roleNames maps the cf CLI's role names (case-insensitive) to the API's
// role types.
var orgRoles = []roleName{
	{"OrgManager", "organization_manager", "ORG MANAGER"},
	{"BillingManager", "organization_billing_manager", "BILLING MANAGER"},
	{"OrgAuditor", "organization_auditor", "ORG AUDITOR"},
	{"OrgUser", "organization_user", "ORG USER"},
}

var spaceRoles = []roleName{
	{"SpaceManager", "space_manager", "SPACE MANAGER"},
	{"SpaceDeveloper", "space_developer", "SPACE DEVELOPER"},
	{"SpaceAuditor", "space_auditor", "SPACE AUDITOR"},
	{"SpaceSupporter", "space_supporter", "SPACE SUPPORTER"},
}

type roleName struct{ cli, api, heading string }

func parseRole(roles []roleName, s string) (roleName, error) {
	var names []string
	for _, r := range roles {
		if strings.EqualFold(s, r.cli) || s == r.api {
			return r, nil
		}
		names = append(names, r.cli)
	}
	return roleName{}, fmt.Errorf("invalid role %q: want one of %s", s, strings.Join(names, ", "))
}

// orgSpace finds space spaceName of org orgName ("": the targeted org).
func (s *session) orgSpace(ctx context.Context, orgName, spaceName string) (*api.Org, *api.Space, error) {
	org, err := s.org(ctx, orgName)
	if err != nil {
		return nil, nil, err
	}
	sp, err := s.space(ctx, org, spaceName)
	if err != nil {
		return nil, nil, err
	}
	return org, sp, nil
}

// orgNames maps the GUIDs of the orgs the user sees to their names.
func (s *session) orgNames(ctx context.Context) (map[string]string, error) {
	orgs, err := s.c.Orgs(ctx)
	if err != nil {
		return nil, fmt.Errorf("list orgs: %w", err)
	}
	names := make(map[string]string, len(orgs))
	for _, o := range orgs {
		names[o.GUID] = o.Name
	}
	return names, nil
}

// appNames maps the GUIDs of the targeted space's apps to their names.
func (s *session) appNames(ctx context.Context) (map[string]string, error) {
	apps, err := s.c.Apps(ctx, s.cfg.SpaceGUID)
	if err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	names := make(map[string]string, len(apps))
	for _, a := range apps {
		names[a.GUID] = a.Name
	}
	return names, nil
}

// declined asks question unless force; when the user says no, it prints
// "ACTION cancelled" and reports true.
func (s *session) declined(force bool, action, question string) bool {
	if force || s.confirm(question) {
		return false
	}
	s.out("%s cancelled\n", action)
	return true
}
