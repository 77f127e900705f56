package router

import (
	"sync"
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
