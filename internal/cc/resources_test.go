package cc

import (
	"bytes"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
)

// emptyResources is a JSON array of n empty objects: 3 bytes each on the
// wire, a whole resourceEntry each if decoded.
func emptyResources(n int) []byte {
	return []byte("[" + strings.TrimSuffix(strings.Repeat("{},", n), ",") + "]")
}

// allocated runs f and returns the bytes the process allocated meanwhile.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// A resource list of millions of empty objects (3 bytes each, ~90 once
// decoded) is refused after maxResources entries, without decoding the
// rest: read whole, one 9 MB upload made the API allocate over 500 MB
// (and 64 MiB, its bound, gigabytes).
func TestResources_hugeListsAreRefusedWithoutDecodingThem(t *testing.T) {
	e := ctNew(t, ctOpts{})
	app := e.applyAndFind("many-files")
	list := emptyResources(3_000_000)
	guid := e.newPackage(app)
	ctype, body := ctUpload(t, list, nil)
	matchBody := append(append([]byte(`{"resources":`), list...), '}')

	const bound = 150 << 20 // 100,000 entries decoded, and the requests' own bytes
	var upload, match ctResp
	if n := allocated(func() { upload = e.send("POST", "/v3/packages/"+guid+"/upload", ctype, body) }); n > bound {
		t.Errorf("the upload allocated %d MB, want under %d MB", n>>20, bound>>20)
	}
	e.expectCFError(upload, http.StatusUnprocessableEntity, "CF-UnprocessableEntity", fmt.Sprintf("Too many resources: at most %d per request", maxResources))
	if n := allocated(func() { match = e.send("POST", "/v3/resource_matches", "application/json", matchBody) }); n > bound {
		t.Errorf("resource_matches allocated %d MB, want under %d MB", n>>20, bound>>20)
	}
	e.expectCFError(match, http.StatusUnprocessableEntity, "CF-UnprocessableEntity", fmt.Sprintf("Too many resources: at most %d per request", maxResources))

	// Exactly maxResources entries are fine.
	ok := append(append([]byte(`{"resources":`), emptyResources(maxResources)...), '}')
	e.expect(e.send("POST", "/v3/resource_matches", "application/json", ok), http.StatusCreated)
}

// A resource_matches body past the API's 1 MiB for other JSON bodies is
// read whole (up to its own bound), not cut short and called malformed.
func TestResources_matchBodyOverOneMiBIsReadWhole(t *testing.T) {
	t.Parallel()
	e := ctNew(t, ctOpts{})
	var b bytes.Buffer
	b.WriteString(`{"resources":[`)
	for i := range 1000 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"path":"deep/%s/f%d","sha1":"%040x","size":1}`, strings.Repeat("d", 2000), i, i)
	}
	b.WriteString(`],"other":{"ignored":[1,2,3]}}`)
	if b.Len() <= maxJSONBody {
		t.Fatalf("body of %d bytes, want over %d", b.Len(), maxJSONBody)
	}
	m := e.expect(e.send("POST", "/v3/resource_matches", "application/json", b.Bytes()), http.StatusCreated)
	if l, ok := m["resources"].([]any); !ok || len(l) != 0 {
		t.Errorf("resource_matches answered %v, want no matches", m)
	}

	// Past its own bound (16 MiB) a match is refused as too large.
	huge := append([]byte(`{"resources":[{"path":"`), bytes.Repeat([]byte("p"), maxMatchBytes)...)
	huge = append(huge, `"}]}`...)
	e.expectCFError(e.send("POST", "/v3/resource_matches", "application/json", huge), http.StatusRequestEntityTooLarge, "CF-RequestEntityTooLarge", "The resources list exceeds "+humanBytes(maxMatchBytes))

	for _, bad := range []string{`{"resources":{}}`, `{"resources":[1]}`, `[]`, `{"resources":[{}`, `nope`} {
		e.expectCFError(e.send("POST", "/v3/resource_matches", "application/json", []byte(bad)), http.StatusBadRequest, "CF-MessageParseError", "Request invalid due to parse error: invalid request body")
	}
}
