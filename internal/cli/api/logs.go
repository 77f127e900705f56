package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	pando "github.com/pandoplatform/pando"
)

// LogLine is one app or staging log line.
type LogLine struct {
	Timestamp  int64 // ns since the epoch
	SourceType string
	InstanceID string
	Type       string // OUT or ERR
	Payload    string
}

// Time returns the line's timestamp.
func (l LogLine) Time() time.Time { return time.Unix(0, l.Timestamp) }

// flexInt decodes a JSON number or a string holding one (log-cache sends
// nanosecond timestamps as strings).
type flexInt int64

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*f = 0
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		fl, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil {
			return fmt.Errorf("bad timestamp %s", b)
		}
		n = int64(fl)
	}
	*f = flexInt(n)
	return nil
}

type envelope struct {
	Timestamp  flexInt           `json:"timestamp"`
	SourceID   string            `json:"source_id"`
	InstanceID string            `json:"instance_id"`
	Tags       map[string]string `json:"tags"`
	Log        *struct {
		Payload string `json:"payload"`
		Type    string `json:"type"`
	} `json:"log"`
}

func decodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("log payload is not base64")
}

// ReadLogs reads log envelopes of an app from the log-cache API:
// start is inclusive (ns; negative means from the beginning), limit bounds
// the batch and descending returns newest first. Non-log envelopes are
// skipped.
func (c *Client) ReadLogs(ctx context.Context, sourceID string, start int64, limit int, descending bool) ([]LogLine, error) {
	return c.ReadLogsOf(ctx, sourceID, nil, start, limit, descending)
}

// ReadLogsOf is ReadLogs asking the server for lines of sourceTypes only
// (Pando's source_types parameter). log-cache has no such filter and
// ignores it: callers that must have those types only check each line
// (pando.LogSourceSelected).
func (c *Client) ReadLogsOf(ctx context.Context, sourceID string, sourceTypes []string, start int64, limit int, descending bool) ([]LogLine, error) {
	base := c.URL()
	if root, err := c.Root(ctx); err == nil && root.Href("log_cache") != "" {
		base = root.Href("log_cache")
	}
	q := url.Values{"envelope_types": {"LOG"}, "start_time": {strconv.FormatInt(start, 10)}}
	if len(sourceTypes) > 0 {
		q.Set("source_types", strings.Join(sourceTypes, ","))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if descending {
		q.Set("descending", "true")
	}
	var out struct {
		Envelopes struct {
			Batch []envelope `json:"batch"`
		} `json:"envelopes"`
	}
	if _, err := c.do(ctx, http.MethodGet, base+"/api/v1/read/"+url.PathEscape(sourceID)+"?"+q.Encode(), nil, &out); err != nil {
		return nil, fmt.Errorf("read logs: %w", err)
	}
	lines := make([]LogLine, 0, len(out.Envelopes.Batch))
	for _, e := range out.Envelopes.Batch {
		if e.Log == nil {
			continue
		}
		payload, err := decodeBase64(e.Log.Payload)
		if err != nil {
			return nil, fmt.Errorf("read logs: %w", err)
		}
		lines = append(lines, LogLine{
			Timestamp:  int64(e.Timestamp),
			SourceType: e.Tags["source_type"],
			InstanceID: e.InstanceID,
			Type:       e.Log.Type,
			Payload:    string(payload),
		})
	}
	return lines, nil
}

// streamEvent is one server-sent event of /pando/v1/logs/:guid/stream.
type streamEvent struct {
	Timestamp  flexInt `json:"timestamp"`
	SourceType string  `json:"source_type"`
	InstanceID string  `json:"instance_id"`
	Type       string  `json:"type"`
	Payload    string  `json:"payload"`
}

// maxEventSize bounds one server-sent event.
const maxEventSize = 1 << 20

// StreamLogs follows an app's log stream (server-sent events) and calls fn
// for each line. start is the first timestamp wanted (ns; 0: from now).
// connected is called once the server accepted the stream, before any
// line. It returns ErrUnsupported when the server lacks the endpoint, nil
// when the server ends the stream, and ctx's error when cancelled.
func (c *Client) StreamLogs(ctx context.Context, appGUID string, sourceTypes []string, start int64, connected func(), fn func(LogLine)) error {
	q := url.Values{}
	if len(sourceTypes) > 0 {
		q.Set("source_types", strings.Join(sourceTypes, ","))
	}
	if start > 0 {
		q.Set("start_time", strconv.FormatInt(start, 10))
	}
	path := "/pando/v1/logs/" + url.PathEscape(appGUID) + "/stream"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	h := http.Header{}
	h.Set("Accept", "text/event-stream")
	resp, err := c.send(ctx, request{method: http.MethodGet, url: path, header: h})
	if IsNotFound(err) {
		return ErrUnsupported
	}
	if err != nil {
		return fmt.Errorf("stream logs: %w", err)
	}
	defer drain(resp.Body)
	if connected != nil {
		connected()
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), maxEventSize)
	var data bytes.Buffer
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0:
			if data.Len() > 0 {
				var ev streamEvent
				if err := json.Unmarshal(data.Bytes(), &ev); err == nil {
					fn(LogLine{
						Timestamp:  int64(ev.Timestamp),
						SourceType: ev.SourceType,
						InstanceID: ev.InstanceID,
						Type:       ev.Type,
						Payload:    ev.Payload,
					})
				}
				data.Reset()
			}
		case bytes.HasPrefix(line, []byte("data:")):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			if data.Len()+len(line) > maxEventSize {
				return fmt.Errorf("stream logs: event larger than %d bytes", maxEventSize)
			}
			data.Write(bytes.TrimPrefix(bytes.TrimPrefix(line, []byte("data:")), []byte(" ")))
		}
		// Comments (":"), "event:", "id:" and "retry:" lines carry nothing
		// the CLI needs.
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("stream logs: %w", err)
	}
	return nil
}

// FollowLogs is StreamLogs with a fallback for servers without Pando's
// stream endpoint: it polls the log-cache API every 250 ms. start is the
// first timestamp wanted (ns; 0: from now).
func (c *Client) FollowLogs(ctx context.Context, appGUID string, sourceTypes []string, start int64, connected func(), fn func(LogLine)) error {
	err := c.StreamLogs(ctx, appGUID, sourceTypes, start, connected, fn)
	if !errors.Is(err, ErrUnsupported) {
		return err
	}
	if start <= 0 {
		start = c.now().UnixNano()
	}
	if connected != nil {
		connected()
	}
	for {
		lines, err := c.ReadLogs(ctx, appGUID, start, 1000, false)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		for _, l := range lines {
			if l.Timestamp < start {
				continue
			}
			start = l.Timestamp + 1
			if pando.LogSourceSelected(sourceTypes, l.SourceType) {
				fn(l)
			}
		}
		if len(lines) < 1000 {
			if err := sleep(ctx, 250*time.Millisecond); err != nil {
				return err
			}
		}
	}
}
