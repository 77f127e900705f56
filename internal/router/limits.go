package router

import (
	"sync"
	"sync/atomic"
)

// appLimiter bounds the requests (websockets included) in flight per app.
type appLimiter struct {
	max    int
	mu     sync.Mutex
	counts map[string]int
}

func newAppLimiter(max int) *appLimiter {
	return &appLimiter{max: max, counts: map[string]int{}}
}

// acquire takes a slot for app; false when the app is at its cap.
func (a *appLimiter) acquire(app string) bool {
	if a.max <= 0 {
		return true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.counts[app] >= a.max {
		return false
	}
	a.counts[app]++
	return true
}

func (a *appLimiter) release(app string) {
	if a.max <= 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if n := a.counts[app] - 1; n > 0 {
		a.counts[app] = n
	} else {
		delete(a.counts, app)
	}
}

// smallHeadBytes is what a head (or trailer section) may take without a
// large-head slot; maxLargeHeads bounds the heads past it read at once,
// router-wide. Such a head may grow to maxHeadBytes and costs two or
// three times that while it is read and split: without the bound, a few
// thousand connections each sending a 1 MiB head would take GiBs.
// keptHeadBytes: a connection keeps its head buffer for the next request
// up to that size.
const (
	smallHeadBytes = 16 << 10
	maxLargeHeads  = 64
	keptHeadBytes  = 64 << 10
)

// errHeadsBusy is a large head when every large-head slot is taken.
var errHeadsBusy = &headError{status: 503, reason: "the router is reading too many large request heads (over 16 KiB) at once; retry, or send a smaller head"}

// headSlots counts the large heads being read (or, for a request head,
// held until the request ends).
type headSlots struct {
	max int64
	n   atomic.Int64
}

// acquire takes a slot; false when all are taken. A nil *headSlots has
// room for every head.
func (s *headSlots) acquire() bool {
	if s == nil {
		return true
	}
	if s.n.Add(1) > s.max {
		s.n.Add(-1)
		return false
	}
	return true
}

func (s *headSlots) release() {
	if s != nil {
		s.n.Add(-1)
	}
}

// headCount counts the bytes of one head as it is read: past
// maxHeadBytes it is errHeadTooLarge, and past smallHeadBytes it first
// takes a slot of slots (errHeadsBusy when there is none), which done
// gives back.
type headCount struct {
	slots *headSlots
	total int
	held  bool
}

func (c *headCount) add(n int) error {
	c.total += n
	if c.total > maxHeadBytes {
		return errHeadTooLarge
	}
	if c.total > smallHeadBytes && !c.held {
		if !c.slots.acquire() {
			return errHeadsBusy
		}
		c.held = true
	}
	return nil
}

// done ends the count, giving back its slot.
func (c *headCount) done() {
	if c.held {
		c.slots.release()
	}
	c.total, c.held = 0, false
}
