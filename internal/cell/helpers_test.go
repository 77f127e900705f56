package cell

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/container"
)

// memBlobs is a map-based pando.Blobstore.
type memBlobs struct {
	mu    sync.Mutex
	blobs map[string][]byte
}

func newMemBlobs() *memBlobs { return &memBlobs{blobs: map[string][]byte{}} }

func (m *memBlobs) Put(ctx context.Context, key string, r io.Reader) (pando.BlobInfo, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return pando.BlobInfo{}, err
	}
	m.mu.Lock()
	m.blobs[key] = b
	m.mu.Unlock()
	sum, sum1 := sha256.Sum256(b), sha1.Sum(b)
	return pando.BlobInfo{Size: int64(len(b)), SHA1: hex.EncodeToString(sum1[:]), SHA256: hex.EncodeToString(sum[:])}, nil
}

func (m *memBlobs) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.blobs[key]
	if !ok {
		return nil, pando.Errorf(pando.ENotFound, "blob %s not found", key)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (m *memBlobs) Exists(ctx context.Context, key string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.blobs[key]
	return ok, nil
}

func (m *memBlobs) Delete(ctx context.Context, key string) error {
	m.mu.Lock()
	delete(m.blobs, key)
	m.mu.Unlock()
	return nil
}

func (m *memBlobs) get(key string) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.blobs[key]
	return b, ok
}

// event is one report a cell made.
type event struct {
	kind   string // "changed", "removed", "task"
	actual pando.ActualLRP
	guid   string // removed instance
	task   pando.Task
}

// recorder is a pando.CellReporter that keeps every report and lets a test
// wait for one.
type recorder struct {
	mu     sync.Mutex
	events []event
	notify chan struct{}
}

func newRecorder() *recorder { return &recorder{notify: make(chan struct{})} }

func (r *recorder) add(e event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	close(r.notify)
	r.notify = make(chan struct{})
	r.mu.Unlock()
}

func (r *recorder) ActualLRPChanged(ctx context.Context, a pando.ActualLRP) error {
	r.add(event{kind: "changed", actual: a})
	return nil
}

func (r *recorder) ActualLRPRemoved(ctx context.Context, processGUID, instanceGUID string) error {
	r.add(event{kind: "removed", guid: instanceGUID})
	return nil
}

func (r *recorder) TaskCompleted(ctx context.Context, t pando.Task) error {
	r.add(event{kind: "task", task: t})
	return nil
}

// wait returns the first event matching match, waiting up to d.
func (r *recorder) wait(t *testing.T, d time.Duration, what string, match func(event) bool) event {
	t.Helper()
	deadline := time.After(d)
	for {
		r.mu.Lock()
		for _, e := range r.events {
			if match(e) {
				r.mu.Unlock()
				return e
			}
		}
		ch := r.notify
		r.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no %s within %s; reports: %s", what, d, r.String())
		}
	}
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, e := range r.events {
		switch e.kind {
		case "changed":
			fmt.Fprintf(&b, "\n  %s %s %+v", e.actual.InstanceGUID, e.actual.State, e.actual.Crash)
		case "removed":
			fmt.Fprintf(&b, "\n  removed %s", e.guid)
		case "task":
			fmt.Fprintf(&b, "\n  task %s failed=%v code=%d %q %+v", e.task.GUID, e.task.Failed, e.task.FailureCode, e.task.FailureReason, e.task.Failure)
		}
	}
	return b.String()
}

func (r *recorder) states(guid string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if e.kind == "changed" && e.actual.InstanceGUID == guid {
			out = append(out, e.actual.State)
		}
	}
	return out
}

func isState(guid, state string) func(event) bool {
	return func(e event) bool {
		return e.kind == "changed" && e.actual.InstanceGUID == guid && e.actual.State == state
	}
}

func isRemoved(guid string) func(event) bool {
	return func(e event) bool { return e.kind == "removed" && e.guid == guid }
}

func isTask(guid string) func(event) bool {
	return func(e event) bool { return e.kind == "task" && e.task.GUID == guid }
}

// sink records log envelopes.
type sink struct {
	mu     sync.Mutex
	lines  []pando.LogEnvelope
	notify chan struct{}
}

func newSink() *sink { return &sink{notify: make(chan struct{})} }

func (s *sink) Emit(e pando.LogEnvelope) {
	s.mu.Lock()
	s.lines = append(s.lines, e)
	close(s.notify)
	s.notify = make(chan struct{})
	s.mu.Unlock()
}

// wait returns the first line of sourceType containing text.
func (s *sink) wait(t *testing.T, d time.Duration, sourceType, text string) pando.LogEnvelope {
	t.Helper()
	deadline := time.After(d)
	for {
		s.mu.Lock()
		for _, e := range s.lines {
			if e.SourceType == sourceType && strings.Contains(string(e.Payload), text) {
				s.mu.Unlock()
				return e
			}
		}
		ch := s.notify
		s.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no %s log line containing %q within %s; lines:\n%s", sourceType, text, d, s.dump())
		}
	}
}

// noCFWords fails the test if a line of sourceType holds CF's wording of
// a failure: cells report kinds, the API alone words them.
func (s *sink) noCFWords(t *testing.T, sourceType string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.lines {
		p := string(e.Payload)
		if e.SourceType != sourceType {
			continue
		}
		for _, w := range []string{"StagingError", "Staging error", "NoAppDetectedError", "BuildpackCompileFailed",
			"BuildpackReleaseFailed", "StagingTimeExpired"} {
			if strings.Contains(p, w) {
				t.Errorf("the cell logged CF's words %q: %q", w, p)
			}
		}
	}
}

func (s *sink) dump() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, e := range s.lines {
		fmt.Fprintf(&b, "  [%s/%s] %s %s\n", e.SourceType, e.InstanceID, e.Type, e.Payload)
	}
	return b.String()
}

// trackingBackend records which containers were created and destroyed.
type trackingBackend struct {
	container.Backend
	mu   sync.Mutex
	live map[string]bool
	// dialErr, when set, is what every Dial into a container returns, as
	// when the cell is out of fds; failedDials counts those dials.
	dialErr     atomic.Pointer[error]
	failedDials atomic.Int64
	// prepares and releases count, by container id, the backend's
	// Prepare calls that succeeded and their releases.
	prepares, releases map[string]int
	// stops are the containers' Stop calls, as they returned.
	stops []stopCall
}

// stopCall is one Stop of a container: the grace it got, what Stop
// returned and, when it returned nil, how the process ended.
type stopCall struct {
	id     string
	grace  time.Duration
	err    error
	status container.ExitStatus
}

// stopCalls returns the Stop calls so far.
func (b *trackingBackend) stopCalls() []stopCall {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.stops)
}

// Prepare forwards to the backend's (the runc backend has one), counting.
func (b *trackingBackend) Prepare(ctx context.Context, id string) (func(), error) {
	pr, ok := b.Backend.(preparer)
	if !ok {
		return nil, errors.New("the backend prepares nothing")
	}
	release, err := pr.Prepare(ctx, id)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.prepares[id]++
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		b.releases[id]++
		b.mu.Unlock()
		release()
	}, nil
}

// preparedAndReleased reports how often container id was prepared and
// its preparation given back.
func (b *trackingBackend) preparedAndReleased(id string) (int, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.prepares[id], b.releases[id]
}

func newTrackingBackend(b container.Backend) *trackingBackend {
	return &trackingBackend{Backend: b, live: map[string]bool{}, prepares: map[string]int{}, releases: map[string]int{}}
}

func (b *trackingBackend) Run(ctx context.Context, spec container.Spec) (container.Container, error) {
	c, err := b.Backend.Run(ctx, spec)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.live[spec.ID] = true
	b.mu.Unlock()
	return &trackedContainer{Container: c, b: b}, nil
}

func (b *trackingBackend) liveIDs() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for id := range b.live {
		out = append(out, id)
	}
	return out
}

type trackedContainer struct {
	container.Container
	b *trackingBackend
}

func (c *trackedContainer) Dial(ctx context.Context, port int) (net.Conn, error) {
	if err := c.b.dialErr.Load(); err != nil {
		c.b.failedDials.Add(1)
		return nil, *err
	}
	return c.Container.Dial(ctx, port)
}

// Listening passes through what the runc container's processes listen on.
func (c *trackedContainer) Listening(ctx context.Context) ([]netip.AddrPort, error) {
	l, ok := c.Container.(listeningReporter)
	if !ok {
		return nil, errors.New("container cannot list its listeners")
	}
	return l.Listening(ctx)
}

// Stop records the call and, once the process has exited (Stop returns
// then), its exit status.
func (c *trackedContainer) Stop(ctx context.Context, grace time.Duration) error {
	err := c.Container.Stop(ctx, grace)
	call := stopCall{id: c.ID(), grace: grace, err: err}
	if err == nil {
		call.status, call.err = c.Container.Wait(ctx)
	}
	c.b.mu.Lock()
	c.b.stops = append(c.b.stops, call)
	c.b.mu.Unlock()
	return err
}

func (c *trackedContainer) Destroy(ctx context.Context) error {
	err := c.Container.Destroy(ctx)
	if err == nil {
		c.b.mu.Lock()
		delete(c.b.live, c.ID())
		c.b.mu.Unlock()
	}
	return err
}

// eventually polls cond until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true within %s", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wantCrash fails the test unless a reports a crash exactly as want.
func wantCrash(t *testing.T, a pando.ActualLRP, want pando.Failure) {
	t.Helper()
	if a.Crash == nil || *a.Crash != want {
		t.Errorf("crash %+v, want %+v", a.Crash, want)
	}
	if a.CrashReason != "" {
		t.Errorf("crash reason %q: a cell reports what happened, the API words it", a.CrashReason)
	}
}

// wantTaskFailure fails the test unless task failed exactly as want.
func wantTaskFailure(t *testing.T, task pando.Task, want pando.Failure) {
	t.Helper()
	if !task.Failed || task.Failure == nil || *task.Failure != want {
		t.Errorf("failed=%v failure %+v, want %+v", task.Failed, task.Failure, want)
	}
	if task.FailureReason != "" {
		t.Errorf("failure reason %q: a cell reports what happened, the API words it", task.FailureReason)
	}
}
