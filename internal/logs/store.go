// Package logs is Pando's log store: a bounded ring buffer of recent log
// lines per source (app guid), live subscribers fed without ever blocking
// the emitter, and the log-cache-compatible HTTP API the cf CLI reads plus
// Pando's server-sent-events stream. Loss is never silent: a subscriber
// that falls behind is told how many lines it missed.
package logs

import (
	"container/list"
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/pandoplatform/pando"
)

// Defaults.
const (
	DefaultPerSourceCapacity = 2000
	DefaultPerSourceMaxBytes = 8 << 20
	DefaultMaxSources        = 10000
	DefaultMaxBytes          = 256 << 20
	DefaultMaxPayload        = 64 << 10
	DefaultSubscriberBuffer  = 1024
	DefaultHeartbeat         = 15 * time.Second

	DefaultReadLimit = 100
	MaxReadLimit     = 1000
)

// SourceTypeLoss tags the synthetic line that tells a subscriber how many
// lines it missed (loggregator's own source type for such notices).
const SourceTypeLoss = "LGR"

// envelopeOverhead approximates the memory of an envelope beside its
// payload, for the byte bounds.
const envelopeOverhead = 96

// Config configures the store.
type Config struct {
	PerSourceCapacity int   // envelopes kept per source; default 2000
	PerSourceMaxBytes int   // bytes kept per source; default 8 MiB
	MaxSources        int   // sources kept, least recently written evicted first; default 10000
	MaxBytes          int64 // bytes kept in all; default 256 MiB
	MaxPayload        int   // longer payloads are truncated; default 64 KiB
	SubscriberBuffer  int   // lines queued per subscriber before dropping; default 1024
	Heartbeat         time.Duration
	// AppName, when set, names the app a source (an app GUID) belongs
	// to, for the log-cache API's app_name tag; "" when unknown.
	AppName func(ctx context.Context, sourceID string) string
	Logger  *slog.Logger
	Now     func() time.Time
}

// Store keeps recent log lines and fans them out to subscribers.
type Store struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	start time.Time

	mu      sync.Mutex
	sources map[string]*source
	lru     *list.List // of *source, most recently written first
	bytes   int64
	// subs is copy-on-write: Emit reads the slice under mu and never sees
	// it change underneath.
	subs map[string][]*subscriber

	dropped atomic.Uint64

	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// source is one source id's ring buffer, oldest first. Timestamps in it
// strictly increase (see Emit).
type source struct {
	id     string
	elem   *list.Element
	ring   []pando.LogEnvelope
	head   int // index of the oldest entry
	n      int
	bytes  int
	lastTS int64
}

func (s *source) at(i int) *pando.LogEnvelope { return &s.ring[(s.head+i)%len(s.ring)] }

func (s *source) dropOldest() int {
	e := s.at(0)
	sz := envelopeSize(e)
	*e = pando.LogEnvelope{}
	s.head = (s.head + 1) % len(s.ring)
	s.n--
	s.bytes -= sz
	return sz
}

func envelopeSize(e *pando.LogEnvelope) int {
	return len(e.Payload) + len(e.SourceID) + len(e.InstanceID) + len(e.SourceType) + envelopeOverhead
}

// New returns an empty store.
func New(cfg Config) *Store {
	if cfg.PerSourceCapacity <= 0 {
		cfg.PerSourceCapacity = DefaultPerSourceCapacity
	}
	if cfg.PerSourceMaxBytes <= 0 {
		cfg.PerSourceMaxBytes = DefaultPerSourceMaxBytes
	}
	if cfg.MaxSources <= 0 {
		cfg.MaxSources = DefaultMaxSources
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = DefaultMaxPayload
	}
	if int64(cfg.PerSourceMaxBytes) > cfg.MaxBytes {
		cfg.PerSourceMaxBytes = int(cfg.MaxBytes)
	}
	if cfg.MaxPayload+envelopeOverhead > cfg.PerSourceMaxBytes {
		cfg.MaxPayload = cfg.PerSourceMaxBytes / 2
	}
	if cfg.SubscriberBuffer <= 0 {
		cfg.SubscriberBuffer = DefaultSubscriberBuffer
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Store{
		cfg:     cfg,
		log:     cfg.Logger,
		now:     cfg.Now,
		start:   cfg.Now(),
		sources: map[string]*source{},
		lru:     list.New(),
		subs:    map[string][]*subscriber{},
		done:    make(chan struct{}),
	}
}

// Close ends every subscription and waits for their goroutines.
func (s *Store) Close() {
	s.closeOnce.Do(func() { close(s.done) })
	s.wg.Wait()
}

// Dropped is the number of lines dropped for slow subscribers so far.
func (s *Store) Dropped() uint64 { return s.dropped.Load() }

// Emit stores e and hands it to live subscribers. It never blocks on a
// subscriber. The store keeps its own copy of the payload, truncated to
// MaxPayload; a Type other than "ERR" is stored as "OUT" (log-cache
// clients accept nothing else). Timestamps of one source are made strictly
// increasing (a line not newer than the previous one is stamped 1 ns after
// it) so readers that resume from the last timestamp they saw, as the cf
// CLI does, never miss or repeat a line.
func (s *Store) Emit(e pando.LogEnvelope) {
	if e.SourceID == "" {
		return
	}
	e.Payload = truncate(e.Payload, s.cfg.MaxPayload)
	if e.Type != "ERR" {
		e.Type = "OUT"
	}
	if e.Timestamp.IsZero() {
		e.Timestamp = s.now()
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	src := s.sourceLocked(e.SourceID)
	ts := e.Timestamp.UnixNano()
	if ts <= src.lastTS {
		ts = src.lastTS + 1
		e.Timestamp = time.Unix(0, ts)
	}
	src.lastTS = ts

	size := envelopeSize(&e)
	for src.n > 0 && (src.n == len(src.ring) || src.bytes+size > s.cfg.PerSourceMaxBytes) {
		s.bytes -= int64(src.dropOldest())
	}
	*src.at(src.n) = e
	src.n++
	src.bytes += size
	s.bytes += int64(size)
	for s.bytes > s.cfg.MaxBytes && s.lru.Len() > 1 {
		s.evictLocked(s.lru.Back().Value.(*source))
	}

	for _, sub := range s.subs[e.SourceID] {
		sub.offer(e)
	}
}

// sourceLocked returns the source, created if needed, marked most recent.
func (s *Store) sourceLocked(id string) *source {
	if src, ok := s.sources[id]; ok {
		s.lru.MoveToFront(src.elem)
		return src
	}
	for len(s.sources) >= s.cfg.MaxSources {
		s.evictLocked(s.lru.Back().Value.(*source))
	}
	src := &source{id: id, ring: make([]pando.LogEnvelope, s.cfg.PerSourceCapacity)}
	src.elem = s.lru.PushFront(src)
	s.sources[id] = src
	return src
}

func (s *Store) evictLocked(src *source) {
	s.log.Debug("evicting log source", "source_id", src.id, "lines", src.n)
	s.lru.Remove(src.elem)
	delete(s.sources, src.id)
	s.bytes -= int64(src.bytes)
}

// truncate copies p, cut to at most max bytes on a UTF-8 boundary.
func truncate(p []byte, max int) []byte {
	if len(p) > max {
		cut := max
		for cut > 0 && cut > max-utf8.UTFMax && !utf8.RuneStart(p[cut]) {
			cut--
		}
		p = p[:cut]
	}
	return slices.Clone(p)
}

// ReadQuery selects envelopes of one source.
type ReadQuery struct {
	// Start and End bound the timestamps, both inclusive; zero is unbounded.
	Start, End time.Time
	// EnvelopeTypes as log-cache names them; only LOG envelopes are kept,
	// so a list without "LOG" selects nothing. Empty means all.
	EnvelopeTypes []string
	// SourceTypes keeps only these source types; "APP" also matches
	// "APP/PROC/WEB". Empty means all.
	SourceTypes []string
	// Limit is the most envelopes returned: default 100, at most 1000.
	Limit int
	// Descending returns the newest first (the newest Limit lines);
	// otherwise the oldest first from Start.
	Descending bool
}

// Read returns the stored envelopes that match q. Callers must not modify
// the returned payloads.
func (s *Store) Read(sourceID string, q ReadQuery) []pando.LogEnvelope {
	switch {
	case q.Limit <= 0:
		q.Limit = DefaultReadLimit
	case q.Limit > MaxReadLimit:
		q.Limit = MaxReadLimit
	}
	return s.read(sourceID, q)
}

// read is Read without the limit's bounds (the stream replays a whole
// ring).
func (s *Store) read(sourceID string, q ReadQuery) []pando.LogEnvelope {
	if len(q.EnvelopeTypes) > 0 && !slices.ContainsFunc(q.EnvelopeTypes, func(t string) bool { return strings.EqualFold(t, "LOG") }) {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	src, ok := s.sources[sourceID]
	if !ok {
		return nil
	}
	var start, end int64 = minInt64, maxInt64
	if !q.Start.IsZero() {
		start = q.Start.UnixNano()
	}
	if !q.End.IsZero() {
		end = q.End.UnixNano()
	}
	out := make([]pando.LogEnvelope, 0, min(q.Limit, src.n))
	for k := 0; k < src.n && len(out) < q.Limit; k++ {
		i := k
		if q.Descending {
			i = src.n - 1 - k
		}
		e := src.at(i)
		ts := e.Timestamp.UnixNano()
		if ts < start || ts > end || !pando.LogSourceSelected(q.SourceTypes, e.SourceType) {
			continue
		}
		out = append(out, *e)
	}
	return out
}

const (
	minInt64 = -1 << 63
	maxInt64 = 1<<63 - 1
)

// Subscribe returns the lines of sourceID emitted from now on (only these
// source types, when given). The channel is closed when ctx ends or the
// store closes. A subscriber that does not keep up loses lines, and then
// receives a line of source type SourceTypeLoss saying how many.
func (s *Store) Subscribe(ctx context.Context, sourceID string, sourceTypes []string) <-chan pando.LogEnvelope {
	sub := &subscriber{
		store:    s,
		sourceID: sourceID,
		types:    slices.Clone(sourceTypes),
		limit:    s.cfg.SubscriberBuffer,
		wake:     make(chan struct{}, 1),
		out:      make(chan pando.LogEnvelope),
	}
	s.mu.Lock()
	s.subs[sourceID] = append(slices.Clip(s.subs[sourceID]), sub)
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.unsubscribe(sub)
		sub.pump(ctx)
	}()
	return sub.out
}

func (s *Store) unsubscribe(sub *subscriber) {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.subs[sub.sourceID]
	i := slices.Index(list, sub)
	if i < 0 {
		return
	}
	if len(list) == 1 {
		delete(s.subs, sub.sourceID)
		return
	}
	// Copy, never modify in place: Emit may hold the old slice.
	s.subs[sub.sourceID] = slices.Delete(slices.Clone(list), i, i+1)
}

// subscriber queues lines for one live reader.
type subscriber struct {
	store    *Store
	sourceID string
	types    []string
	limit    int
	wake     chan struct{}
	out      chan pando.LogEnvelope

	mu      sync.Mutex
	queue   []pando.LogEnvelope
	dropped int
}

// offer queues e, or counts it as dropped when the queue is full. It never
// blocks for longer than the subscriber's mutex is held (a slice swap).
func (sub *subscriber) offer(e pando.LogEnvelope) {
	if !pando.LogSourceSelected(sub.types, e.SourceType) {
		return
	}
	sub.mu.Lock()
	if len(sub.queue) >= sub.limit {
		sub.dropped++
		sub.mu.Unlock()
		sub.store.dropped.Add(1)
	} else {
		sub.queue = append(sub.queue, e)
		sub.mu.Unlock()
	}
	select {
	case sub.wake <- struct{}{}:
	default:
	}
}

// pump moves queued lines to the reader until ctx ends.
func (sub *subscriber) pump(ctx context.Context) {
	defer close(sub.out)
	var spare []pando.LogEnvelope
	for {
		select {
		case <-ctx.Done():
			return
		case <-sub.store.done:
			return
		case <-sub.wake:
		}
		sub.mu.Lock()
		batch, dropped := sub.queue, sub.dropped
		sub.queue, sub.dropped = spare[:0], 0
		sub.mu.Unlock()
		for i := range batch {
			if !sub.send(ctx, batch[i]) {
				return
			}
			batch[i] = pando.LogEnvelope{}
		}
		// The dropped lines came after the ones just sent: the queue was
		// full when they arrived.
		if dropped > 0 && !sub.send(ctx, sub.lossNotice(dropped)) {
			return
		}
		spare = batch
	}
}

func (sub *subscriber) send(ctx context.Context, e pando.LogEnvelope) bool {
	select {
	case sub.out <- e:
		return true
	case <-ctx.Done():
		return false
	case <-sub.store.done:
		return false
	}
}

func (sub *subscriber) lossNotice(n int) pando.LogEnvelope {
	line := "log lines dropped (slow consumer)"
	if n == 1 {
		line = "log line dropped (slow consumer)"
	}
	return pando.LogEnvelope{
		Timestamp:  sub.store.now(),
		SourceID:   sub.sourceID,
		SourceType: SourceTypeLoss,
		Type:       "ERR",
		Payload:    fmt.Appendf(nil, "%d %s", n, line),
	}
}
