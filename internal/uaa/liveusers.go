package uaa

import (
	"context"
	"sync"
	"time"

	"github.com/pandoplatform/pando"
)

// liveUsers answers whether a token's user still exists, so that Verify
// refuses a deleted user's tokens at once without reading the store on
// every request. A user found in the store is trusted for liveTTL; a user
// deleted through UserDeleted (UAA's DELETE /Users or the API's DELETE
// /v3/users) is refused from that moment, and one deleted any other way
// within liveTTL. Users found missing are remembered: GUIDs are not reused.
type liveUsers struct {
	mu   sync.Mutex
	ttl  time.Duration
	seen map[string]time.Time // user GUID -> when found in the store
	gone map[string]struct{}
}

const (
	liveTTL = 30 * time.Second
	// liveMax bounds each map; past it the map is emptied and refilled
	// from the store (a few reads), which keeps memory flat whatever the
	// number of users.
	liveMax = 10000
)

func newLiveUsers(ttl time.Duration) *liveUsers {
	return &liveUsers{ttl: ttl, seen: map[string]time.Time{}, gone: map[string]struct{}{}}
}

// check reports whether the user exists, reading users on a cache miss.
func (l *liveUsers) check(ctx context.Context, users UserStore, guid string, now time.Time) (bool, error) {
	l.mu.Lock()
	if _, ok := l.gone[guid]; ok {
		l.mu.Unlock()
		return false, nil
	}
	at, ok := l.seen[guid]
	l.mu.Unlock()
	if ok && now.Sub(at) < l.ttl {
		return true, nil
	}
	_, err := users.GetUser(ctx, guid)
	switch {
	case pando.IsNotFound(err):
		l.deleted(guid)
		return false, nil
	case err != nil:
		return false, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.gone[guid]; ok { // deleted while we read
		return false, nil
	}
	if len(l.seen) >= liveMax {
		clear(l.seen)
	}
	l.seen[guid] = now
	return true, nil
}

func (l *liveUsers) deleted(guid string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.seen, guid)
	if len(l.gone) >= liveMax {
		clear(l.gone)
	}
	l.gone[guid] = struct{}{}
}

// UserDeleted makes the user's tokens invalid at once. Whoever deletes a
// user from the shared user table calls it.
func (s *Service) UserDeleted(guid string) { s.live.deleted(guid) }
