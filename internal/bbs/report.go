package bbs

import (
	"context"
	"strings"
	"time"

	pando "github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/failurelog"
)

// The BBS is what cells report to. Reports only change state and queue
// work: cells are called back from Run, never from inside a report, so a
// cell may report while holding its own locks.
var _ pando.CellReporter = (*BBS)(nil)

// ActualLRPChanged records a cell's report on an instance (CLAIMED, RUNNING
// or CRASHED). A report on an instance the BBS no longer wants makes the BBS
// stop it on that cell.
//
// An instance the BBS does not know, on a cell that has not sent its
// inventory since a server restart, is adopted when it runs the desired
// revision of its process and no other instance holds its index
// (adopt.go).
func (b *BBS) ActualLRPChanged(ctx context.Context, a pando.ActualLRP) error {
	b.mu.Lock()
	defer b.wake()
	defer b.mu.Unlock()
	_, awaited := b.awaiting[a.CellID]
	b.actualReportLocked(a, awaited)
	return nil
}

func (b *BBS) actualReportLocked(a pando.ActualLRP, mayAdopt bool) reportOutcome {
	out, _ := b.applyActualLocked(a, mayAdopt)
	if out == reportStopped && a.State != pando.ActualCrashed {
		b.log.Info("stopping undesired instance", "cell_id", a.CellID,
			"process_guid", a.ProcessGUID, "instance_guid", a.InstanceGUID)
		b.queueStopLocked(a.CellID, a.ProcessGUID, a.InstanceGUID)
	}
	return out
}

// applyActualLocked records a cell's report on an instance the BBS wants
// there (or adopts it); an instance it does not want is reportStopped,
// with why, and left for the caller to stop.
func (b *BBS) applyActualLocked(a pando.ActualLRP, mayAdopt bool) (reportOutcome, string) {
	if a.State == pando.ActualCrashed {
		b.capacityFreedLocked() // the cell tore the container down
	}

	rec, ok := b.st.actual(a.InstanceGUID)
	if !ok && mayAdopt && b.adoptLocked(a) {
		return reportAdopted, ""
	}
	if !ok || rec.ProcessGUID != a.ProcessGUID || (rec.CellID != "" && a.CellID != "" && rec.CellID != a.CellID) {
		return reportStopped, b.unwantedReasonLocked(a, rec, ok)
	}
	if rec.State == pando.ActualCrashed {
		return reportKept, "" // a late report about a container that already crashed
	}
	now := b.now()
	switch a.State {
	case pando.ActualClaimed, pando.ActualRunning:
		if rec.State == pando.ActualRunning && a.State == pando.ActualClaimed {
			return reportKept, "" // reordered reports: RUNNING already seen
		}
		next := rec
		if next.State != a.State {
			next.Since = now
		}
		next.State = a.State
		if next.CellID == "" {
			next.CellID = a.CellID
		}
		next.Address, next.Port, next.Ports = a.Address, a.Port, cloneActual(a).Ports
		next.StartedAt = a.StartedAt
		if a.State == pando.ActualRunning && next.StartedAt.IsZero() {
			next.StartedAt = now
		}
		next.PlacementError = ""
		if a.State == pando.ActualClaimed && rec.Details != "" && a.Details == "" {
			next.startingAt = now // its start begins only now
		}
		next.Details = a.Details
		if next.seenEpoch == 0 {
			next.seenEpoch = b.epochs.seq
		}
		b.putActualLocked(next, !sameReport(rec, next))
		if a.State == pando.ActualRunning && !rec.evacuating {
			b.finishEvacuationLocked(rec.ProcessGUID, rec.Index)
		}
	case pando.ActualCrashed:
		b.crashLocked(rec, a.Crash, a.CrashReason)
	}
	return reportKept, ""
}

func sameReport(x, y actualRecord) bool {
	if x.State != y.State || x.CellID != y.CellID || x.Address != y.Address || x.Port != y.Port ||
		!x.StartedAt.Equal(y.StartedAt) || x.PlacementError != y.PlacementError || x.Details != y.Details || len(x.Ports) != len(y.Ports) {
		return false
	}
	for i := range x.Ports {
		if x.Ports[i] != y.Ports[i] {
			return false
		}
	}
	return true
}

// crashLocked applies the crash policy to a crashed instance: it stays
// CRASHED with its count and why (crash, or reason from a cell that
// predates pando.Failure), and is replaced now, after a backoff, or never.
func (b *BBS) crashLocked(rec actualRecord, crash *pando.Failure, reason string) {
	if rec.evacuating {
		// Its replacement is already the index's instance.
		b.stopAndRemoveLocked(rec)
		return
	}
	now := b.now()
	count := nextCrashCount(rec.CrashCount, rec.State, rec.Since, now)
	delay, restart := CrashRestartDelay(count)
	neverHealthy := crash != nil && crash.Kind == pando.FailureHealthCheckTimeout ||
		crash == nil && strings.HasPrefix(reason, pando.HealthCheckTimedOut)
	if restart && delay == 0 && neverHealthy {
		// Starting again at once would only wait out the same start
		// timeout: the instance stays CRASHED for the first backoff, so
		// whoever waits for the start learns it failed.
		delay = CrashBackoffMin
	}

	crashed := rec
	crashed.State = pando.ActualCrashed
	crashed.CrashCount = count
	crashed.Crash, crashed.CrashReason = crash, reason
	crashed.Since = now
	crashed.Address, crashed.Port, crashed.Ports = "", 0, nil
	crashed.Details = ""
	crashed.restartAt = time.Time{}
	if restart {
		crashed.restartAt = now.Add(delay)
	}
	b.putActualLocked(crashed, true)
	// The cell cleans up crashed containers itself; the stop makes sure.
	b.queueStopLocked(crashed.CellID, crashed.ProcessGUID, crashed.InstanceGUID)

	log := b.log.With("process_guid", rec.ProcessGUID, "instance_index", rec.Index,
		"instance_guid", rec.InstanceGUID, "crash_count", count, "crash", failurelog.Of(crash), "reason", reason)
	switch {
	case !restart:
		log.Warn("instance crashed too often, not restarting")
	case delay == 0:
		log.Info("instance crashed, restarting")
		b.restartLocked(crashed)
	default:
		log.Info("instance crashed, restart delayed", "delay", delay)
	}
}

// restartLocked replaces a CRASHED record with a fresh UNCLAIMED instance on
// the same index, keeping the crash history.
func (b *BBS) restartLocked(rec actualRecord) {
	b.removeActualLocked(rec)
	b.newInstanceLocked(rec.ProcessGUID, rec.Revision, rec.Index, rec.CrashCount, rec.Crash, rec.CrashReason)
}

// restartDue restarts crashed instances whose backoff is over.
func (b *BBS) restartDue() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.restartDueLocked(b.now())
}

func (b *BBS) restartDueLocked(now time.Time) {
	for guid, at := range b.restarts {
		if at.After(now) {
			continue
		}
		if rec, ok := b.st.actual(guid); ok && rec.State == pando.ActualCrashed {
			b.restartLocked(rec)
		} else {
			delete(b.restarts, guid)
		}
	}
}

// ActualLRPRemoved records that a cell no longer has an instance. A crashed
// instance keeps its CRASHED record (its restart is scheduled); an instance
// that vanished otherwise is forgotten, and convergence starts its index
// again.
func (b *BBS) ActualLRPRemoved(ctx context.Context, processGUID, instanceGUID string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	// Even for an instance the BBS already forgot: the cell freed its
	// capacity, and confirms a stop that may still be retried.
	b.capacityFreedLocked()
	b.dropLaterStopsLocked("", instanceGUID)
	rec, ok := b.st.actual(instanceGUID)
	if !ok || rec.ProcessGUID != processGUID || rec.State == pando.ActualCrashed {
		return nil
	}
	if rec.State == pando.ActualUnclaimed && rec.CellID == "" {
		return nil // not on any cell yet
	}
	if !rec.evacuating {
		// A cell stopping (or a server shutting down) removes its
		// instances; convergence starts them again where it can.
		b.log.Info("instance removed by its cell", "cell_id", rec.CellID,
			"process_guid", processGUID, "instance_index", rec.Index, "instance_guid", instanceGUID)
	}
	b.removeActualLocked(rec)
	return nil
}
