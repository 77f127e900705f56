package bbs

import (
	"context"
	"time"

	pando "github.com/pandoplatform/pando"
)

// Stops are delivered until the cell confirms them. Once the BBS forgets
// an instance (scaled down, a stale revision, replaced because its cell
// was lost and came back, an evacuation done, a report on an instance it
// does not want), nothing reports that instance again: a StopLRP lost to
// a slow or briefly unreachable cell would leave it running for good, a
// duplicate that keeps its memory and ports. A failed stop is therefore
// sent again after a backoff (stopRetryMin doubling up to stopRetryMax)
// until the cell answers that it stopped the instance or does not have
// it, or until the cell is gone: a cell that is unregistered and comes
// back reports what it still runs (CellSynced), and the BBS stops those
// then.

const (
	stopRetryMin = time.Second
	stopRetryMax = 30 * time.Second
)

// laterStop is a stop made once its time comes (Run keeps a timer for the
// earliest): a stranded instance's grace (drain.go), or a retry.
type laterStop struct {
	stopOp
	at time.Time
}

// stopRetryDelay is the wait before the attempt that follows the
// attempts-th failed one.
func stopRetryDelay(attempts int) time.Duration {
	d := stopRetryMin
	for i := 1; i < attempts && d < stopRetryMax; i++ {
		d *= 2
	}
	return min(d, stopRetryMax)
}

// runStops stops instances on their cells. A cell that answers that it
// does not have the instance confirms the stop as well as one that stops
// it; any other failure is retried (retryStopLocked).
func (b *BBS) runStops(ctx context.Context, stops []stopOp) {
	if len(stops) == 0 {
		return
	}
	errs := make([]error, len(stops))
	parallel(len(stops), func(i int) {
		s := stops[i]
		cctx, cancel := context.WithTimeout(ctx, cellCallTimeout)
		defer cancel()
		if err := s.cell.StopLRP(cctx, s.processGUID, s.instanceGUID); err != nil && !pando.IsNotFound(err) {
			errs[i] = err
		}
	})
	if ctx.Err() != nil {
		return // shutting down: cells keep their instances for the next server to sort out
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, s := range stops {
		switch {
		case errs[i] != nil:
			b.retryStopLocked(s, errs[i])
		case s.attempts > 0:
			b.log.Info("instance stop delivered", "cell_id", s.cell.ID(), "process_guid", s.processGUID,
				"instance_guid", s.instanceGUID, "attempts", s.attempts+1)
		}
	}
}

// retryStopLocked schedules a failed stop again, unless its cell is gone
// or the BBS wants the instance there after all.
func (b *BBS) retryStopLocked(s stopOp, err error) {
	log := b.log.With("cell_id", s.cell.ID(), "process_guid", s.processGUID,
		"instance_guid", s.instanceGUID, "error", err)
	if !b.stopStillWantedLocked(&s) {
		log.Debug("stop not delivered; no longer needed")
		return
	}
	for _, l := range b.laterStops {
		if l.instanceGUID == s.instanceGUID && l.cell.ID() == s.cell.ID() {
			return // already to be retried (the cell reported the instance again)
		}
	}
	s.attempts++
	delay := stopRetryDelay(s.attempts)
	if s.attempts == 1 {
		log.Warn("instance stop not delivered to its cell, retrying until it is", "retry_in", delay)
	} else {
		log.Debug("instance stop not delivered to its cell, retrying", "attempts", s.attempts, "retry_in", delay)
	}
	b.laterStops = append(b.laterStops, laterStop{stopOp: s, at: b.now().Add(delay)})
	b.wake() // Run arms the retry's timer
}

// stopStillWantedLocked says whether a stop is still to be made, and
// points it at the cell's current registration: not when the cell is
// gone (its inventory, if it comes back, says what it still runs), nor
// when the BBS has the instance on that cell again (adopted back).
func (b *BBS) stopStillWantedLocked(s *stopOp) bool {
	id := s.cell.ID()
	e, ok := b.cells[id]
	if !ok {
		return false
	}
	if rec, ok := b.st.actual(s.instanceGUID); ok && rec.CellID == id {
		return false
	}
	s.cell = e.cell
	return true
}

// dropLaterStopsLocked forgets the held-back stops of an instance its
// cell reported gone (cellID empty), or of every instance on a cell that
// is gone itself (instanceGUID empty).
func (b *BBS) dropLaterStopsLocked(cellID, instanceGUID string) {
	if cellID == "" && instanceGUID == "" {
		return
	}
	kept := b.laterStops[:0]
	for _, s := range b.laterStops {
		if (cellID == "" || s.cell.ID() == cellID) && (instanceGUID == "" || s.instanceGUID == instanceGUID) {
			continue
		}
		kept = append(kept, s)
	}
	clear(b.laterStops[len(kept):])
	b.laterStops = kept
}

// nextLaterStop is when the earliest held-back stop is due.
func (b *BBS) nextLaterStop() (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var next time.Time
	for _, s := range b.laterStops {
		if next.IsZero() || s.at.Before(next) {
			next = s.at
		}
	}
	return next, !next.IsZero()
}

// takeDueLaterStops removes and returns the held-back stops that are due.
func (b *BBS) takeDueLaterStops() []stopOp {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.takeDueLaterStopsLocked(b.now())
}

func (b *BBS) takeDueLaterStopsLocked(now time.Time) []stopOp {
	var due []stopOp
	kept := b.laterStops[:0]
	for _, s := range b.laterStops {
		if now.Before(s.at) {
			kept = append(kept, s)
			continue
		}
		if b.stopStillWantedLocked(&s.stopOp) {
			due = append(due, s.stopOp)
		}
	}
	clear(b.laterStops[len(kept):])
	b.laterStops = kept
	return due
}
