package cellapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/pandoplatform/pando"
)

// Log shipping bounds.
const (
	// DefaultLogQueue is how many lines a cell holds for the server; past
	// it lines are dropped and counted.
	DefaultLogQueue = 16384
	// maxLogBatch is the most lines sent in one request.
	maxLogBatch = 2048
)

// LogShipper is a joined cell's (or a separate router's) pando.LogSink:
// it queues lines (bounded) and streams them to the server's log store in
// batches, as fast as the server takes them. Lines that find the queue
// full are dropped; each app is then told how many it lost, in a line of
// its own.
type LogShipper struct {
	send LogSender
	// who and source name the shipper in loss notices: "the cell", CELL.
	who    string
	source string
	log    *slog.Logger

	mu      sync.Mutex
	queue   []pando.LogEnvelope
	max     int
	dropped map[string]int // by app
	wake    chan struct{}
	// queued counts the lines ever queued, taken those ever taken from
	// the queue and sent those delivered (a batch's end in taken order);
	// sentCh is closed when sent grows.
	queued, taken, sent uint64
	sentCh              chan struct{}
}

var _ pando.LogSink = (*LogShipper)(nil)

// LogSender delivers a batch of lines to the server.
type LogSender func(ctx context.Context, batch []pando.LogEnvelope) error

// NewLogShipper ships through c; queue bounds the lines held (default
// DefaultLogQueue). Run it.
func (c *ServerClient) NewLogShipper(queue int) *LogShipper {
	return NewLogShipper(func(ctx context.Context, batch []pando.LogEnvelope) error {
		return PostLogs(ctx, c.hc, c.baseURL()+logsPath, nil, batch)
	}, queue, "the cell", pando.LogSourceCell, c.log)
}

// NewLogShipper ships through send; queue bounds the lines held (default
// DefaultLogQueue); who ("the router") and source (its LogSource) sign
// the notices of lines lost. Run it.
func NewLogShipper(send LogSender, queue int, who, source string, log *slog.Logger) *LogShipper {
	if queue <= 0 {
		queue = DefaultLogQueue
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &LogShipper{send: send, who: who, source: source, log: log, max: queue, dropped: map[string]int{},
		wake: make(chan struct{}, 1), sentCh: make(chan struct{})}
}

// Emit queues a line; it never blocks.
func (s *LogShipper) Emit(e pando.LogEnvelope) {
	s.mu.Lock()
	if len(s.queue) >= s.max {
		s.dropped[e.SourceID]++
		s.mu.Unlock()
		return
	}
	s.queue = append(s.queue, e)
	s.queued++
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Dropped is how many lines of app were dropped and not yet reported.
func (s *LogShipper) Dropped(app string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped[app]
}

// Sync returns once every line queued before the call has been
// delivered to the server, or when ctx ends. Run does the sending.
func (s *LogShipper) Sync(ctx context.Context) error {
	s.mu.Lock()
	target := s.queued
	for s.sent < target {
		ch := s.sentCh
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("log lines not delivered: %w", ctx.Err())
		}
		s.mu.Lock()
	}
	s.mu.Unlock()
	return nil
}

// delivered records that the lines taken up to end reached the server.
func (s *LogShipper) delivered(end uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if end > s.sent {
		s.sent = end
		close(s.sentCh)
		s.sentCh = make(chan struct{})
	}
}

// take removes up to maxLogBatch queued lines, with a notice first for
// each app that lost lines since the last one; end is the count of lines
// taken from the queue with this batch.
func (s *LogShipper) take() (batch []pando.LogEnvelope, end uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []pando.LogEnvelope
	for app, n := range s.dropped {
		out = append(out, pando.LogEnvelope{Timestamp: time.Now(), SourceID: app, InstanceID: "0",
			SourceType: s.source, Type: "ERR",
			Payload: fmt.Appendf(nil, "%d log lines lost: %s could not send them to the log store fast enough", n, s.who)})
		delete(s.dropped, app)
	}
	n := min(len(s.queue), maxLogBatch)
	out = append(out, s.queue[:n]...)
	s.queue = append(s.queue[:0:0], s.queue[n:]...)
	s.taken += uint64(n)
	return out, s.taken
}

// Run sends queued lines until ctx ends, then what is left for a moment.
func (s *LogShipper) Run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	var (
		batch []pando.LogEnvelope
		end   uint64
	)
	for {
		if len(batch) == 0 {
			batch, end = s.take()
		}
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-s.wake:
				continue
			}
		}
		if err := s.send(ctx, batch); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("send log lines to the server (retrying)", "lines", len(batch), "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		batch = nil
		s.delivered(end)
	}
}

// PostLogs sends batch to url as newline-delimited LogEnvelope JSON, with
// header's fields, through hc.
func PostLogs(ctx context.Context, hc *http.Client, url string, header http.Header, batch []pando.LogEnvelope) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, e := range batch {
		if err := enc.Encode(e); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", url, &buf)
	if err != nil {
		return err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return errorFrom("send log lines", resp)
	}
	return nil
}

// ReadLogs reads newline-delimited LogEnvelope JSON (PostLogs's) from
// body, each line at most 256 KiB, and passes each line to emit, which
// says whether it took it; refused counts the others.
func ReadLogs(body io.Reader, emit func(pando.LogEnvelope) bool) (refused int, err error) {
	br := bufio.NewReaderSize(body, 64<<10)
	for {
		line, err := readLine(br, maxLogLine)
		if len(line) > 0 {
			var e pando.LogEnvelope
			if jerr := json.Unmarshal(line, &e); jerr != nil {
				return refused, pando.Errorf(pando.EBadRequest, "log line: %v", jerr)
			}
			if !emit(e) {
				refused++
			}
		}
		if errors.Is(err, io.EOF) {
			return refused, nil
		}
		if err != nil {
			return refused, pando.Errorf(pando.EBadRequest, "log stream: %v", err)
		}
	}
}

// Flush sends what is queued now, once, until ctx ends (at shutdown,
// while Run may still be going).
func (s *LogShipper) Flush(ctx context.Context) error {
	for {
		batch, end := s.take()
		if len(batch) == 0 {
			return nil
		}
		if err := s.send(ctx, batch); err != nil {
			return err
		}
		s.delivered(end)
	}
}
