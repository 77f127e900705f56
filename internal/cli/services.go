package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/pandoplatform/pando/internal/cli/api"
)

// maxCredentialsFile bounds a credentials file read for -p @FILE.
const maxCredentialsFile = 1 << 20

// readCredentials parses -p: a JSON object, @FILE, or the path of a file
// holding one (as the cf CLI accepts).
func readCredentials(p string) (map[string]any, error) {
	data := []byte(p)
	from := "-p"
	path := strings.TrimPrefix(p, "@")
	trimmed := strings.TrimSpace(p)
	if strings.HasPrefix(p, "@") || (!strings.HasPrefix(trimmed, "{") && fileExists(path)) {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("read credentials: %w", err)
		}
		defer f.Close()
		data, err = io.ReadAll(io.LimitReader(f, maxCredentialsFile+1))
		if err != nil {
			return nil, fmt.Errorf("read credentials %s: %w", path, err)
		}
		if len(data) > maxCredentialsFile {
			return nil, fmt.Errorf("credentials file %s is larger than %d bytes", path, maxCredentialsFile)
		}
		from = path
	}
	var creds map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&creds); err != nil || creds == nil {
		return nil, fmt.Errorf(`credentials in %s must be a JSON object, e.g. -p '{"user":"u","password":"p"}', or @FILE holding one`, from)
	}
	return creds, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

func (e *env) createUserProvidedServiceCmd() *cobra.Command {
	var creds, syslog, routeService, tags string
	cmd := e.teamCommand("create-user-provided-service SERVICE_INSTANCE",
		"Create a user-provided service instance (credentials, syslog drain URL) in the targeted space",
		"  pando cups db -p '{\"url\":\"postgres://db.internal/app\",\"password\":\"s3cret\"}'\n"+
			"  pando cups db -p @creds.json\n"+
			"  pando cups logs -l syslog-tls://logs.example.com:6514",
		cobra.ExactArgs(1), true,
		func(ctx context.Context, s *session, args []string) error {
			ups := api.UserProvidedService{Name: args[0], SpaceGUID: s.cfg.SpaceGUID, SyslogDrainURL: syslog, RouteServiceURL: routeService}
			if creds != "" {
				c, err := readCredentials(creds)
				if err != nil {
					return err
				}
				ups.Credentials = c
			}
			if t := splitTags(tags); len(t) > 0 {
				ups.Tags = t
			}
			s.out("Creating user provided service %s in %s...\n", args[0], s.where())
			if _, err := s.c.CreateUserProvidedService(ctx, ups); err != nil {
				if unprocessable(err, "already") || unprocessable(err, "taken") {
					s.out("Service instance %s already exists.\nOK\n", args[0])
					return nil
				}
				return s.notDeveloper(err)
			}
			s.out("OK\n\nTIP: Use 'pando bind-service APP %s' to give an app its credentials.\n", args[0])
			return nil
		})
	cmd.Aliases = []string{"cups"}
	cmd.Flags().StringVarP(&creds, "params", "p", "", "credentials: a JSON object, or @FILE holding one")
	cmd.Flags().StringVarP(&syslog, "syslog-drain-url", "l", "", "syslog drain URL (stored and shown)")
	cmd.Flags().StringVarP(&routeService, "route-service-url", "r", "", "route service URL (https)")
	cmd.Flags().StringVarP(&tags, "tags", "t", "", "comma-separated tags")
	return cmd
}

func splitTags(tags string) []string {
	out := []string{}
	for _, t := range strings.Split(tags, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

func (e *env) updateUserProvidedServiceCmd() *cobra.Command {
	var creds, syslog, routeService, tags string
	var cmd *cobra.Command
	cmd = e.teamCommand("update-user-provided-service SERVICE_INSTANCE",
		"Change a user-provided service instance's credentials, syslog drain URL, route service URL or tags",
		"  pando uups db -p '{\"url\":\"postgres://db2.internal/app\",\"password\":\"n3w\"}' && pando restart shop\n"+
			"  pando uups logs -l syslog-tls://logs2.example.com:6514\n"+
			"  pando uups db -t ''     # no tags",
		cobra.ExactArgs(1), true,
		func(ctx context.Context, s *session, args []string) error {
			var u api.ServiceInstanceUpdate
			if cmd.Flags().Changed("params") {
				c, err := readCredentials(creds)
				if err != nil {
					return err
				}
				u.Credentials = c
			}
			if cmd.Flags().Changed("syslog-drain-url") {
				u.SyslogDrainURL = &syslog
			}
			if cmd.Flags().Changed("route-service-url") {
				u.RouteServiceURL = &routeService
			}
			if cmd.Flags().Changed("tags") {
				t := splitTags(tags)
				u.Tags = &t
			}
			if u.Empty() {
				return errors.New("nothing to change: give -p CREDENTIALS, -l SYSLOG_DRAIN_URL, -r ROUTE_SERVICE_URL or -t TAGS")
			}
			si, err := s.serviceInstance(ctx, args[0])
			if err != nil {
				return err
			}
			if si.Type != "" && si.Type != "user-provided" {
				return fmt.Errorf("service instance %s is not user-provided (it is %s)", si.Name, si.Type)
			}
			s.out("Updating user provided service %s in %s...\n", si.Name, s.where())
			if err := s.c.UpdateServiceInstance(ctx, si.GUID, u); err != nil {
				return fmt.Errorf("update service instance %s: %w", si.Name, s.notDeveloper(err))
			}
			s.out("OK\n")
			if apps := s.boundApps(ctx, si.GUID); len(apps) > 0 {
				s.out("\nTIP: Use 'pando restart APP' for %s to get the change.\n", strings.Join(apps, ", "))
			}
			return nil
		})
	cmd.Aliases = []string{"uups"}
	cmd.Flags().StringVarP(&creds, "params", "p", "", "new credentials (they replace the old ones): a JSON object, or @FILE holding one")
	cmd.Flags().StringVarP(&syslog, "syslog-drain-url", "l", "", "new syslog drain URL ('' removes it)")
	cmd.Flags().StringVarP(&routeService, "route-service-url", "r", "", "new route service URL, https ('' removes it)")
	cmd.Flags().StringVarP(&tags, "tags", "t", "", "new comma-separated tags, replacing the old ones ('' removes them)")
	return cmd
}

// boundApps names the targeted space's apps bound to a service instance,
// sorted; nil when they cannot be listed.
func (s *session) boundApps(ctx context.Context, instanceGUID string) []string {
	bs, err := s.c.Bindings(ctx, nil, []string{instanceGUID})
	if err != nil || len(bs) == 0 {
		return nil
	}
	apps, err := s.c.Apps(ctx, s.cfg.SpaceGUID)
	if err != nil {
		return nil
	}
	var names []string
	for _, b := range bs {
		for _, a := range apps {
			if a.GUID == b.Relationships.App.GUID() && !contains(names, a.Name) {
				names = append(names, a.Name)
			}
		}
	}
	sort.Strings(names)
	return names
}

func (e *env) servicesCmd() *cobra.Command {
	return e.teamCommand("services", "List the service instances in the targeted space and their apps", "  pando services",
		cobra.NoArgs, true,
		func(ctx context.Context, s *session, args []string) error {
			s.out("Getting service instances in %s...\n\n", s.where())
			sis, err := s.c.ServiceInstances(ctx, s.cfg.SpaceGUID)
			if err != nil {
				return err
			}
			if len(sis) == 0 {
				s.out("No service instances found.\n")
				return nil
			}
			guids := make([]string, len(sis))
			for i, si := range sis {
				guids[i] = si.GUID
			}
			bindings, err := s.c.Bindings(ctx, nil, guids)
			if err != nil {
				return err
			}
			appName, err := s.appNames(ctx)
			if err != nil {
				return err
			}
			bound := map[string][]string{}
			for _, b := range bindings {
				if n := appName[b.Relationships.App.GUID()]; n != "" {
					bound[b.Relationships.ServiceInstance.GUID()] = append(bound[b.Relationships.ServiceInstance.GUID()], n)
				}
			}
			tw := tabwriter.NewWriter(s.streams.Out, 0, 0, 3, ' ', 0)
			fmt.Fprintf(tw, "name\ttype\tbound apps\n")
			for _, si := range sis {
				names := bound[si.GUID]
				sort.Strings(names)
				fmt.Fprintf(tw, "%s\t%s\t%s\n", si.Name, si.Type, strings.Join(names, ", "))
			}
			return tw.Flush()
		})
}

// serviceInstance finds a service instance of the targeted space.
func (s *session) serviceInstance(ctx context.Context, name string) (*api.ServiceInstance, error) {
	sis, err := s.c.ServiceInstances(ctx, s.cfg.SpaceGUID, name)
	if err != nil {
		return nil, err
	}
	if len(sis) == 0 {
		return nil, fmt.Errorf("service instance '%s' %w in %s: 'pando services' lists them", name, api.ErrNotFound, s.where())
	}
	return &sis[0], nil
}

// appAndInstance finds the app and the service instance of a (un)bind, the
// instance first as the cf CLI does.
func (s *session) appAndInstance(ctx context.Context, appName, instanceName string) (*api.App, *api.ServiceInstance, error) {
	si, err := s.serviceInstance(ctx, instanceName)
	if err != nil {
		return nil, nil, err
	}
	app, err := s.app(ctx, appName)
	if err != nil {
		return nil, nil, err
	}
	return app, si, nil
}

func (e *env) bindServiceCmd() *cobra.Command {
	var bindingName string
	cmd := e.teamCommand("bind-service APP SERVICE_INSTANCE", "Bind a service instance to an app (in VCAP_SERVICES from its next start)",
		"  pando bind-service shop db && pando restart shop", cobra.ExactArgs(2), true,
		func(ctx context.Context, s *session, args []string) error {
			app, si, err := s.appAndInstance(ctx, args[0], args[1])
			if err != nil {
				return err
			}
			s.out("Binding service instance %s to app %s in %s...\n", si.Name, app.Name, s.where())
			if err := s.c.Bind(ctx, app.GUID, si.GUID, bindingName); err != nil {
				if unprocessable(err, "already bound") || unprocessable(err, "already exists") {
					s.out("App %s is already bound to service instance %s.\nOK\n", app.Name, si.Name)
					return nil
				}
				return s.notDeveloper(err)
			}
			s.out("OK\n\nTIP: Use 'pando restart %s' for the binding to take effect.\n", app.Name)
			return nil
		})
	cmd.Flags().StringVar(&bindingName, "binding-name", "", "name of the binding (default: the instance's name)")
	return cmd
}

func (e *env) unbindServiceCmd() *cobra.Command {
	return e.teamCommand("unbind-service APP SERVICE_INSTANCE", "Unbind a service instance from an app (from its next start)",
		"  pando unbind-service shop db", cobra.ExactArgs(2), true,
		func(ctx context.Context, s *session, args []string) error {
			app, si, err := s.appAndInstance(ctx, args[0], args[1])
			if err != nil {
				return err
			}
			s.out("Unbinding app %s from service %s in %s...\n", app.Name, si.Name, s.where())
			bs, err := s.c.Bindings(ctx, []string{app.GUID}, []string{si.GUID})
			if err != nil {
				return err
			}
			if len(bs) == 0 {
				s.out("Binding between %s and %s did not exist.\nOK\n", si.Name, app.Name)
				return nil
			}
			for _, b := range bs {
				if err := s.c.Unbind(ctx, b.GUID); err != nil && !api.IsNotFound(err) {
					return s.notDeveloper(err)
				}
			}
			s.out("OK\n\nTIP: Use 'pando restart %s' for the change to take effect.\n", app.Name)
			return nil
		})
}

func (e *env) deleteServiceCmd() *cobra.Command {
	var force bool
	cmd := e.teamCommand("delete-service SERVICE_INSTANCE", "Delete a service instance and its bindings",
		"  pando delete-service db -f", cobra.ExactArgs(1), true,
		func(ctx context.Context, s *session, args []string) error {
			name := args[0]
			if s.declined(force, "Delete", fmt.Sprintf("Really delete the service instance %s?", name)) {
				return nil
			}
			s.out("Deleting service instance %s in %s...\n", name, s.where())
			si, err := s.serviceInstance(ctx, name)
			if errors.Is(err, api.ErrNotFound) {
				s.out("Service instance %s did not exist.\nOK\n", name)
				return nil
			}
			if err != nil {
				return err
			}
			if err := s.c.DeleteServiceInstance(ctx, si.GUID); err != nil {
				return fmt.Errorf("delete service instance %s: %w", name, s.notDeveloper(err))
			}
			s.out("OK\n")
			return nil
		})
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not ask for confirmation")
	return cmd
}
