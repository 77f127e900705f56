package e2e

import (
	"net/url"
	"strings"
	"testing"
)

// cliDomainsRoutesAndQuotas goes on from TestTenancy_cliTeamVerbs (org
// team, space A where the developer logged in at devHome works, space B
// targeted by the admin): private and shared domains, sharing, routes
// created and deleted on their own, a space quota that refuses a route,
// and a user-provided service updated, all with pando's CLI against the
// real API.
func cliDomainsRoutesAndQuotas(t *testing.T, s *server, devHome string) {
	t.Helper()
	dev := func(args ...string) result {
		t.Helper()
		r := s.as(t, devHome, args...)
		if r.code != 0 {
			t.Fatalf("dev %s", r)
		}
		return r
	}

	// A private domain of team, shared with another org and back.
	s.mustPando(t, "create-org", "partners")
	s.mustPando(t, "create-private-domain", "team", "shop.test")
	s.mustPando(t, "share-private-domain", "partners", "shop.test")
	var orgs struct {
		Resources []struct{ GUID string } `json:"resources"`
	}
	s.api(t, "/v3/organizations?names=partners", &orgs)
	if len(orgs.Resources) != 1 {
		t.Fatalf("org partners: %+v", orgs)
	}
	if got := domainSharedWith(t, s, "shop.test"); len(got) != 1 || got[0] != orgs.Resources[0].GUID {
		t.Errorf("shop.test shared with %v, want partners (%s)", got, orgs.Resources[0].GUID)
	}

	// A space quota of 3 routes on A, which holds 2: one more, not two.
	s.mustPando(t, "create-space-quota", "tiny", "-r", "3")
	s.mustPando(t, "set-space-quota", "A", "tiny")
	requireOutput(t, s.mustPando(t, "space-quotas"), `(?m)^tiny\s+unlimited\s+unlimited\s+unlimited\s+3\s.*\sA$`)
	requireOutput(t, dev("create-route", "shop.test", "--hostname", "www"), `Route www\.shop\.test has been created\.`)
	if r := s.as(t, devHome, "create-route", "shop.test", "--hostname", "api"); r.code == 0 || !strings.Contains(r.out(), "Routes quota exceeded for space 'A'.") {
		t.Errorf("a route past the space quota: %s", r)
	}
	requireOutput(t, dev("routes"), `(?m)^www\.shop\.test\s+www\b`)
	dev("delete-route", "shop.test", "--hostname", "www", "-f")
	if r := dev("routes"); strings.Contains(r.out(), "www.shop.test") {
		t.Errorf("route still listed after delete-route: %s", r)
	}
	dev("create-route", "shop.test", "--hostname", "api")
	s.mustPando(t, "unset-space-quota", "A", "tiny")
	requireOutput(t, s.mustPando(t, "space-quotas"), `(?m)^tiny\s.*\s3\s+unlimited\s+unlimited\s+unlimited\s*$`)

	// Unshared, then deleted with its route.
	s.mustPando(t, "unshare-private-domain", "partners", "shop.test", "-f")
	if got := domainSharedWith(t, s, "shop.test"); len(got) != 0 {
		t.Errorf("shop.test still shared with %v", got)
	}
	s.mustPando(t, "delete-domain", "shop.test", "-f")
	if r := dev("routes"); strings.Contains(r.out(), "shop.test") {
		t.Errorf("a route of the deleted domain is listed: %s", r)
	}
	s.mustPando(t, "create-shared-domain", "shared.test")
	requireOutput(t, dev("domains"), `(?m)^shared\.test\s+shared$`)
	if r := s.as(t, devHome, "delete-domain", "shared.test", "-f"); r.code == 0 || !strings.Contains(r.out(), "not authorized: admin rights needed (logged in as dev)") {
		t.Errorf("the developer deleted a shared domain: %s", r)
	}

	// update-user-provided-service changes what it is given, nothing else.
	dev("cups", "logs", "-p", `{"k":"old"}`, "-l", "syslog://a.example.test:514", "-t", "x")
	dev("uups", "logs", "-l", "syslog://b.example.test:514", "-t", "y,z")
	var sis struct {
		Resources []struct {
			GUID           string   `json:"guid"`
			SyslogDrainURL string   `json:"syslog_drain_url"`
			Tags           []string `json:"tags"`
		} `json:"resources"`
	}
	s.api(t, "/v3/service_instances?names=logs", &sis)
	if len(sis.Resources) != 1 || sis.Resources[0].SyslogDrainURL != "syslog://b.example.test:514" || strings.Join(sis.Resources[0].Tags, ",") != "y,z" {
		t.Fatalf("after uups: %+v", sis)
	}
	var creds map[string]any
	s.api(t, "/v3/service_instances/"+sis.Resources[0].GUID+"/credentials", &creds)
	if creds["k"] != "old" {
		t.Errorf("credentials after uups without -p: %v", creds)
	}
	dev("uups", "logs", "-p", `{"k":"new"}`)
	s.api(t, "/v3/service_instances/"+sis.Resources[0].GUID+"/credentials", &creds)
	if creds["k"] != "new" {
		t.Errorf("credentials after uups -p: %v", creds)
	}
	dev("delete-service", "logs", "-f")
}

// domainSharedWith lists the orgs a domain is shared with.
func domainSharedWith(t *testing.T, s *server, name string) []string {
	t.Helper()
	var ds struct {
		Resources []struct {
			Relationships struct {
				SharedOrganizations struct {
					Data []struct{ GUID string } `json:"data"`
				} `json:"shared_organizations"`
			} `json:"relationships"`
		} `json:"resources"`
	}
	s.api(t, "/v3/domains?"+url.Values{"names": {name}}.Encode(), &ds)
	if len(ds.Resources) != 1 {
		t.Fatalf("domain %s: %+v", name, ds)
	}
	var out []string
	for _, o := range ds.Resources[0].Relationships.SharedOrganizations.Data {
		out = append(out, o.GUID)
	}
	return out
}
