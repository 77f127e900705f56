package server

import (
	"log/slog"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/drain"
	"github.com/pandoplatform/pando/internal/sqlstore"
)

// The drain forwarder learns each live binding to an instance with a
// syslog_drain_url, with CF's org.space.app HOSTNAME and the space and org
// whose limits it counts against; unbound bindings and instances without
// a drain are left out.
func TestDrainBindings_liveBindingsWithDrainURLs(t *testing.T) {
	ctx := t.Context()
	st, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "ccdb.sqlite"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.CreateOrg(ctx, pando.Org{GUID: "o1", Name: "acme"}))
	must(st.CreateSpace(ctx, pando.Space{GUID: "s1", Name: "dev", OrgGUID: "o1"}))
	for _, g := range []string{"a1", "a2", "a3"} {
		must(st.CreateApp(ctx, pando.App{GUID: g, Name: "web-" + g, SpaceGUID: "s1", State: pando.AppStopped, LifecycleType: pando.LifecycleBuildpack, Stack: "host"}))
	}
	must(st.CreateServiceInstance(ctx, pando.ServiceInstance{GUID: "logs", Name: "logs", SpaceGUID: "s1", Type: pando.ServiceInstanceUserProvided, SyslogDrainURL: "syslog://logs.example:514"}))
	must(st.CreateServiceInstance(ctx, pando.ServiceInstance{GUID: "db", Name: "db", SpaceGUID: "s1", Type: pando.ServiceInstanceUserProvided}))
	must(st.CreateServiceBinding(ctx, pando.ServiceBinding{GUID: "b1", Type: "app", AppGUID: "a1", InstanceGUID: "logs"}))
	must(st.CreateServiceBinding(ctx, pando.ServiceBinding{GUID: "b2", Type: "app", AppGUID: "a2", InstanceGUID: "db"}))
	must(st.CreateServiceBinding(ctx, pando.ServiceBinding{GUID: "b3", Type: "app", AppGUID: "a3", InstanceGUID: "logs"}))
	must(st.PinServiceBindings(ctx, "a3"))
	must(st.DeleteServiceBinding(ctx, "b3")) // unbound, still in a3's running env

	got, err := drainBindings{st}.SyslogDrains(ctx)
	must(err)
	want := []drain.Binding{{AppGUID: "a1", URL: "syslog://logs.example:514", Hostname: "acme.dev.web-a1", SpaceGUID: "s1", OrgGUID: "o1"}}
	if !slices.Equal(got, want) {
		t.Errorf("drains = %+v, want %+v", got, want)
	}
}
