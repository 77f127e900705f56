package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServices_userProvidedServiceReachesVCAPServicesAfterARestart: a
// user-provided service's credentials, bound to an app, appear in the
// app's VCAP_SERVICES at run after a restart and at staging after a
// restage; unbinding and restarting removes them; an auditor cannot read
// them.
func TestServices_userProvidedServiceReachesVCAPServicesAfterARestart(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	admin, err := s.token()
	if err != nil {
		t.Fatal(err)
	}
	suffix := fmt.Sprintf("%d", time.Now().UnixNano())
	// A buildpack whose app writes what it saw, at staging and at start,
	// into files it serves.
	bp := "svcbp" + suffix
	zip := buildpackZip(t, map[string]string{
		"bin/detect": "#!/bin/sh\nexit 1\n",
		"bin/finalize": "#!/bin/sh\nprintf '%s' \"$VCAP_SERVICES\" > \"$1/staging.json\"\n" +
			"printf '#!/bin/sh\\nprintf \"%%s\" \"$VCAP_SERVICES\" > /home/vcap/app/vcap.json\\nexec /tmp/lifecycle/pando static-serve --root /home/vcap/app --port \"$PORT\"\\n' > \"$1/start.sh\"\n",
		"bin/release": "#!/bin/sh\necho '---'\necho 'default_process_types: {web: sh /home/vcap/app/start.sh}'\n",
	})
	s.mustPando(t, "create-buildpack", bp, zip, "20")
	t.Cleanup(func() { s.pando(t, "delete-buildpack", bp, "-f") })
	name := "svc-" + suffix[len(suffix)-6:]
	s.deleteAppOnCleanup(t, name)
	s.mustPando(t, "push", name, "-p", staticSite(t, "hi\n"), "-b", bp)
	host := name + ".localhost"
	if body := s.curlRoute(t, host, "/vcap.json"); body != "{}" {
		t.Fatalf("VCAP_SERVICES before any binding: %q", body)
	}
	app := s.appGUID(t, name)
	spaceGUID := s.must(t, admin, "GET", "/v3/apps/"+app, "", 200)["relationships"].(map[string]any)["space"].(map[string]any)["data"].(map[string]any)["guid"].(string)

	si := s.must(t, admin, "POST", "/v3/service_instances", `{"type":"user-provided","name":"db-`+suffix+`","credentials":{"uri":"postgres://u:s3cret@db:5432/x"},"tags":["pg"],"relationships":{"space":{"data":{"guid":"`+spaceGUID+`"}}}}`, 201)["guid"].(string)
	b := s.must(t, admin, "POST", "/v3/service_credential_bindings", `{"type":"app","relationships":{"app":{"data":{"guid":"`+app+`"}},"service_instance":{"data":{"guid":"`+si+`"}}}}`, 201)["guid"].(string)

	// At the next start, not before.
	if body := s.curlRoute(t, host, "/vcap.json"); body != "{}" {
		t.Fatalf("a binding reached the running app without a restart: %q", body)
	}
	s.mustPando(t, "restart", name)
	var vs struct {
		UserProvided []struct {
			Name         string            `json:"name"`
			Label        string            `json:"label"`
			InstanceGUID string            `json:"instance_guid"`
			BindingGUID  string            `json:"binding_guid"`
			Tags         []string          `json:"tags"`
			Credentials  map[string]string `json:"credentials"`
		} `json:"user-provided"`
	}
	eventually(t, "the restarted app sees its binding", 60*time.Second, func() (bool, string) {
		body := s.curlRoute(t, host, "/vcap.json")
		return json.Unmarshal([]byte(body), &vs) == nil && len(vs.UserProvided) == 1, body
	})
	got := vs.UserProvided[0]
	if got.Label != "user-provided" || got.InstanceGUID != si || got.BindingGUID != b || got.Credentials["uri"] != "postgres://u:s3cret@db:5432/x" || len(got.Tags) != 1 {
		t.Fatalf("VCAP_SERVICES entry: %+v", got)
	}
	// Staging sees it after a restage.
	s.mustPando(t, "restage", name)
	if body := s.curlRoute(t, host, "/staging.json"); !strings.Contains(body, "s3cret") {
		t.Fatalf("staging's VCAP_SERVICES: %q", body)
	}

	// An auditor of the space sees the instance but not its credentials.
	pw := "aud-" + suffix
	uid := s.must(t, admin, "POST", "/Users", `{"userName":"aud`+suffix+`","password":"`+pw+`","origin":"","name":{"familyName":"a","givenName":"a"},"emails":[{"value":"aud`+suffix+`","primary":true}]}`, 201)["id"].(string)
	s.must(t, admin, "POST", "/v3/users", `{"guid":"`+uid+`"}`, 201)
	orgGUID := s.must(t, admin, "GET", "/v3/spaces/"+spaceGUID, "", 200)["relationships"].(map[string]any)["organization"].(map[string]any)["data"].(map[string]any)["guid"].(string)
	for _, r := range [][3]string{{"organization_user", "organization", orgGUID}, {"space_auditor", "space", spaceGUID}} {
		s.must(t, admin, "POST", "/v3/roles", `{"type":"`+r[0]+`","relationships":{"`+r[1]+`":{"data":{"guid":"`+r[2]+`"}},"user":{"data":{"guid":"`+uid+`"}}}}`, 201)
	}
	aud := userToken(t, s, "aud"+suffix, pw)
	s.must(t, aud, "GET", "/v3/service_instances/"+si, "", http.StatusOK)
	for _, p := range []string{"/v3/service_instances/" + si + "/credentials", "/v3/service_credential_bindings/" + b + "/details", "/v3/apps/" + app + "/env"} {
		if code, out := s.call(t, aud, "GET", p, ""); code != http.StatusForbidden {
			t.Errorf("auditor GET %s: %d %v, want 403", p, code, out)
		}
	}

	// Unbinding takes effect at the next restart.
	if code, out := s.call(t, admin, "DELETE", "/v3/service_credential_bindings/"+b, ""); code != http.StatusNoContent {
		t.Fatalf("unbind: %d %v", code, out)
	}
	s.mustPando(t, "restart", name)
	eventually(t, "the restarted app no longer sees the binding", 60*time.Second, func() (bool, string) {
		body := s.curlRoute(t, host, "/vcap.json")
		return body == "{}", body
	})
	s.must(t, admin, "DELETE", "/v3/service_instances/"+si, "", http.StatusNoContent)
}
