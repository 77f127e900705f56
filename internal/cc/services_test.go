package cc

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/secrets"
)

// svNew is a tenancy test API with a secrets key, a started app in the
// seeded space, "dev" a developer and "aud" an auditor there.
func svNew(t *testing.T, opts ...func(*Config)) (*ptEnv, pando.App) {
	t.Helper()
	box, err := secrets.LoadOrCreate(filepath.Join(t.TempDir(), "secrets.key"))
	if err != nil {
		t.Fatal(err)
	}
	e := tnNew(t, func(c *Config) {
		c.Secrets = box
		for _, o := range opts {
			o(c)
		}
	})
	sp := e.space()
	for _, r := range []pando.Role{
		{GUID: "r1", Type: pando.RoleOrgUser, UserGUID: "dev", OrgGUID: sp.OrgGUID},
		{GUID: "r2", Type: pando.RoleSpaceDeveloper, UserGUID: "dev", SpaceGUID: sp.GUID},
		{GUID: "r3", Type: pando.RoleOrgUser, UserGUID: "aud", OrgGUID: sp.OrgGUID},
		{GUID: "r4", Type: pando.RoleSpaceAuditor, UserGUID: "aud", SpaceGUID: sp.GUID},
	} {
		if err := e.store.CreateRole(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	app := e.startedApp("app1")
	e.ok(e.do("POST", "/v3/apps/"+app.GUID+"/actions/restart", "", nil), http.StatusOK)
	return e, app
}

const (
	svDev = "bearer user:dev"
	svAud = "bearer user:aud"
)

// lrpServices is the VCAP_SERVICES the app's running revision gets ("" for
// none).
func (e *ptEnv) lrpServices(app pando.App) string {
	e.t.Helper()
	lrp, ok := e.rt.desiredLRP(app.GUID)
	if !ok {
		e.t.Fatal("no desired LRP")
	}
	for _, v := range lrp.Env {
		if v.Name == "VCAP_SERVICES" {
			return v.Value
		}
	}
	return ""
}

func decodeBody(t *testing.T, rec interface{ Result() *http.Response }, status int) map[string]any {
	t.Helper()
	res := rec.Result()
	defer res.Body.Close()
	out := map[string]any{}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil && res.StatusCode != http.StatusNoContent {
		t.Fatalf("decode: %v", err)
	}
	if res.StatusCode != status {
		t.Fatalf("status %d, want %d: %v", res.StatusCode, status, out)
	}
	return out
}

// TestServices_userProvidedBindingReachesVCAPServicesAtRestart replays
// cf create-user-provided-service and bind-service (shared/cf-traces 36,
// 37) as a space developer, then unbind-service, and checks what the app
// gets at each restart and who may read the credentials.
func TestServices_userProvidedBindingReachesVCAPServicesAtRestart(t *testing.T) {
	e, app := svNew(t)
	sp := e.space()

	// cf create-user-provided-service db -p '{"pw":"upsPlainSecret"}'
	rec := e.doAs(svDev, "POST", "/v3/service_instances", `{"credentials":{"pw":"upsPlainSecret"},"name":"db","relationships":{"space":{"data":{"guid":"`+sp.GUID+`"}}},"type":"user-provided"}`)
	si := decodeBody(t, rec, http.StatusCreated)
	if si["type"] != "user-provided" || si["name"] != "db" || si["syslog_drain_url"] != nil || si["route_service_url"] != nil {
		t.Fatalf("instance: %v", si)
	}
	if lo := si["last_operation"].(map[string]any); lo["state"] != "succeeded" || lo["type"] != "create" {
		t.Errorf("last_operation: %v", lo)
	}
	if _, leaked := si["credentials"]; leaked || strings.Contains(rec.Body.String(), `"pw"`) {
		t.Errorf("the instance shows its credentials: %s", rec.Body.String())
	}
	siGUID := si["guid"].(string)
	stored, err := e.store.GetServiceInstance(t.Context(), siGUID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Credentials == "" || strings.Contains(stored.Credentials, `"pw"`) || strings.Contains(stored.Credentials, "upsPlainSecret") {
		t.Errorf("credentials stored in the clear: %q", stored.Credentials)
	}
	// The same name again in the space is CF's 422.
	dup := decodeBody(t, e.doAs(svDev, "POST", "/v3/service_instances", `{"name":"db","relationships":{"space":{"data":{"guid":"`+sp.GUID+`"}}},"type":"user-provided"}`), http.StatusUnprocessableEntity)
	if !strings.Contains(dup["errors"].([]any)[0].(map[string]any)["detail"].(string), "The service instance name is taken: db") {
		t.Errorf("duplicate: %v", dup)
	}
	// An auditor cannot create one.
	decodeBody(t, e.doAs(svAud, "POST", "/v3/service_instances", `{"name":"x","relationships":{"space":{"data":{"guid":"`+sp.GUID+`"}}},"type":"user-provided"}`), http.StatusForbidden)

	// cf bind-service app1 db: lookups, then the binding.
	found := ptResources(decodeBody(t, e.doAs(svDev, "GET", "/v3/service_instances?names=db&page=1&per_page=1&space_guids="+sp.GUID, ""), http.StatusOK))
	if len(found) != 1 || found[0]["guid"] != siGUID {
		t.Fatalf("lookup: %v", found)
	}
	bindBody := `{"relationships":{"app":{"data":{"guid":"` + app.GUID + `"}},"service_instance":{"data":{"guid":"` + siGUID + `"}}},"type":"app"}`
	decodeBody(t, e.doAs(svAud, "POST", "/v3/service_credential_bindings", bindBody), http.StatusForbidden)
	rec = e.doAs(svDev, "POST", "/v3/service_credential_bindings", bindBody)
	b := decodeBody(t, rec, http.StatusCreated)
	if rec.Header().Get("Location") != "" || b["type"] != "app" || b["name"] != nil {
		t.Fatalf("binding: %v (Location %q)", b, rec.Header().Get("Location"))
	}
	bGUID := b["guid"].(string)
	decodeBody(t, e.doAs(svDev, "POST", "/v3/service_credential_bindings", bindBody), http.StatusUnprocessableEntity)
	key := decodeBody(t, e.doAs(svDev, "POST", "/v3/service_credential_bindings", `{"type":"key","name":"k","relationships":{"service_instance":{"data":{"guid":"`+siGUID+`"}}}}`), http.StatusUnprocessableEntity)
	if !strings.Contains(key["errors"].([]any)[0].(map[string]any)["detail"].(string), "not supported for user-provided service instances") {
		t.Errorf("key: %v", key)
	}

	// Not in the running revision until a restart, as in CF.
	if got := e.lrpServices(app); got != "" {
		t.Fatalf("binding reached the running app without a restart: %s", got)
	}
	// cf env shows it to the developer; the auditor sees neither env nor credentials.
	env := decodeBody(t, e.doAs(svDev, "GET", "/v3/apps/"+app.GUID+"/env", ""), http.StatusOK)
	ups := env["system_env_json"].(map[string]any)["VCAP_SERVICES"].(map[string]any)["user-provided"].([]any)
	if len(ups) != 1 || ups[0].(map[string]any)["credentials"].(map[string]any)["pw"] != "upsPlainSecret" {
		t.Errorf("env VCAP_SERVICES: %v", ups)
	}
	decodeBody(t, e.doAs(svAud, "GET", "/v3/apps/"+app.GUID+"/env", ""), http.StatusForbidden)
	decodeBody(t, e.doAs(svAud, "GET", "/v3/service_instances/"+siGUID+"/credentials", ""), http.StatusForbidden)
	decodeBody(t, e.doAs(svAud, "GET", "/v3/service_credential_bindings/"+bGUID+"/details", ""), http.StatusForbidden)
	decodeBody(t, e.doAs(svAud, "GET", "/v3/service_instances/"+siGUID, ""), http.StatusOK)
	creds := decodeBody(t, e.doAs(svDev, "GET", "/v3/service_instances/"+siGUID+"/credentials", ""), http.StatusOK)
	if creds["pw"] != "upsPlainSecret" || len(creds) != 1 {
		t.Errorf("credentials: %v", creds)
	}
	decodeBody(t, e.doAs("bearer user:other", "GET", "/v3/service_instances/"+siGUID, ""), http.StatusNotFound)
	if others := ptResources(decodeBody(t, e.doAs("bearer user:other", "GET", "/v3/service_instances", ""), http.StatusOK)); len(others) != 0 {
		t.Errorf("another org's user lists %v", others)
	}
	// cf service db: the instance with its space and org, then its bound apps.
	detail := decodeBody(t, e.doAs(svAud, "GET", "/v3/service_instances?fields%5Bspace%5D=name,guid&fields%5Bspace.organization%5D=name,guid&names=db&page=1&per_page=1&space_guids="+sp.GUID, ""), http.StatusOK)
	inc, _ := detail["included"].(map[string]any)
	if sps, _ := inc["spaces"].([]any); len(sps) != 1 || sps[0].(map[string]any)["name"] != sp.Name || len(inc["organizations"].([]any)) != 1 {
		t.Errorf("cf service's included: %v", detail["included"])
	}
	bound := decodeBody(t, e.doAs(svAud, "GET", "/v3/service_credential_bindings?include=app&service_instance_guids="+siGUID+"&type=app", ""), http.StatusOK)
	if apps, _ := bound["included"].(map[string]any)["apps"].([]any); len(ptResources(bound)) != 1 || len(apps) != 1 || apps[0].(map[string]any)["name"] != "app1" {
		t.Errorf("bound apps: %v", bound)
	}

	decodeBody(t, e.doAs(svDev, "POST", "/v3/apps/"+app.GUID+"/actions/restart", ""), http.StatusOK)
	var vs map[string][]map[string]any
	if err := json.Unmarshal([]byte(e.lrpServices(app)), &vs); err != nil {
		t.Fatalf("VCAP_SERVICES after restart: %v", err)
	}
	if len(vs["user-provided"]) != 1 {
		t.Fatalf("VCAP_SERVICES after restart: %v", vs)
	}
	got := vs["user-provided"][0]
	for k, want := range map[string]any{"label": "user-provided", "name": "db", "instance_name": "db", "instance_guid": siGUID, "binding_guid": bGUID, "binding_name": nil, "syslog_drain_url": nil} {
		if got[k] != want {
			t.Errorf("VCAP_SERVICES %s = %v, want %v", k, got[k], want)
		}
	}
	if got["credentials"].(map[string]any)["pw"] != "upsPlainSecret" || got["tags"] == nil || got["volume_mounts"] == nil {
		t.Errorf("VCAP_SERVICES entry: %v", got)
	}

	// cf unbind-service app1 db: it stays until the next restart.
	list := ptResources(decodeBody(t, e.doAs(svDev, "GET", "/v3/service_credential_bindings?app_guids="+app.GUID+"&service_instance_guids="+siGUID+"&type=app", ""), http.StatusOK))
	if len(list) != 1 || list[0]["guid"] != bGUID {
		t.Fatalf("binding lookup: %v", list)
	}
	decodeBody(t, e.doAs(svAud, "DELETE", "/v3/service_credential_bindings/"+bGUID, ""), http.StatusForbidden)
	if rec := e.doAs(svDev, "DELETE", "/v3/service_credential_bindings/"+bGUID, ""); rec.Code != http.StatusNoContent {
		t.Fatalf("unbind: %d %s", rec.Code, rec.Body.String())
	}
	if len(ptResources(decodeBody(t, e.doAs(svDev, "GET", "/v3/service_credential_bindings?app_guids="+app.GUID, ""), http.StatusOK))) != 0 {
		t.Error("the binding is still listed after unbind")
	}
	// Rebinding before the restart works (the old one is only pinned).
	decodeBody(t, e.doAs(svDev, "POST", "/v3/service_credential_bindings", `{"type":"app","name":"again","relationships":{"app":{"data":{"guid":"`+app.GUID+`"}},"service_instance":{"data":{"guid":"`+siGUID+`"}}}}`), http.StatusCreated)
	// A server restart re-desires the running revision as it was.
	e = e.restarted()
	if s := e.lrpServices(app); !strings.Contains(s, bGUID) || strings.Contains(s, "again") {
		t.Fatalf("the running revision's bindings changed without a restart: %s", s)
	}
	list = ptResources(decodeBody(t, e.doAs(svDev, "GET", "/v3/service_credential_bindings?app_guids="+app.GUID, ""), http.StatusOK))
	if len(list) != 1 {
		t.Fatalf("bindings: %v", list)
	}
	if rec := e.doAs(svDev, "DELETE", "/v3/service_credential_bindings/"+list[0]["guid"].(string), ""); rec.Code != http.StatusNoContent {
		t.Fatalf("unbind: %d %s", rec.Code, rec.Body.String())
	}
	decodeBody(t, e.doAs(svDev, "POST", "/v3/apps/"+app.GUID+"/actions/restart", ""), http.StatusOK)
	if s := e.lrpServices(app); s != "" {
		t.Fatalf("VCAP_SERVICES after unbind and restart: %s", s)
	}

	// No event holds the credentials.
	evs, err := e.store.ListEvents(t.Context(), pando.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]bool{}
	for _, ev := range evs {
		types[ev.Type] = true
		raw, _ := json.Marshal(ev)
		if strings.Contains(string(raw), `"pw"`) {
			t.Errorf("event %s holds the credentials: %s", ev.Type, raw)
		}
	}
	for _, typ := range []string{"audit.user_provided_service_instance.create", "audit.service_binding.create", "audit.service_binding.delete"} {
		if !types[typ] {
			t.Errorf("no %s event", typ)
		}
	}
}

// cf update-user-provided-service and delete-service.
func TestServices_updateAndDeleteUserProvided(t *testing.T) {
	e, app := svNew(t)
	sp := e.space()
	si := decodeBody(t, e.doAs(svDev, "POST", "/v3/service_instances", `{"type":"user-provided","name":"db","credentials":{"a":"1"},"tags":["t1"],"syslog_drain_url":"syslog://logs.example:514","relationships":{"space":{"data":{"guid":"`+sp.GUID+`"}}}}`), http.StatusCreated)
	siGUID := si["guid"].(string)
	if si["syslog_drain_url"] != "syslog://logs.example:514" || len(si["tags"].([]any)) != 1 {
		t.Fatalf("instance: %v", si)
	}
	for _, bad := range []string{`{"credentials":"nope"}`, `{"route_service_url":"http://not-https.example"}`, `{"syslog_drain_url":"not a url"}`, `{"name":""}`} {
		decodeBody(t, e.doAs(svDev, "PATCH", "/v3/service_instances/"+siGUID, bad), http.StatusUnprocessableEntity)
	}
	up := decodeBody(t, e.doAs(svDev, "PATCH", "/v3/service_instances/"+siGUID, `{"credentials":{"b":"2"},"route_service_url":"https://rs.example"}`), http.StatusOK)
	if up["route_service_url"] != "https://rs.example" || up["syslog_drain_url"] != "syslog://logs.example:514" {
		t.Errorf("update: %v", up)
	}
	creds := decodeBody(t, e.doAs(svDev, "GET", "/v3/service_instances/"+siGUID+"/credentials", ""), http.StatusOK)
	if creds["b"] != "2" || creds["a"] != nil {
		t.Errorf("credentials after update: %v", creds)
	}
	decodeBody(t, e.doAs(svAud, "PATCH", "/v3/service_instances/"+siGUID, `{"tags":[]}`), http.StatusForbidden)
	decodeBody(t, e.doAs(svDev, "POST", "/v3/service_credential_bindings", `{"type":"app","relationships":{"app":{"data":{"guid":"`+app.GUID+`"}},"service_instance":{"data":{"guid":"`+siGUID+`"}}}}`), http.StatusCreated)

	decodeBody(t, e.doAs(svAud, "DELETE", "/v3/service_instances/"+siGUID, ""), http.StatusForbidden)
	if rec := e.doAs(svDev, "DELETE", "/v3/service_instances/"+siGUID, ""); rec.Code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", rec.Code, rec.Body.String())
	}
	decodeBody(t, e.doAs(svDev, "GET", "/v3/service_instances/"+siGUID, ""), http.StatusNotFound)
	if bs, err := e.store.ListServiceBindings(t.Context(), pando.ServiceBindingFilter{AppGUIDs: []string{app.GUID}}); err != nil || len(bs) != 0 {
		t.Errorf("bindings left after delete: %v %v", bs, err)
	}
	decodeBody(t, e.doAs(svDev, "POST", "/v3/service_instances", `{"type":"managed","name":"m","relationships":{"space":{"data":{"guid":"`+sp.GUID+`"}}}}`), http.StatusUnprocessableEntity)
}

// A manifest's services are bound when it is applied (cf push with
// services:), once, and a manifest naming an unknown instance changes
// nothing.
func TestServices_manifestServicesAreBound(t *testing.T) {
	e, _ := svNew(t)
	sp := e.space()
	si := decodeBody(t, e.doAs(svDev, "POST", "/v3/service_instances", `{"type":"user-provided","name":"db","credentials":{"k":"v"},"relationships":{"space":{"data":{"guid":"`+sp.GUID+`"}}}}`), http.StatusCreated)
	d := e.cfErr(e.applyManifest("applications:\n- name: m1\n  services: [db, nope]\n"), http.StatusUnprocessableEntity)
	if d["detail"] != "For application 'm1': Service instance 'nope' not found" {
		t.Errorf("detail = %v", d["detail"])
	}
	if apps, _ := e.store.ListApps(t.Context(), pando.AppFilter{Names: []string{"m1"}}); len(apps) != 0 {
		t.Fatalf("a failed manifest created %v", apps)
	}
	for range 2 {
		if job := e.job(e.applyManifest("applications:\n- name: m1\n  services:\n  - name: db\n    binding_name: primary\n")); job["state"] != "COMPLETE" {
			t.Fatalf("job: %v", job)
		}
	}
	app := e.appByName("m1")
	bs, err := e.store.ListServiceBindings(t.Context(), pando.ServiceBindingFilter{AppGUIDs: []string{app.GUID}})
	if err != nil || len(bs) != 1 || bs[0].InstanceGUID != si["guid"] || bs[0].Name != "primary" {
		t.Fatalf("bindings: %v %v", bs, err)
	}
	e.cfErr(e.applyManifest("applications:\n- name: m1\n  services:\n  - name: db\n    parameters: {a: 1}\n"), http.StatusUnprocessableEntity)
}

// Deleting a space deletes its service instances and their bindings.
func TestServices_deletingTheSpaceDeletesItsInstances(t *testing.T) {
	e, app := svNew(t)
	sp := e.space()
	si := decodeBody(t, e.doAs(svDev, "POST", "/v3/service_instances", `{"type":"user-provided","name":"db","credentials":{"k":"v"},"relationships":{"space":{"data":{"guid":"`+sp.GUID+`"}}}}`), http.StatusCreated)["guid"].(string)
	decodeBody(t, e.doAs(svDev, "POST", "/v3/service_credential_bindings", `{"type":"app","relationships":{"app":{"data":{"guid":"`+app.GUID+`"}},"service_instance":{"data":{"guid":"`+si+`"}}}}`), http.StatusCreated)
	if job := e.job(e.do("DELETE", "/v3/spaces/"+sp.GUID, "", nil)); job["state"] != "COMPLETE" {
		t.Fatalf("delete space: %v", job)
	}
	if _, err := e.store.GetServiceInstance(t.Context(), si); !pando.IsNotFound(err) {
		t.Errorf("instance after its space was deleted: %v", err)
	}
	if bs, err := e.store.ListServiceBindings(t.Context(), pando.ServiceBindingFilter{Running: true}); err != nil || len(bs) != 0 {
		t.Errorf("bindings after the space was deleted: %v %v", bs, err)
	}
}
