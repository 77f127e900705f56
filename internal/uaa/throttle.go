package uaa

import (
	"context"
	"errors"
	"sync"
	"time"
)

// maxRateEntries bounds the per-address bucket table.
const maxRateEntries = 10000

// rateLimiter is a token bucket per client address: burst attempts at
// once, then one more every interval. It runs before any password is
// compared, so a stranger's flood costs a map lookup, not a bcrypt.
type rateLimiter struct {
	burst    float64
	interval time.Duration

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(burst int, interval time.Duration) *rateLimiter {
	return &rateLimiter{burst: float64(burst), interval: interval, buckets: map[string]*bucket{}}
}

// exhausted reports, without taking anything, whether key's bucket is
// empty, and if so how long until it holds an attempt again.
func (l *rateLimiter) exhausted(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		return false, 0
	}
	tokens := min(l.burst, b.tokens+float64(max(now.Sub(b.last), 0))/float64(l.interval))
	if tokens >= 1 {
		return false, 0
	}
	return true, time.Duration((1 - tokens) * float64(l.interval))
}

// allow takes one attempt from key's bucket. When it is empty it says how
// long until the next attempt is allowed.
func (l *rateLimiter) allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxRateEntries {
			l.pruneLocked(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = min(l.burst, b.tokens+float64(elapsed)/float64(l.interval))
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) * float64(l.interval))
}

// pruneLocked drops the buckets that have refilled (they hold nothing a
// new bucket would not), then arbitrary ones until there is room: the
// bcrypt gate still bounds the work of whoever that lets through.
func (l *rateLimiter) pruneLocked(now time.Time) {
	full := time.Duration(l.burst * float64(l.interval))
	for k, b := range l.buckets {
		if now.Sub(b.last) >= full {
			delete(l.buckets, k)
		}
	}
	for k := range l.buckets {
		if len(l.buckets) < maxRateEntries {
			return
		}
		delete(l.buckets, k)
	}
}

// errBusy is a password comparison refused because the gate is full.
var errBusy = errors.New("too many password checks in progress")

// gate bounds the password comparisons (bcrypt) running at once, and how
// many may queue for one and for how long, so logins can never take all
// the server's CPU: past the bound a login is refused at once.
type gate struct {
	slots      chan struct{}
	maxWaiters int
	maxWait    time.Duration

	mu      sync.Mutex
	waiting int
}

func newGate(concurrency, maxWaiters int, maxWait time.Duration) *gate {
	return &gate{slots: make(chan struct{}, concurrency), maxWaiters: maxWaiters, maxWait: maxWait}
}

// acquire takes a slot, waiting at most maxWait behind at most maxWaiters
// others; release must follow a nil error.
func (g *gate) acquire(ctx context.Context) error {
	select {
	case g.slots <- struct{}{}:
		return nil
	default:
	}
	g.mu.Lock()
	if g.waiting >= g.maxWaiters {
		g.mu.Unlock()
		return errBusy
	}
	g.waiting++
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.waiting--
		g.mu.Unlock()
	}()
	t := time.NewTimer(g.maxWait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return nil
	case <-t.C:
		return errBusy
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gate) release() { <-g.slots }
