package cell

import (
	"bytes"
	"fmt"
	"sync"
	"time"
)

// maxLineBytes splits longer lines so one line cannot hold unbounded
// memory.
const maxLineBytes = 64 << 10

// lineWriter turns a process's output stream into log lines. It is safe
// for concurrent use; Flush emits a trailing partial line.
type lineWriter struct {
	mu   sync.Mutex
	buf  []byte
	emit func(line string)
}

func newLineWriter(emit func(line string)) *lineWriter {
	return &lineWriter{emit: emit}
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.buf = append(w.buf, p...)
			for len(w.buf) >= maxLineBytes {
				w.emit(string(w.buf[:maxLineBytes]))
				w.buf = append(w.buf[:0], w.buf[maxLineBytes:]...)
			}
			break
		}
		w.buf = append(w.buf, p[:i]...)
		w.emit(string(bytes.TrimSuffix(w.buf, []byte{'\r'})))
		w.buf = w.buf[:0]
		p = p[i+1:]
	}
	return n, nil
}

// Flush emits what is left of an unterminated last line.
func (w *lineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit(string(w.buf))
		w.buf = w.buf[:0]
	}
}

// rateLimiter enforces an instance's log rate limit (bytes per second, as
// CF's log_rate_limit): lines over it are dropped, and one notice per
// second says so.
type rateLimiter struct {
	limit int // bytes/s; <= 0 unlimited
	now   func() time.Time

	mu     sync.Mutex
	window time.Time
	used   int
	warned bool
}

// allow reports whether a line of n bytes may be emitted, and whether the
// caller should emit the over-limit notice.
func (l *rateLimiter) allow(n int) (ok, notice bool) {
	if l == nil || l.limit <= 0 {
		return true, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.now().Truncate(time.Second)
	if !t.Equal(l.window) {
		l.window, l.used, l.warned = t, 0, false
	}
	if l.used+n <= l.limit {
		l.used += n
		return true, false
	}
	if !l.warned {
		l.warned = true
		return false, true
	}
	return false, false
}

func (l *rateLimiter) notice() string {
	return fmt.Sprintf("app instance exceeded log rate limit (%d bytes/sec)", l.limit)
}
