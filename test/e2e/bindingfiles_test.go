package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestServices_bindingFilesWhenTheAppAsksForThem: with service-binding-k8s
// enabled, the buildpack at staging and the restaged app read the binding
// under $SERVICE_BINDING_ROOT (owner-only files, no VCAP_SERVICES); with file-based-vcap-services, it
// reads VCAP_SERVICES from $VCAP_SERVICES_FILE_PATH.
func TestServices_bindingFilesWhenTheAppAsksForThem(t *testing.T) {
	t.Parallel()
	s := sharedServer(t)
	admin, err := s.token()
	if err != nil {
		t.Fatal(err)
	}
	suffix := fmt.Sprintf("%d", time.Now().UnixNano())
	// The app writes what it found into a file it serves.
	start := `#!/bin/sh
{
echo "env=${VCAP_SERVICES-unset}"
if [ -n "$SERVICE_BINDING_ROOT" ]; then
  echo "uri=$(cat "$SERVICE_BINDING_ROOT/db/uri")"
  echo "type=$(cat "$SERVICE_BINDING_ROOT/db/type")"
  echo "mode=$(stat -c %a "$SERVICE_BINDING_ROOT/db/uri")"
fi
if [ -n "$VCAP_SERVICES_FILE_PATH" ]; then
  echo "file=$(cat "$VCAP_SERVICES_FILE_PATH")"
fi
} > /home/vcap/app/seen.txt
exec /tmp/lifecycle/pando static-serve --root /home/vcap/app --port "$PORT"
`
	bp := "bfbp" + suffix
	zip := buildpackZip(t, map[string]string{
		"bin/detect": "#!/bin/sh\nexit 1\n",
		"bin/finalize": "#!/bin/sh\ncp \"$(dirname \"$0\")/../start.sh\" \"$1/start.sh\"\n" +
			"[ -n \"$SERVICE_BINDING_ROOT\" ] && cat \"$SERVICE_BINDING_ROOT/db/uri\" > \"$1/staged.txt\"\nexit 0\n",
		"bin/release": "#!/bin/sh\necho '---'\necho 'default_process_types: {web: sh /home/vcap/app/start.sh}'\n",
		"start.sh":    start,
	})
	s.mustPando(t, "create-buildpack", bp, zip, "20")
	t.Cleanup(func() { s.pando(t, "delete-buildpack", bp, "-f") })
	name := "bf-" + suffix[len(suffix)-6:]
	s.deleteAppOnCleanup(t, name)
	s.mustPando(t, "push", name, "-p", staticSite(t, "hi\n"), "-b", bp)
	host := name + ".localhost"
	app := s.appGUID(t, name)
	spaceGUID := s.must(t, admin, "GET", "/v3/apps/"+app, "", 200)["relationships"].(map[string]any)["space"].(map[string]any)["data"].(map[string]any)["guid"].(string)
	si := s.must(t, admin, "POST", "/v3/service_instances", `{"type":"user-provided","name":"db-`+suffix+`","credentials":{"uri":"postgres://u:s3cret@db/x"},"relationships":{"space":{"data":{"guid":"`+spaceGUID+`"}}}}`, 201)["guid"].(string)
	s.must(t, admin, "POST", "/v3/service_credential_bindings", `{"type":"app","name":"db","relationships":{"app":{"data":{"guid":"`+app+`"}},"service_instance":{"data":{"guid":"`+si+`"}}}}`, 201)

	s.must(t, admin, "PATCH", "/v3/apps/"+app+"/features/service-binding-k8s", `{"enabled":true}`, 200)
	s.mustPando(t, "restage", name)
	eventually(t, "the app reads its binding's files", 60*time.Second, func() (bool, string) {
		body := s.curlRoute(t, host, "/seen.txt")
		return strings.Contains(body, "uri=postgres://u:s3cret@db/x"), body
	})
	body := s.curlRoute(t, host, "/seen.txt")
	for _, want := range []string{"env=unset", "type=user-provided", "mode=600"} {
		if !strings.Contains(body, want) {
			t.Errorf("service-binding-k8s: app saw %q, want %q in it", body, want)
		}
	}
	if staged := s.curlRoute(t, host, "/staged.txt"); staged != "postgres://u:s3cret@db/x" {
		t.Errorf("service-binding-k8s at staging: buildpack read %q", staged)
	}

	s.must(t, admin, "PATCH", "/v3/apps/"+app+"/features/service-binding-k8s", `{"enabled":false}`, 200)
	s.must(t, admin, "PATCH", "/v3/apps/"+app+"/features/file-based-vcap-services", `{"enabled":true}`, 200)
	s.mustPando(t, "restart", name)
	eventually(t, "the app reads VCAP_SERVICES from its file", 60*time.Second, func() (bool, string) {
		body := s.curlRoute(t, host, "/seen.txt")
		return strings.Contains(body, "file={") && strings.Contains(body, "s3cret") && strings.Contains(body, "env=unset"), body
	})
}
