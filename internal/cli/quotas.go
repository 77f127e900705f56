package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/pandoplatform/pando/internal/cli/api"
)

// quotaFlags are the limits create-quota and update-quota take, as the cf
// CLI's create-org-quota names them. A flag not given is left out of the
// request: unlimited on create (cf would send 0 routes and 0 service
// instances), unchanged on update.
type quotaFlags struct {
	memory, instanceMemory, instances, routes, ports, services, logRate string
}

func (q *quotaFlags) add(fs *pflag.FlagSet) {
	fs.StringVarP(&q.memory, "total-memory", "m", "", "total memory of the org's started apps (e.g. 1G, 512M; -1 for unlimited)")
	fs.StringVarP(&q.instanceMemory, "instance-memory", "i", "", "memory of one instance (e.g. 1G; -1 for unlimited)")
	fs.StringVarP(&q.instances, "app-instances", "a", "", "total app instances (-1 for unlimited)")
	fs.StringVarP(&q.routes, "routes", "r", "", "total routes (-1 for unlimited)")
	fs.StringVar(&q.ports, "reserved-route-ports", "", "total reserved route ports (-1 for unlimited)")
	fs.StringVarP(&q.services, "service-instances", "s", "", "total service instances (-1 for unlimited)")
	fs.StringVarP(&q.logRate, "log-volume", "l", "", "log rate per second of all instances (e.g. 1M, 16K; -1 for unlimited)")
}

func unlimited(s string) bool {
	s = strings.TrimSpace(s)
	return s == "-1" || strings.EqualFold(s, "unlimited")
}

// limits turns the flags into the request's limit groups.
func (q *quotaFlags) limits() (api.QuotaLimits, error) {
	out := api.QuotaLimits{}
	set := func(group, field string, v any) {
		if out[group] == nil {
			out[group] = map[string]any{}
		}
		out[group][field] = v
	}
	mem := func(flag, s, group, field string) error {
		switch {
		case s == "":
		case unlimited(s):
			set(group, field, nil)
		default:
			n, err := parseMegabytes(s)
			if err != nil {
				return fmt.Errorf("--%s: %w", flag, err)
			}
			set(group, field, n)
		}
		return nil
	}
	count := func(flag, s, group, field string) error {
		switch {
		case s == "":
		case unlimited(s):
			set(group, field, nil)
		default:
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < 0 {
				return fmt.Errorf("--%s: %q is not a count (a whole number, or -1 for unlimited)", flag, s)
			}
			set(group, field, n)
		}
		return nil
	}
	for _, err := range []error{
		mem("total-memory", q.memory, "apps", "total_memory_in_mb"),
		mem("instance-memory", q.instanceMemory, "apps", "per_process_memory_in_mb"),
		count("app-instances", q.instances, "apps", "total_instances"),
		count("routes", q.routes, "routes", "total_routes"),
		count("reserved-route-ports", q.ports, "routes", "total_reserved_ports"),
		count("service-instances", q.services, "services", "total_service_instances"),
	} {
		if err != nil {
			return nil, err
		}
	}
	if q.logRate != "" {
		n, err := parseLogRate(q.logRate)
		if err != nil {
			return nil, fmt.Errorf("--log-volume: %w", err)
		}
		if n < 0 {
			set("apps", "log_rate_limit_in_bytes_per_second", nil)
		} else {
			set("apps", "log_rate_limit_in_bytes_per_second", n)
		}
	}
	return out, nil
}

func (e *env) quotasCmd() *cobra.Command {
	cmd := e.teamCommand("quotas", "List org quotas", "  pando quotas", cobra.NoArgs, false,
		func(ctx context.Context, s *session, args []string) error {
			s.out("Getting org quotas as %s...\n\n", s.user())
			qs, err := s.c.OrgQuotas(ctx)
			if err != nil {
				return err
			}
			if len(qs) == 0 {
				s.out("No org quotas found.\n")
				return nil
			}
			orgName, err := s.orgNames(ctx)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(s.streams.Out, 0, 0, 3, ' ', 0)
			fmt.Fprintf(tw, "name\ttotal memory\tinstance memory\tapp instances\troutes\treserved ports\tservice instances\tlog volume per second\torgs\n")
			for _, q := range qs {
				var names []string
				for _, o := range q.Relationships.Organizations.Data {
					if n := orgName[o.GUID]; n != "" {
						names = append(names, n)
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", q.Name, limitMB(q.Apps.TotalMemoryInMB), limitMB(q.Apps.PerProcessMemoryInMB),
					limitN(q.Apps.TotalInstances), limitN(q.Routes.TotalRoutes), limitN(q.Routes.TotalReservedPorts),
					limitN(q.Services.TotalServiceInstances), limitLogRate(q.Apps.LogRateLimit), strings.Join(names, ", "))
			}
			return tw.Flush()
		})
	cmd.Aliases = []string{"org-quotas"}
	return cmd
}

func limitMB(v *int64) string {
	if v == nil {
		return "unlimited"
	}
	return megabytes(int(*v))
}

func limitN(v *int64) string {
	if v == nil {
		return "unlimited"
	}
	return strconv.FormatInt(*v, 10)
}

func limitLogRate(v *int64) string {
	if v == nil {
		return "unlimited"
	}
	return logRateText(int(*v))
}

func (e *env) createQuotaCmd() *cobra.Command {
	var f quotaFlags
	cmd := e.teamCommand("create-quota QUOTA", "Create an org quota (admins); limits not given are unlimited",
		"  pando create-quota small -m 2G -i 512M -a 10 -r 20", cobra.ExactArgs(1), false,
		func(ctx context.Context, s *session, args []string) error {
			limits, err := f.limits()
			if err != nil {
				return err
			}
			s.out("Creating org quota %s as %s...\n", args[0], s.user())
			if _, err := s.c.CreateOrgQuota(ctx, args[0], limits); err != nil {
				if unprocessable(err, "already") || unprocessable(err, "unique") {
					s.out("Org quota %s already exists.\nOK\n", args[0])
					return nil
				}
				return s.denied(err, "admin rights")
			}
			s.out("OK\n\nTIP: Use 'pando set-quota ORG %s' to apply it to an org.\n", args[0])
			return nil
		})
	cmd.Aliases = []string{"create-org-quota"}
	f.add(cmd.Flags())
	return cmd
}

func (e *env) updateQuotaCmd() *cobra.Command {
	var f quotaFlags
	var newName string
	cmd := e.teamCommand("update-quota QUOTA", "Change an org quota's limits (admins); limits not given stay as they are",
		"  pando update-quota small -m 4G -r -1", cobra.ExactArgs(1), false,
		func(ctx context.Context, s *session, args []string) error {
			limits, err := f.limits()
			if err != nil {
				return err
			}
			if len(limits) == 0 && newName == "" {
				return fmt.Errorf("nothing to change: give a limit (see 'pando update-quota --help')")
			}
			q, err := s.quota(ctx, args[0])
			if err != nil {
				return err
			}
			s.out("Updating org quota %s as %s...\n", q.Name, s.user())
			if _, err := s.c.UpdateOrgQuota(ctx, q.GUID, newName, limits); err != nil {
				return s.denied(err, "admin rights")
			}
			s.out("OK\n")
			return nil
		})
	cmd.Aliases = []string{"update-org-quota"}
	f.add(cmd.Flags())
	cmd.Flags().StringVarP(&newName, "name", "n", "", "new name")
	return cmd
}

func (s *session) quota(ctx context.Context, name string) (*api.Quota, error) {
	qs, err := s.c.OrgQuotas(ctx, name)
	if err != nil {
		return nil, err
	}
	if len(qs) == 0 {
		return nil, fmt.Errorf("org quota '%s' not found: 'pando quotas' lists them", name)
	}
	return &qs[0], nil
}

func (e *env) setQuotaCmd() *cobra.Command {
	cmd := e.teamCommand("set-quota ORG QUOTA", "Apply an org quota to an org (admins)", "  pando set-quota shop small",
		cobra.ExactArgs(2), false,
		func(ctx context.Context, s *session, args []string) error {
			org, err := s.org(ctx, args[0])
			if err != nil {
				return err
			}
			q, err := s.quota(ctx, args[1])
			if err != nil {
				return err
			}
			s.out("Setting quota %s to org %s as %s...\n", q.Name, org.Name, s.user())
			if err := s.c.ApplyOrgQuota(ctx, q.GUID, org.GUID); err != nil {
				return s.denied(err, "admin rights")
			}
			s.out("OK\n")
			return nil
		})
	cmd.Aliases = []string{"set-org-quota"}
	return cmd
}
