package logs

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
)

var t0 = time.Unix(1795663555, 979653120)

func line(src string, i int, ts time.Time) pando.LogEnvelope {
	return pando.LogEnvelope{
		Timestamp:  ts,
		SourceID:   src,
		InstanceID: "0",
		SourceType: pando.LogSourceApp,
		Type:       "OUT",
		Payload:    fmt.Appendf(nil, "line %d", i),
	}
}

func payloads(es []pando.LogEnvelope) []string {
	var out []string
	for _, e := range es {
		out = append(out, string(e.Payload))
	}
	return out
}

func TestEmit_ringOverflowKeepsNewest(t *testing.T) {
	s := New(Config{PerSourceCapacity: 5})
	defer s.Close()
	for i := range 8 {
		s.Emit(line("app", i, t0.Add(time.Duration(i)*time.Second)))
	}
	got := payloads(s.Read("app", ReadQuery{}))
	want := []string{"line 3", "line 4", "line 5", "line 6", "line 7"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestEmit_perSourceByteBound(t *testing.T) {
	s := New(Config{PerSourceMaxBytes: 10 * (1000 + envelopeOverhead + 20), MaxPayload: 1000})
	defer s.Close()
	for i := range 50 {
		e := line("app", i, time.Time{})
		e.Payload = []byte(strings.Repeat("x", 1000))
		s.Emit(e)
	}
	if n := len(s.Read("app", ReadQuery{Limit: 1000})); n < 5 || n > 10 {
		t.Errorf("kept %d lines of 1000 bytes under a ~10 kB bound", n)
	}
}

func TestRead_boundsInclusiveDescendingLimit(t *testing.T) {
	s := New(Config{})
	defer s.Close()
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
	for i := range 10 {
		s.Emit(line("app", i, at(i)))
	}
	s.Emit(line("other", 99, at(3)))
	cases := []struct {
		name string
		q    ReadQuery
		want []string
	}{
		{"inclusive bounds", ReadQuery{Start: at(2), End: at(5)}, []string{"line 2", "line 3", "line 4", "line 5"}},
		{"ascending limit", ReadQuery{Start: at(2), Limit: 2}, []string{"line 2", "line 3"}},
		{"descending newest first", ReadQuery{Descending: true, Limit: 3}, []string{"line 9", "line 8", "line 7"}},
		{"descending to end", ReadQuery{End: at(5), Descending: true, Limit: 2}, []string{"line 5", "line 4"}},
		{"LOG selected", ReadQuery{EnvelopeTypes: []string{"LOG"}, Start: at(9)}, []string{"line 9"}},
		{"no LOG type", ReadQuery{EnvelopeTypes: []string{"GAUGE"}}, nil},
		{"source type prefix", ReadQuery{SourceTypes: []string{"APP"}, Start: at(9)}, []string{"line 9"}},
		{"other source type", ReadQuery{SourceTypes: []string{"STG"}}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := payloads(s.Read("app", tc.q))
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	if n := len(s.Read("app", ReadQuery{Limit: 5000})); n != 10 {
		t.Errorf("limit above the maximum: %d lines", n)
	}
}

func TestEmit_timestampsStrictlyIncreasePerSource(t *testing.T) {
	s := New(Config{})
	defer s.Close()
	s.Emit(line("app", 0, t0))
	s.Emit(line("app", 1, t0))
	s.Emit(line("app", 2, t0.Add(-time.Second)))
	es := s.Read("app", ReadQuery{})
	for i := 1; i < len(es); i++ {
		if !es[i].Timestamp.After(es[i-1].Timestamp) {
			t.Fatalf("timestamps not increasing: %v", es)
		}
	}
	if !es[0].Timestamp.Equal(t0) {
		t.Errorf("first timestamp changed: %v", es[0].Timestamp)
	}
}

func TestEmit_truncatesLargePayloadsAndNormalisesType(t *testing.T) {
	s := New(Config{})
	defer s.Close()
	big := []byte(strings.Repeat("é", 40<<10)) // 80 KiB, 2-byte runes
	s.Emit(pando.LogEnvelope{SourceID: "app", Type: "out", Payload: big})
	e := s.Read("app", ReadQuery{})[0]
	if len(e.Payload) > DefaultMaxPayload || len(e.Payload) < DefaultMaxPayload-4 {
		t.Errorf("payload length %d", len(e.Payload))
	}
	if !strings.HasSuffix(string(e.Payload), "é") {
		t.Error("payload cut inside a rune")
	}
	if e.Type != "OUT" || e.Timestamp.IsZero() {
		t.Errorf("type %q timestamp %v", e.Type, e.Timestamp)
	}
	big[0] = 'x'
	if s.Read("app", ReadQuery{})[0].Payload[0] == 'x' {
		t.Error("store shares the caller's payload buffer")
	}
}

func TestEmit_evictsLeastRecentlyWrittenSource(t *testing.T) {
	s := New(Config{MaxSources: 2})
	defer s.Close()
	s.Emit(line("a", 0, time.Time{}))
	s.Emit(line("b", 0, time.Time{}))
	s.Emit(line("a", 1, time.Time{}))
	s.Emit(line("c", 0, time.Time{}))
	if len(s.Read("b", ReadQuery{})) != 0 {
		t.Error("b should have been evicted")
	}
	if len(s.Read("a", ReadQuery{})) != 2 || len(s.Read("c", ReadQuery{})) != 1 {
		t.Error("a and c should be kept")
	}
}

func recv(t *testing.T, ch <-chan pando.LogEnvelope) pando.LogEnvelope {
	t.Helper()
	select {
	case e, ok := <-ch:
		if !ok {
			t.Fatal("channel closed")
		}
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no line within 5s")
	}
	return pando.LogEnvelope{}
}

func TestSubscribe_getsLiveLinesOfItsSourceAndTypes(t *testing.T) {
	s := New(Config{})
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	ch := s.Subscribe(ctx, "app", []string{pando.LogSourceStaging})
	s.Emit(line("app", 1, time.Time{}))   // APP: filtered out
	s.Emit(line("other", 2, time.Time{})) // other source
	stg := line("app", 3, time.Time{})
	stg.SourceType = pando.LogSourceStaging
	s.Emit(stg)
	if e := recv(t, ch); string(e.Payload) != "line 3" || e.SourceType != "STG" {
		t.Errorf("got %+v", e)
	}
	cancel()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("channel not closed after cancel")
		}
	}
}

func TestSubscribe_slowSubscriberDoesNotBlockAndSeesLoss(t *testing.T) {
	s := New(Config{SubscriberBuffer: 4})
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := s.Subscribe(ctx, "app", nil)
	const total = 500
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range total {
			s.Emit(line("app", i, time.Time{}))
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Emit blocked on a subscriber that does not read")
	}
	var got, lost int
	var notices []string
	for got+lost < total {
		e := recv(t, ch)
		if e.SourceType == SourceTypeLoss {
			var n int
			if _, err := fmt.Sscanf(string(e.Payload), "%d log lines dropped (slow consumer)", &n); err != nil {
				t.Fatalf("notice %q: %v", e.Payload, err)
			}
			lost += n
			notices = append(notices, string(e.Payload))
			continue
		}
		got++
	}
	if got+lost != total || len(notices) == 0 {
		t.Errorf("received %d, lost %d (notices %v), want %d in all with a notice", got, lost, notices, total)
	}
	if s.Dropped() != uint64(lost) {
		t.Errorf("Dropped() = %d, notices say %d", s.Dropped(), lost)
	}
}

func TestHTTPRead_logCacheShape(t *testing.T) {
	s := New(Config{})
	defer s.Close()
	s.Emit(line("app-guid", 0, t0))
	errLine := line("app-guid", 1, t0.Add(time.Second))
	errLine.Type, errLine.InstanceID = "ERR", "1"
	s.Emit(errLine)
	mux := http.NewServeMux()
	s.Routes(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// The request cf logs --recent sends.
	resp, err := http.Get(srv.URL + "/api/v1/read/app-guid?descending=true&envelope_types=LOG&limit=1000&start_time=-6795364578871345152")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Envelopes struct {
			Batch []map[string]any
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	b := body.Envelopes.Batch
	if len(b) != 2 {
		t.Fatalf("batch = %v", b)
	}
	first := b[0]
	if first["timestamp"] != fmt.Sprint(t0.Add(time.Second).UnixNano()) {
		t.Errorf("timestamp = %#v, want a string of ns", first["timestamp"])
	}
	if first["source_id"] != "app-guid" || first["instance_id"] != "1" {
		t.Errorf("ids = %v %v", first["source_id"], first["instance_id"])
	}
	if tags := first["tags"].(map[string]any); tags["source_type"] != "APP/PROC/WEB" {
		t.Errorf("tags = %v", tags)
	}
	log := first["log"].(map[string]any)
	payload, err := base64.StdEncoding.DecodeString(log["payload"].(string))
	if err != nil || string(payload) != "line 1" || log["type"] != "ERR" {
		t.Errorf("log = %v (%q, %v)", log, payload, err)
	}

	// The walk's read (start_time = last + 1 ns) and an empty batch.
	for q, wantN := range map[string]int{
		"envelope_types=LOG&start_time=" + fmt.Sprint(t0.UnixNano()+1): 1,
		"envelope_types=GAUGE": 0,
	} {
		resp, err := http.Get(srv.URL + "/api/v1/read/app-guid?" + q)
		if err != nil {
			t.Fatal(err)
		}
		var raw map[string]map[string][]any
		if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		batch, ok := raw["envelopes"]["batch"]
		if !ok || batch == nil || len(batch) != wantN {
			t.Errorf("%s: batch = %#v, want %d envelopes (never null)", q, batch, wantN)
		}
	}

	resp, err = http.Get(srv.URL + "/api/v1/read/app-guid?start_time=abc")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad start_time: status %d", resp.StatusCode)
	}
}

func TestHTTPInfo(t *testing.T) {
	s := New(Config{})
	defer s.Close()
	rec := httptest.NewRecorder()
	mux := http.NewServeMux()
	s.Routes(mux)
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/info", nil))
	var info map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &info); err != nil || info["version"] != "3.0.0" || info["vm_uptime"] == "" {
		t.Errorf("info = %s (%v)", rec.Body.String(), err)
	}
}

// sseReader reads server-sent events from a stream.
type sseReader struct {
	t  *testing.T
	sc *bufio.Scanner
}

// next returns the next event's data or comment line.
func (r *sseReader) next() string {
	r.t.Helper()
	for r.sc.Scan() {
		l := r.sc.Text()
		if strings.HasPrefix(l, "data: ") || strings.HasPrefix(l, ": ") {
			return l
		}
	}
	r.t.Fatalf("stream ended: %v", r.sc.Err())
	return ""
}

func (r *sseReader) nextEvent() streamEvent {
	r.t.Helper()
	for {
		l := r.next()
		if strings.HasPrefix(l, "data: ") {
			var ev streamEvent
			if err := json.Unmarshal([]byte(strings.TrimPrefix(l, "data: ")), &ev); err != nil {
				r.t.Fatalf("event %q: %v", l, err)
			}
			return ev
		}
	}
}

func openStream(t *testing.T, s *Store, query string) *sseReader {
	t.Helper()
	mux := http.NewServeMux()
	s.Routes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/pando/v1/logs/app/stream?"+query, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	r := &sseReader{t: t, sc: bufio.NewScanner(resp.Body)}
	if l := r.next(); l != ": stream open" {
		t.Fatalf("first line %q", l)
	}
	return r
}

func TestStream_sendsLinesEmittedAfterConnect(t *testing.T) {
	s := New(Config{})
	defer s.Close()
	s.Emit(line("app", 0, time.Time{})) // before connect: not sent without start_time
	r := openStream(t, s, "source_types=STG,APP/PROC/WEB")
	rtr := line("app", 1, time.Time{})
	rtr.SourceType = pando.LogSourceRouter
	s.Emit(rtr) // filtered out
	stg := line("app", 2, time.Time{})
	stg.SourceType = pando.LogSourceStaging
	s.Emit(stg)
	ev := r.nextEvent()
	if ev.Payload != "line 2" || ev.SourceType != "STG" || ev.Type != "OUT" || ev.InstanceID != "0" || ev.Timestamp == 0 {
		t.Errorf("event = %+v", ev)
	}
}

func TestStream_replaysFromStartTimeWithoutDuplicates(t *testing.T) {
	s := New(Config{})
	defer s.Close()
	for i := range 3 {
		s.Emit(line("app", i, t0.Add(time.Duration(i)*time.Second)))
	}
	r := openStream(t, s, fmt.Sprintf("start_time=%d", t0.Add(time.Second).UnixNano()))
	s.Emit(line("app", 3, time.Time{}))
	for _, want := range []string{"line 1", "line 2", "line 3"} {
		if ev := r.nextEvent(); ev.Payload != want {
			t.Fatalf("got %q, want %q", ev.Payload, want)
		}
	}
}

func TestStream_heartbeats(t *testing.T) {
	s := New(Config{Heartbeat: 20 * time.Millisecond})
	defer s.Close()
	r := openStream(t, s, "")
	if l := r.next(); l != ": heartbeat" {
		t.Errorf("got %q, want a heartbeat comment", l)
	}
}

func TestHTTPRead_tagsNameTheAppOriginAndInstance(t *testing.T) {
	var asked []string
	s := New(Config{AppName: func(_ context.Context, id string) string {
		asked = append(asked, id)
		return "myapp"
	}})
	defer s.Close()
	app := line("app-guid", 0, t0)
	app.InstanceID = "2"
	api := line("app-guid", 1, t0.Add(time.Second))
	api.SourceType = pando.LogSourceAPI
	rtr := line("app-guid", 2, t0.Add(2*time.Second))
	rtr.SourceType = pando.LogSourceRouter
	for _, e := range []pando.LogEnvelope{app, api, rtr} {
		s.Emit(e)
	}
	mux := http.NewServeMux()
	s.Routes(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/v1/read/app-guid?envelope_types=LOG&start_time=-6795364578871345152")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Envelopes struct {
			Batch []struct {
				Tags map[string]string
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	want := []map[string]string{
		{"source_type": "APP/PROC/WEB", "origin": "rep", "instance_id": "2", "app_id": "app-guid", "app_name": "myapp"},
		{"source_type": "API", "origin": "cloud_controller", "instance_id": "0", "app_id": "app-guid", "app_name": "myapp"},
		{"source_type": "RTR", "origin": "gorouter", "instance_id": "0", "app_id": "app-guid", "app_name": "myapp"},
	}
	if len(body.Envelopes.Batch) != len(want) {
		t.Fatalf("batch = %v", body.Envelopes.Batch)
	}
	for i, e := range body.Envelopes.Batch {
		if !maps.Equal(e.Tags, want[i]) {
			t.Errorf("envelope %d tags = %v, want %v", i, e.Tags, want[i])
		}
	}
	if len(asked) != 1 {
		t.Errorf("app name looked up %d times for one read, want once", len(asked))
	}
}

// The newest line of some source types is one envelope away: the CLI's
// follower asks for it once the watched staging or task has ended.
func TestHTTPRead_sourceTypesSelectTheNewestOfThoseTypes(t *testing.T) {
	s := New(Config{})
	defer s.Close()
	for i, st := range []string{"STG", "STG", "APP/PROC/WEB", "APP/TASK/t1", "RTR", "APP/TASK/t1x"} {
		e := line("app-guid", i, t0.Add(time.Duration(i)*time.Second))
		e.SourceType = st
		s.Emit(e)
	}
	mux := http.NewServeMux()
	s.Routes(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for q, want := range map[string]string{
		"source_types=STG":                           "[line 1]",
		"source_types=APP":                           "[line 5]",
		"source_types=APP/TASK/t1":                   "[line 3]",
		"source_types=CELL,STG":                      "[line 1]",
		"source_types=APP/PROC/WEB&source_types=STG": "[line 2]",
		"source_types=CELL":                          "[]",
		"":                                           "[line 5]",
	} {
		resp, err := http.Get(srv.URL + "/api/v1/read/app-guid?descending=true&limit=1&envelope_types=LOG&" + q)
		if err != nil {
			t.Fatal(err)
		}
		var body readResponse
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range body.Envelopes.Batch {
			got = append(got, string(e.Log.Payload))
		}
		if fmt.Sprint(got) != want {
			t.Errorf("%q: got %v, want %s", q, got, want)
		}
	}
}
