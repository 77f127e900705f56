package cc

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
)

// refuseUnsupported answers requests that ask for something Pando does not
// do yet (labels and annotations) with a clear error, instead of silently
// ignoring it: a `label_selector` that matched everything would turn
// "delete the apps labelled X" into "delete every app".
func (a *API) refuseUnsupported(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("label_selector") {
			writeCFError(w, http.StatusBadRequest, 10005, "CF-BadQueryParameter",
				"The query parameter is invalid: label_selector is not supported by Pando yet (apps and other resources carry no labels)")
			return
		}
		if (r.Method == http.MethodPost || r.Method == http.MethodPatch) && isJSON(r) && r.Body != nil {
			body, err := io.ReadAll(io.LimitReader(r.Body, maxJSONBody+1))
			if err != nil {
				writeCFError(w, http.StatusBadRequest, 1001, "CF-MessageParseError", "Request invalid due to parse error: could not read the body")
				return
			}
			// A body past maxJSONBody is passed on whole: the handlers
			// that take larger ones (resource_matches) read it on, the
			// others refuse it as too large, and none sees it cut short
			// as a malformed one.
			r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), r.Body))
			var probe struct {
				Metadata *struct {
					Labels      map[string]any `json:"labels"`
					Annotations map[string]any `json:"annotations"`
				} `json:"metadata"`
			}
			// Malformed bodies are the handler's to report.
			if json.Unmarshal(body, &probe) == nil && probe.Metadata != nil &&
				(len(probe.Metadata.Labels) > 0 || len(probe.Metadata.Annotations) > 0) {
				writeCFError(w, http.StatusUnprocessableEntity, 10008, "CF-UnprocessableEntity",
					"Metadata labels and annotations are not supported by Pando yet")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func isJSON(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return true // the cf CLI always sends one; curl users often do not
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}
