package runtimeapi

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
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/wireerr"
)

// Client defaults.
const (
	// DefaultStreamIdleTimeout is how long an event stream may stay silent
	// (no event, no heartbeat) before the client reconnects.
	DefaultStreamIdleTimeout = 3 * DefaultHeartbeat
	// maxEventLine bounds one event on the stream.
	maxEventLine = 16 << 20
	// maxErrorBody bounds an error answer.
	maxErrorBody = 64 << 10
)

// ClientConfig configures a Client.
type ClientConfig struct {
	// HTTPClient makes the requests (default: a client without timeouts,
	// as event streams are long-lived; calls are bounded by their ctx).
	// Its transport is where client certificates go.
	HTTPClient *http.Client
	// StreamIdleTimeout: see DefaultStreamIdleTimeout.
	StreamIdleTimeout time.Duration
	Logger            *slog.Logger
}

// Client implements pando.Runtime against a Handler.
type Client struct {
	base *url.URL
	hc   *http.Client
	idle time.Duration
	log  *slog.Logger
}

var _ pando.Runtime = (*Client)(nil)

// NewClient returns a client of the runtime API at baseURL (the URL the
// Handler is mounted at, e.g. "http://127.0.0.1:9023").
func NewClient(baseURL string, cfg ClientConfig) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("runtime API URL %q: want http(s)://HOST[:PORT]", baseURL)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.StreamIdleTimeout <= 0 {
		cfg.StreamIdleTimeout = DefaultStreamIdleTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Client{base: u, hc: cfg.HTTPClient, idle: cfg.StreamIdleTimeout, log: cfg.Logger}, nil
}

func (c *Client) DesireLRP(ctx context.Context, lrp pando.DesiredLRP) error {
	return c.call(ctx, "POST", "/v1/desired_lrps", nil, lrp, nil)
}

func (c *Client) UpdateDesiredLRP(ctx context.Context, processGUID string, u pando.DesiredLRPUpdate) error {
	return c.call(ctx, "PATCH", "/v1/desired_lrps/"+url.PathEscape(processGUID), nil, u, nil)
}

func (c *Client) RemoveDesiredLRP(ctx context.Context, processGUID string) error {
	return c.call(ctx, "DELETE", "/v1/desired_lrps/"+url.PathEscape(processGUID), nil, nil, nil)
}

func (c *Client) DesiredLRP(ctx context.Context, processGUID string) (pando.DesiredLRP, error) {
	var d pando.DesiredLRP
	err := c.call(ctx, "GET", "/v1/desired_lrps/"+url.PathEscape(processGUID), nil, nil, &d)
	return d, err
}

func (c *Client) DesiredLRPs(ctx context.Context) ([]pando.DesiredLRP, error) {
	var ds []pando.DesiredLRP
	err := c.call(ctx, "GET", "/v1/desired_lrps", nil, nil, &ds)
	return ds, err
}

func (c *Client) ActualLRPs(ctx context.Context, processGUID string) ([]pando.ActualLRP, error) {
	var as []pando.ActualLRP
	q := url.Values{}
	if processGUID != "" {
		q.Set("process_guid", processGUID)
	}
	err := c.call(ctx, "GET", "/v1/actual_lrps", q, nil, &as)
	return as, err
}

func (c *Client) RetireActualLRP(ctx context.Context, processGUID, instanceGUID string) error {
	return c.call(ctx, "POST", "/v1/actual_lrps/"+url.PathEscape(processGUID)+"/"+url.PathEscape(instanceGUID)+"/retire", nil, nil, nil)
}

func (c *Client) DesireTask(ctx context.Context, t pando.Task) error {
	return c.call(ctx, "POST", "/v1/tasks", nil, t, nil)
}

func (c *Client) CancelTask(ctx context.Context, guid string) error {
	return c.call(ctx, "POST", "/v1/tasks/"+url.PathEscape(guid)+"/cancel", nil, nil, nil)
}

func (c *Client) Task(ctx context.Context, guid string) (pando.Task, error) {
	var t pando.Task
	err := c.call(ctx, "GET", "/v1/tasks/"+url.PathEscape(guid), nil, nil, &t)
	return t, err
}

func (c *Client) Tasks(ctx context.Context) ([]pando.Task, error) {
	var ts []pando.Task
	err := c.call(ctx, "GET", "/v1/tasks", nil, nil, &ts)
	return ts, err
}

func (c *Client) ResolveTask(ctx context.Context, guid string) error {
	return c.call(ctx, "POST", "/v1/tasks/"+url.PathEscape(guid)+"/resolve", nil, nil, nil)
}

func (c *Client) Cells(ctx context.Context) ([]pando.CellState, error) {
	var cs []pando.CellState
	err := c.call(ctx, "GET", "/v1/cells", nil, nil, &cs)
	return cs, err
}

func (c *Client) DrainCell(ctx context.Context, cellID string) error {
	return c.call(ctx, "POST", "/v1/cells/"+url.PathEscape(cellID)+"/drain", nil, nil, nil)
}

// UndrainCell implements pando.Runtime.
func (c *Client) UndrainCell(ctx context.Context, cellID string) error {
	return c.call(ctx, "POST", "/v1/cells/"+url.PathEscape(cellID)+"/undrain", nil, nil, nil)
}

// Subscribe opens the event stream after the given sequence number. The
// first connection is made before it returns (its failure is the error);
// afterwards a broken or silent stream is reopened from the last event
// seen, with backoff, until ctx ends, when the channel closes.
func (c *Client) Subscribe(ctx context.Context, after uint64) (<-chan pando.RuntimeEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	st, err := c.openStream(sctx, after)
	if err != nil {
		cancel()
		return nil, err
	}
	out := make(chan pando.RuntimeEvent, 64)
	go func() {
		defer close(out)
		defer cancel()
		backoff := 100 * time.Millisecond
		for {
			last, got, err := c.readStream(sctx, st, after, out)
			after = last
			if sctx.Err() != nil {
				return
			}
			if got {
				backoff = 100 * time.Millisecond
			}
			c.log.Warn("runtime event stream broke, reconnecting", "after", after, "err", err)
			for {
				select {
				case <-sctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(backoff*2, 5*time.Second)
				if st, err = c.openStream(sctx, after); err == nil {
					break
				}
				if sctx.Err() != nil {
					return
				}
				c.log.Warn("reconnect runtime event stream", "after", after, "err", err)
			}
		}
	}()
	return out, nil
}

// stream is one open event stream; cancel aborts it.
type stream struct {
	body   io.ReadCloser
	cancel context.CancelFunc
}

func (c *Client) openStream(ctx context.Context, after uint64) (stream, error) {
	ctx, cancel := context.WithCancel(ctx)
	q := url.Values{"after": {strconv.FormatUint(after, 10)}}
	req, err := http.NewRequestWithContext(ctx, "GET", c.url("/v1/events", q), nil)
	if err != nil {
		cancel()
		return stream{}, err
	}
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := c.hc.Do(req)
	if err != nil {
		cancel()
		return stream{}, fmt.Errorf("runtime API: open event stream: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer cancel()
		defer resp.Body.Close()
		return stream{}, fmt.Errorf("runtime API: open event stream: %w", errorFrom(resp))
	}
	return stream{body: resp.Body, cancel: cancel}, nil
}

// readStream passes a stream's events to out until it breaks, falls
// silent for the idle timeout, or ctx ends. It returns the last Seq seen
// and whether any line arrived.
func (c *Client) readStream(ctx context.Context, st stream, after uint64, out chan<- pando.RuntimeEvent) (uint64, bool, error) {
	defer st.cancel()
	defer st.body.Close()
	// A silent stream is aborted, which ends the read below.
	idle := time.AfterFunc(c.idle, st.cancel)
	defer idle.Stop()
	r := bufio.NewReaderSize(st.body, 64<<10)
	got := false
	for {
		line, err := readLine(r)
		if err != nil {
			return after, got, err
		}
		got = true
		idle.Reset(c.idle)
		if len(bytes.TrimSpace(line)) == 0 {
			continue // heartbeat
		}
		var ev pando.RuntimeEvent
		if err := json.Unmarshal(line, &ev); err != nil {
			return after, got, fmt.Errorf("decode event: %w", err)
		}
		select {
		case <-ctx.Done():
			return after, got, ctx.Err()
		case out <- ev:
			after = ev.Seq
		}
	}
}

// readLine reads one line of at most maxEventLine bytes.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxEventLine {
			return nil, fmt.Errorf("event longer than %d bytes", maxEventLine)
		}
		switch {
		case err == nil:
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return nil, err
		}
	}
}

// url is the base URL plus an already escaped path and the query.
func (c *Client) url(path string, q url.Values) string {
	s := c.base.String() + path
	if len(q) > 0 {
		s += "?" + q.Encode()
	}
	return s
}

// call makes one request: in is sent as JSON when not nil, a 2xx answer is
// decoded into out when not nil, and an error answer becomes the
// *pando.Error the runtime returned.
func (c *Client) call(ctx context.Context, method, path string, q url.Values, in, out any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("runtime API %s %s: encode: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(path, q), body)
	if err != nil {
		return fmt.Errorf("runtime API %s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("runtime API %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return errorFrom(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("runtime API %s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// errorFrom turns an error answer into the runtime's *pando.Error.
func errorFrom(resp *http.Response) error {
	return wireerr.Read("runtime API", resp)
}
