package uaa

import (
	"strings"
	"sync"
	"time"
)

// maxLockoutEntries bounds the failure table, so guessing at many user
// names cannot grow memory without limit.
const maxLockoutEntries = 10000

// lockout refuses password grants for a user name after too many recent
// failures, as UAA does. It is in memory: a restart forgets it.
type lockout struct {
	limit    int
	window   time.Duration
	duration time.Duration

	mu      sync.Mutex
	entries map[string]*lockEntry
}

type lockEntry struct {
	failures    int
	windowStart time.Time
	lockedUntil time.Time
}

func newLockout(limit int, window, duration time.Duration) *lockout {
	return &lockout{limit: limit, window: window, duration: duration, entries: map[string]*lockEntry{}}
}

func lockKey(name string) string { return strings.ToLower(name) }

func (l *lockout) locked(name string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries[lockKey(name)]
	return e != nil && now.Before(e.lockedUntil)
}

func (l *lockout) fail(name string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := lockKey(name)
	e := l.entries[k]
	if e == nil {
		if len(l.entries) >= maxLockoutEntries {
			l.pruneLocked(now)
		}
		e = &lockEntry{windowStart: now}
		l.entries[k] = e
	}
	if now.Sub(e.windowStart) > l.window {
		e.failures, e.windowStart = 0, now
	}
	e.failures++
	if e.failures >= l.limit {
		e.lockedUntil = now.Add(l.duration)
		e.failures, e.windowStart = 0, now
	}
}

func (l *lockout) succeed(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.entries, lockKey(name))
}

// pruneLocked drops stale entries; if all are fresh, it drops arbitrary
// unlocked ones, then arbitrary ones, until there is room.
func (l *lockout) pruneLocked(now time.Time) {
	for k, e := range l.entries {
		if now.Sub(e.windowStart) > l.window && !now.Before(e.lockedUntil) {
			delete(l.entries, k)
		}
	}
	for k, e := range l.entries {
		if len(l.entries) < maxLockoutEntries {
			return
		}
		if !now.Before(e.lockedUntil) {
			delete(l.entries, k)
		}
	}
	for k := range l.entries {
		if len(l.entries) < maxLockoutEntries {
			return
		}
		delete(l.entries, k)
	}
}
