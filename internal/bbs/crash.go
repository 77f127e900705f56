package bbs

import (
	"time"

	pando "github.com/pandoplatform/pando"
)

// Crash policy: Diego's numbers.
const (
	// ImmediateRestarts is how many crashes in a row restart at once.
	ImmediateRestarts = 3
	// CrashBackoffMin is the wait before the first delayed restart; it
	// doubles with every further crash up to CrashBackoffMax.
	CrashBackoffMin = 30 * time.Second
	CrashBackoffMax = 16 * time.Minute
	// MaxCrashes is the crash count at which the BBS stops restarting an
	// instance; it stays CRASHED until the app is restarted (a new
	// Revision).
	MaxCrashes = 200
	// CrashResetAfter is how long an instance must have been RUNNING for its
	// next crash to count as the first again.
	CrashResetAfter = 5 * time.Minute
)

// CrashRestartDelay says what to do after an instance's crashCount-th crash
// in a row (crashCount >= 1): restart after delay (zero: at once), or, when
// restart is false, give up.
func CrashRestartDelay(crashCount int) (delay time.Duration, restart bool) {
	switch {
	case crashCount >= MaxCrashes:
		return 0, false
	case crashCount <= ImmediateRestarts:
		return 0, true
	}
	delay = CrashBackoffMin
	for i := ImmediateRestarts + 1; i < crashCount && delay < CrashBackoffMax; i++ {
		delay *= 2
	}
	return min(delay, CrashBackoffMax), true
}

// nextCrashCount is the crash count after a crash of an instance that was in
// state since the given time: a crash after CrashResetAfter of RUNNING
// starts the count over.
func nextCrashCount(prevCount int, prevState string, since, now time.Time) int {
	if prevState == pando.ActualRunning && now.Sub(since) >= CrashResetAfter {
		prevCount = 0
	}
	return prevCount + 1
}
