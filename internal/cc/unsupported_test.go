package cc

import (
	"net/http"
	"strings"
	"testing"
)

func TestUnsupported_labelsAreRefusedNotIgnored(t *testing.T) {
	e := ctNew(t, ctOpts{})
	app := e.push("labelled")
	d := e.expectCFError(e.get("/v3/apps?label_selector=env%3Dprod"), http.StatusBadRequest, "CF-BadQueryParameter", "")
	if !strings.Contains(d, "label_selector is not supported") {
		t.Errorf("detail = %q", d)
	}
	d = e.expectCFError(e.sendJSON("PATCH", "/v3/apps/"+app.GUID, map[string]any{"metadata": map[string]any{"labels": map[string]any{"env": "prod"}}}),
		http.StatusUnprocessableEntity, "CF-UnprocessableEntity", "")
	if !strings.Contains(d, "labels and annotations are not supported") {
		t.Errorf("detail = %q", d)
	}
	// Empty metadata (as some clients send) is fine.
	e.expect(e.sendJSON("PATCH", "/v3/apps/"+app.GUID, map[string]any{"name": "relabelled", "metadata": map[string]any{"labels": map[string]any{}}}), http.StatusOK)
}
