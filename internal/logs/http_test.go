package logs

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A source_types filter is matched against every line scanned (under the
// store's lock) or offered: a URL listing thousands of types is refused,
// on the read and on the stream, before any line is looked at.
func TestHTTP_sourceTypesAreBounded(t *testing.T) {
	s := New(Config{})
	defer s.Close()
	s.Emit(line("app", 0, t0))
	mux := http.NewServeMux()
	s.Routes(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	many := strings.TrimSuffix(strings.Repeat("APP/PROC/X,", 5000), ",")
	enough := strings.TrimSuffix(strings.Repeat("STG,", maxSourceTypes), ",")
	for _, path := range []string{"/api/v1/read/app?source_types=", "/pando/v1/logs/app/stream?source_types="} {
		resp, err := http.Get(srv.URL + path + many)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error string `json:"error"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || err != nil || !strings.Contains(body.Error, "at most 16 source types, got 5000") {
			t.Errorf("%s5000 types: status %d, error %q (%v), want 400 naming the bound", path, resp.StatusCode, body.Error, err)
		}
	}
	// Up to the bound is served.
	resp, err := http.Get(srv.URL + "/api/v1/read/app?source_types=" + enough)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("%d types: status %d, want 200", maxSourceTypes, resp.StatusCode)
	}
}
