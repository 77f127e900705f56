package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/pandoplatform/pando/internal/cli/api"
)

// Space quotas of the targeted org, as the cf CLI's space-quotas,
// create-space-quota, set-space-quota and unset-space-quota: an org
// manager limits one space of their org below the org's quota.

// orgFlag is -o ORG of the space quota verbs: the targeted org when not
// given.
func orgFlag(cmd *cobra.Command, name *string) *cobra.Command {
	cmd.Flags().StringVarP(name, "org", "o", "", "org (default: the targeted one)")
	return cmd
}

func (e *env) spaceQuotasCmd() *cobra.Command {
	var orgName string
	return orgFlag(e.teamCommand("space-quotas", "List the space quotas of the targeted org (or -o ORG)", "  pando space-quotas\n  pando space-quotas -o shop", cobra.NoArgs, false,
		func(ctx context.Context, s *session, args []string) error {
			org, err := s.org(ctx, orgName)
			if err != nil {
				return err
			}
			s.out("Getting space quotas for org %s as %s...\n\n", org.Name, s.user())
			qs, err := s.c.SpaceQuotas(ctx, org.GUID)
			if err != nil {
				return fmt.Errorf("list space quotas: %w", err)
			}
			if len(qs) == 0 {
				s.out("No space quotas found.\n")
				return nil
			}
			spaces, err := s.c.Spaces(ctx, org.GUID)
			if err != nil {
				return fmt.Errorf("list spaces: %w", err)
			}
			spaceName := map[string]string{}
			for _, sp := range spaces {
				spaceName[sp.GUID] = sp.Name
			}
			tw := tabwriter.NewWriter(s.streams.Out, 0, 0, 3, ' ', 0)
			fmt.Fprintf(tw, "name\ttotal memory\tinstance memory\tapp instances\troutes\treserved ports\tservice instances\tlog volume per second\tspaces\n")
			for _, q := range qs {
				var names []string
				for _, sp := range q.Relationships.Spaces.Data {
					if n := spaceName[sp.GUID]; n != "" {
						names = append(names, n)
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", q.Name, limitMB(q.Apps.TotalMemoryInMB), limitMB(q.Apps.PerProcessMemoryInMB),
					limitN(q.Apps.TotalInstances), limitN(q.Routes.TotalRoutes), limitN(q.Routes.TotalReservedPorts),
					limitN(q.Services.TotalServiceInstances), limitLogRate(q.Apps.LogRateLimit), strings.Join(names, ", "))
			}
			return tw.Flush()
		}), &orgName)
}

func (e *env) createSpaceQuotaCmd() *cobra.Command {
	var f quotaFlags
	var orgName string
	cmd := e.teamCommand("create-space-quota QUOTA", "Create a space quota in the targeted org or -o ORG (org managers); limits not given are unlimited",
		"  pando create-space-quota small -m 1G -a 4 -r 10", cobra.ExactArgs(1), false,
		func(ctx context.Context, s *session, args []string) error {
			limits, err := f.limits()
			if err != nil {
				return err
			}
			org, err := s.org(ctx, orgName)
			if err != nil {
				return err
			}
			s.out("Creating space quota %s for org %s as %s...\n", args[0], org.Name, s.user())
			if _, err := s.c.CreateSpaceQuota(ctx, org.GUID, args[0], limits); err != nil {
				if unprocessable(err, "already exists") {
					s.out("Space quota %s already exists in org %s.\nOK\n", args[0], org.Name)
					return nil
				}
				return fmt.Errorf("create space quota %s: %w", args[0], s.notOrgManager(err, org.Name))
			}
			s.out("OK\n\nTIP: Use 'pando set-space-quota SPACE %s' to apply it to a space.\n", args[0])
			return nil
		})
	f.add(cmd.Flags())
	return orgFlag(cmd, &orgName)
}

// spaceQuota finds a space quota of org by name.
func (s *session) spaceQuota(ctx context.Context, org *api.Org, name string) (*api.SpaceQuota, error) {
	qs, err := s.c.SpaceQuotas(ctx, org.GUID, name)
	if err != nil {
		return nil, fmt.Errorf("find space quota %s: %w", name, err)
	}
	if len(qs) == 0 {
		return nil, fmt.Errorf("space quota '%s' not found in org %s: 'pando space-quotas' lists them", name, org.Name)
	}
	return &qs[0], nil
}

// spaceAndQuota resolves SPACE and SPACE_QUOTA in org orgName ("": the
// targeted one).
func (s *session) spaceAndQuota(ctx context.Context, orgName, spaceName, quotaName string) (*api.Org, *api.Space, *api.SpaceQuota, error) {
	org, sp, err := s.orgSpace(ctx, orgName, spaceName)
	if err != nil {
		return nil, nil, nil, err
	}
	q, err := s.spaceQuota(ctx, org, quotaName)
	if err != nil {
		return nil, nil, nil, err
	}
	return org, sp, q, nil
}

func (e *env) setSpaceQuotaCmd() *cobra.Command {
	var orgName string
	return orgFlag(e.teamCommand("set-space-quota SPACE QUOTA", "Apply a space quota to a space of the targeted org or -o ORG (org managers)",
		"  pando set-space-quota dev small", cobra.ExactArgs(2), false,
		func(ctx context.Context, s *session, args []string) error {
			org, sp, q, err := s.spaceAndQuota(ctx, orgName, args[0], args[1])
			if err != nil {
				return err
			}
			s.out("Setting space quota %s to space %s as %s...\n", q.Name, sp.Name, s.user())
			if err := s.c.ApplySpaceQuota(ctx, q.GUID, sp.GUID); err != nil {
				return fmt.Errorf("set space quota %s: %w", q.Name, s.notOrgManager(err, org.Name))
			}
			s.out("OK\n")
			return nil
		}), &orgName)
}

func (e *env) unsetSpaceQuotaCmd() *cobra.Command {
	var orgName string
	return orgFlag(e.teamCommand("unset-space-quota SPACE QUOTA", "Take a space quota off a space of the targeted org or -o ORG (org managers)",
		"  pando unset-space-quota dev small", cobra.ExactArgs(2), false,
		func(ctx context.Context, s *session, args []string) error {
			org, sp, q, err := s.spaceAndQuota(ctx, orgName, args[0], args[1])
			if err != nil {
				return err
			}
			applied := false
			for _, x := range q.Relationships.Spaces.Data {
				applied = applied || x.GUID == sp.GUID
			}
			s.out("Unassigning space quota %s from space %s as %s...\n", q.Name, sp.Name, s.user())
			if !applied {
				s.out("Space quota %s is not applied to space %s.\nOK\n", q.Name, sp.Name)
				return nil
			}
			if err := s.c.RemoveSpaceQuota(ctx, q.GUID, sp.GUID); err != nil {
				return fmt.Errorf("unset space quota %s: %w", q.Name, s.notOrgManager(err, org.Name))
			}
			s.out("OK\n")
			return nil
		}), &orgName)
}
