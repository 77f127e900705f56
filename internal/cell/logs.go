package cell

import (
	"bytes"
	"fmt"
	"sync"
	"time"
)

// Bounds of the cell's work on one container's output.
const (
	// maxLineBytes splits longer lines so one line cannot hold unbounded
	// memory.
	maxLineBytes = 64 << 10
	// DefaultLogRateCeiling is the cell's own bound on one container's
	// log lines, whatever the process's log_rate_limit says (-1 included):
	// bytes per second, each line counting lineOverhead bytes more, since
	// storing and serving a line costs about that much beyond its text.
	DefaultLogRateCeiling = 4 << 20
	lineOverhead          = 64
	// drainRate is how many bytes per second the cell reads from one
	// container's stdout and stderr. Lines past the limits are dropped
	// and only counted, which costs little per byte but not nothing: a
	// program writing faster than this blocks on its full pipe instead of
	// making the server copy gigabytes a second.
	drainRate = 16 << 20
	// drainSlack is the burst the pacing lets through before it waits.
	drainSlack = 50 * time.Millisecond
	// noticeInterval is the least time between two notices of dropped
	// lines.
	noticeInterval = time.Second
)

// logLimits are the rates of one container's output.
type logLimits struct {
	// Rate is the process's limit in bytes per second, as CF's
	// log_rate_limit_in_bytes_per_second: -1 unlimited, 0 no logs at all.
	Rate int
	// Ceiling is the cell's bound (see DefaultLogRateCeiling); <= 0 none.
	Ceiling int
	// Drain is the bytes per second read from the pipes; <= 0 unpaced.
	Drain int
	// Who names the source in notices: "app instance" (CF's wording) or
	// "staging".
	Who string
}

// logLimiter meters one container's output, its stdout and stderr
// together. Two token buckets admit lines: the process's limit (bytes,
// burst of one second's worth, as Diego's executor) and the cell's
// ceiling. Lines that do not fit are dropped and counted; the first drop
// of a flood says so in CF's words, then at most one notice a second
// gives the number of lines dropped since the previous one.
type logLimiter struct {
	lim    logLimits
	now    func() time.Time
	sleep  func(time.Duration)
	notify func(msg string)

	mu       sync.Mutex
	user     bucket
	cell     bucket
	drainAt  time.Time // when the bytes read so far are paid for
	dropped  int       // lines dropped since the last notice
	total    int       // lines dropped in all
	cause    string    // the limit the last drop exceeded, in words
	closedBy string    // the limit that refused the last line (or open)
	userMsg  string    // the process's limit exceeded, in CF's words
	cellMsg  string    // the cell's ceiling exceeded
	warned   bool      // this flood's first notice was given
	noticeAt time.Time
	timer    *time.Timer
	// emitted counts the bytes of admitted lines; rateBytes and rateAt
	// are the count and time of the last rate reading.
	emitted   uint64
	rateBytes uint64
	rateAt    time.Time
}

func newLogLimiter(lim logLimits, notify func(string)) *logLimiter {
	l := &logLimiter{lim: lim, now: time.Now, sleep: time.Sleep, notify: notify}
	l.rateAt = l.now()
	l.user = bucket{rate: float64(lim.Rate), tokens: float64(lim.Rate)}
	l.cell = bucket{rate: float64(lim.Ceiling), tokens: float64(lim.Ceiling)}
	l.userMsg = fmt.Sprintf("%s exceeded log rate limit (%d bytes/sec)", lim.Who, lim.Rate)
	l.cellMsg = fmt.Sprintf("%s exceeded the platform's log rate limit (%d bytes/sec)", lim.Who, lim.Ceiling)
	l.closedBy = l.userMsg
	return l
}

// bucket is a token bucket holding at most one second of its rate; it
// starts full.
type bucket struct {
	rate, tokens float64
	at           time.Time
}

func (b *bucket) refill(now time.Time) {
	if d := now.Sub(b.at); d > 0 && !b.at.IsZero() {
		b.tokens = min(b.rate, b.tokens+b.rate*d.Seconds())
	}
	b.at = now
}

// pace makes the reader wait when the container writes faster than the
// drain rate, so that the cell's work per container stays bounded.
func (l *logLimiter) pace(n int) {
	if l.lim.Drain <= 0 {
		return
	}
	l.mu.Lock()
	now := l.now()
	if l.drainAt.Before(now) {
		l.drainAt = now
	}
	l.drainAt = l.drainAt.Add(time.Duration(float64(n) / float64(l.lim.Drain) * float64(time.Second)))
	wait := l.drainAt.Sub(now) - drainSlack
	l.mu.Unlock()
	if wait > 0 {
		l.sleep(wait)
	}
}

// open reports whether a line could be admitted now (some budget is left
// in both buckets); when not, the caller drops what it has without
// splitting it.
func (l *logLimiter) open() (bool, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	notice := l.dueNoticeLocked(now)
	if l.lim.Rate >= 0 {
		l.user.refill(now)
		if l.user.tokens < 1 {
			l.closedBy = l.userMsg
			return false, notice
		}
	}
	if l.lim.Ceiling > 0 {
		l.cell.refill(now)
		if l.cell.tokens < lineOverhead+1 {
			l.closedBy = l.cellMsg
			return false, notice
		}
	}
	return true, notice
}

// admit charges a line of n bytes, reporting whether it may be emitted
// and any notice to emit before it. A line it refuses is counted dropped.
func (l *logLimiter) admit(n int) (bool, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	notice := l.dueNoticeLocked(now)
	if l.lim.Rate >= 0 {
		l.user.refill(now)
		if l.user.tokens < float64(n) {
			return false, l.dropLocked(now, 1, l.userMsg, notice)
		}
	}
	if l.lim.Ceiling > 0 {
		l.cell.refill(now)
		if l.cell.tokens < float64(n+lineOverhead) {
			return false, l.dropLocked(now, 1, l.cellMsg, notice)
		}
		l.cell.tokens -= float64(n + lineOverhead)
	}
	if l.lim.Rate >= 0 {
		l.user.tokens -= float64(n)
	}
	l.emitted += uint64(n)
	return true, notice
}

// rate is the bytes per second of lines admitted since the previous call
// (or since the limiter was made).
func (l *logLimiter) rate() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	bytes, wall := l.emitted-l.rateBytes, now.Sub(l.rateAt)
	l.rateBytes, l.rateAt = l.emitted, now
	if wall <= 0 {
		return 0
	}
	return uint64(float64(bytes) / wall.Seconds())
}

// drop counts n lines dropped because open said no.
func (l *logLimiter) drop(n int) string {
	if n == 0 {
		return ""
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dropLocked(l.now(), n, l.closedBy, "")
}

// dropLocked counts n dropped lines and returns the notice to emit: prior
// (already due) or, on a flood's first drop, the cause in CF's words.
func (l *logLimiter) dropLocked(now time.Time, n int, cause, prior string) string {
	l.dropped += n
	l.total += n
	l.cause, l.closedBy = cause, cause
	if prior != "" {
		return prior
	}
	if !l.warned {
		l.warned, l.noticeAt = true, now
		l.armLocked()
		return cause
	}
	l.armLocked()
	return ""
}

// dueNoticeLocked returns the count of lines dropped since the last
// notice when a notice is due, and ends a flood that has stopped.
func (l *logLimiter) dueNoticeLocked(now time.Time) string {
	if !l.warned || now.Sub(l.noticeAt) < noticeInterval {
		return ""
	}
	l.noticeAt = now
	if l.dropped == 0 {
		l.warned = false
		return ""
	}
	return l.countLocked()
}

func (l *logLimiter) countLocked() string {
	n := l.dropped
	l.dropped = 0
	unit := "lines"
	if n == 1 {
		unit = "line"
	}
	return fmt.Sprintf("%s: %d log %s dropped", l.cause, n, unit)
}

// armLocked makes sure the count of dropped lines is told even if the
// container writes nothing more.
func (l *logLimiter) armLocked() {
	if l.timer != nil || l.notify == nil {
		return
	}
	l.timer = time.AfterFunc(noticeInterval, func() {
		l.mu.Lock()
		l.timer = nil
		notice := l.dueNoticeLocked(l.now())
		if l.dropped > 0 {
			l.armLocked()
		}
		l.mu.Unlock()
		if notice != "" {
			l.notify(notice)
		}
	})
}

// flush tells the lines dropped since the last notice now (the container
// has exited) and stops the timer.
func (l *logLimiter) flush() {
	l.mu.Lock()
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	notice := ""
	if l.dropped > 0 {
		notice = l.countLocked()
		l.noticeAt = l.now()
	}
	l.mu.Unlock()
	if notice != "" && l.notify != nil {
		l.notify(notice)
	}
}

// Dropped is the number of lines dropped in all.
func (l *logLimiter) Dropped() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// lineWriter turns one output stream into log lines, metered by its
// limiter. It is safe for concurrent use; Flush emits a trailing partial
// line. Bytes past the limits are never split into lines: they are
// counted (one bytes.Count per read) and dropped.
type lineWriter struct {
	lim  *logLimiter
	emit func(line string)

	mu       sync.Mutex
	buf      []byte
	dropping bool // the rest of the current line is dropped (and counted)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	w.lim.pace(n)
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(p) > 0 {
		if w.dropping {
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				return n, nil
			}
			p, w.dropping = p[i+1:], false
			continue
		}
		ok, notice := w.lim.open()
		w.say(notice)
		if !ok {
			w.dropRest(p)
			return n, nil
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			room := maxLineBytes - len(w.buf)
			if len(p) < room {
				w.buf = append(w.buf, p...)
				return n, nil
			}
			w.buf = append(w.buf, p[:room]...)
			p = p[room:]
			if !w.line(w.buf) {
				w.buf = w.buf[:0]
				w.dropRest(p)
				return n, nil
			}
			w.buf = w.buf[:0]
			continue
		}
		line := p[:i]
		if len(w.buf) > 0 {
			w.buf = append(w.buf, line...)
			line = w.buf
		}
		p = p[i+1:]
		ok = w.line(bytes.TrimSuffix(line, []byte{'\r'}))
		w.buf = w.buf[:0]
		if !ok {
			w.dropRest(p)
			return n, nil
		}
	}
	return n, nil
}

// line admits and emits one line, or counts it dropped.
func (w *lineWriter) line(b []byte) bool {
	ok, notice := w.lim.admit(len(b))
	w.say(notice)
	if ok {
		w.emit(string(b))
	}
	return ok
}

// dropRest drops p, which starts a line (joined to any buffered partial
// line), counting its lines without splitting them.
func (w *lineWriter) dropRest(p []byte) {
	if len(p) == 0 {
		return
	}
	lines := bytes.Count(p, []byte{'\n'})
	if p[len(p)-1] != '\n' {
		lines++
		w.dropping = true
	}
	w.buf = w.buf[:0]
	w.say(w.lim.drop(lines))
}

func (w *lineWriter) say(notice string) {
	if notice != "" && w.lim.notify != nil {
		w.lim.notify(notice)
	}
}

// Flush emits what is left of an unterminated last line and tells how
// many lines were dropped since the last notice.
func (w *lineWriter) Flush() {
	w.mu.Lock()
	if w.dropping {
		w.dropping = false
	} else if len(w.buf) > 0 {
		w.line(w.buf)
	}
	w.buf = w.buf[:0]
	w.mu.Unlock()
	w.lim.flush()
}

// outputWriters returns a container's stdout and stderr writers under one
// limiter: lines go to emit with type "OUT" or "ERR", notices as "OUT"
// (as Diego's executor sends them).
func outputWriters(lim logLimits, emit func(typ, line string)) (stdout, stderr *lineWriter) {
	l := newLogLimiter(lim, func(msg string) { emit("OUT", msg) })
	return &lineWriter{lim: l, emit: func(s string) { emit("OUT", s) }},
		&lineWriter{lim: l, emit: func(s string) { emit("ERR", s) }}
}

// logLimits are the limits of a container whose process allows rate
// bytes per second (-1 unlimited).
func (r *Rep) logLimits(rate int, who string) logLimits {
	return logLimits{Rate: rate, Ceiling: r.cfg.LogRateCeiling, Drain: drainRate, Who: who}
}
