package cc

import (
	"sync"

	"github.com/pandoplatform/pando"
)

// Package uploads in progress are bounded per user and on the platform:
// each may write up to --max-upload-bytes of zip and four times that
// unpacked to the data dir's disk while it runs, so one user's parallel
// pushes must not be able to fill the disk every tenant (and the CCDB)
// shares.
const (
	maxUploadsPerUser = 4
	maxUploads        = 32
)

// uploadLimiter counts the uploads in progress, per user and in all.
type uploadLimiter struct {
	perUser, total int

	mu     sync.Mutex
	n      int
	byUser map[string]int
}

func newUploadLimiter(perUser, total int) *uploadLimiter {
	return &uploadLimiter{perUser: perUser, total: total, byUser: map[string]int{}}
}

// acquire takes a place for one of user's uploads, or says why there is
// none; release gives it back.
func (l *uploadLimiter) acquire(user string) (release func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byUser[user] >= l.perUser {
		return nil, pando.Errorf(pando.EUnavailable, "You have %d package uploads in progress, the most one user may have at once: retry when one of them has finished", l.perUser)
	}
	if l.n >= l.total {
		return nil, pando.Errorf(pando.EUnavailable, "The platform is processing %d package uploads, the most it takes at once: retry in a moment", l.total)
	}
	l.n++
	l.byUser[user]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.n--
			if l.byUser[user]--; l.byUser[user] <= 0 {
				delete(l.byUser, user)
			}
		})
	}, nil
}
