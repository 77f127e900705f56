package bbs

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/google/uuid"
	pando "github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/auction"
)

func validateDesired(d pando.DesiredLRP) error {
	switch {
	case d.ProcessGUID == "":
		return pando.Errorf(pando.EInvalid, "desired LRP has no process guid")
	case d.Instances < 0:
		return pando.Errorf(pando.EInvalid, "desired LRP %s: instances must not be negative", d.ProcessGUID)
	case d.MemoryMB < 0 || d.DiskMB < 0:
		return pando.Errorf(pando.EInvalid, "desired LRP %s: memory and disk must not be negative", d.ProcessGUID)
	}
	return nil
}

// DesireLRP creates or updates a desired LRP and starts, stops or replaces
// instances to match it: a new Revision replaces every instance, a new
// Instances count starts missing indices or stops the highest ones, and any
// other change is recorded in place (running instances keep their settings).
// Placement happens before DesireLRP returns; an instance that fits nowhere
// stays UNCLAIMED with its PlacementError and is placed as soon as a cell
// can take it (placement.go).
func (b *BBS) DesireLRP(ctx context.Context, d pando.DesiredLRP) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := validateDesired(d); err != nil {
		return err
	}
	d = cloneDesired(d)

	b.mu.Lock()
	d.UpdatedAt = b.now()
	old, exists := b.st.desired(d.ProcessGUID)
	switch {
	case !exists:
		b.st.putDesired(d)
		b.emitDesiredLocked(pando.EventDesiredLRPChanged, d)
		b.log.Info("lrp desired", "process_guid", d.ProcessGUID, "revision", d.Revision, "instances", d.Instances)
	case old.Revision != d.Revision:
		for _, rec := range b.st.actualsOf(d.ProcessGUID) {
			b.stopAndRemoveLocked(rec)
		}
		b.st.putDesired(d)
		b.emitDesiredLocked(pando.EventDesiredLRPChanged, d)
		b.log.Info("lrp revision changed", "process_guid", d.ProcessGUID,
			"old_revision", old.Revision, "revision", d.Revision, "instances", d.Instances)
	default:
		old.UpdatedAt = d.UpdatedAt
		if reflect.DeepEqual(old, d) {
			b.mu.Unlock()
			return nil
		}
		b.st.putDesired(d)
		b.emitDesiredLocked(pando.EventDesiredLRPChanged, d)
		if d.Instances < old.Instances {
			b.log.Info("lrp scaled down", "process_guid", d.ProcessGUID, "instances", d.Instances)
		}
	}
	b.trimExtraLocked(d)
	b.fillMissingLocked(d)
	stops := b.takeStopsLocked()
	b.mu.Unlock()

	b.runStops(ctx, stops)
	b.placeLRPs(ctx, false)
	return nil
}

// UpdateDesiredLRP changes a desired LRP's instance count or routes, as
// DesireLRP would with those fields changed.
func (b *BBS) UpdateDesiredLRP(ctx context.Context, processGUID string, u pando.DesiredLRPUpdate) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// DesireLRP keeps the update atomic enough: a concurrent change of the
	// same LRP wins or loses as a whole, as two DesireLRP calls do.
	d, err := b.DesiredLRP(ctx, processGUID)
	if err != nil {
		return err
	}
	if u.Instances != nil {
		d.Instances = *u.Instances
	}
	if u.Routes != nil {
		d.Routes = slices.Clone(*u.Routes)
	}
	return b.DesireLRP(ctx, d)
}

// RemoveDesiredLRP forgets a desired LRP and stops all its instances.
func (b *BBS) RemoveDesiredLRP(ctx context.Context, processGUID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	d, ok := b.st.desired(processGUID)
	if !ok {
		b.mu.Unlock()
		return pando.Errorf(pando.ENotFound, "desired LRP %s not found", processGUID)
	}
	for _, rec := range slices.Backward(b.st.actualsOf(processGUID)) {
		b.stopAndRemoveLocked(rec)
	}
	b.st.deleteDesired(processGUID)
	b.emitDesiredLocked(pando.EventDesiredLRPRemoved, d)
	stops := b.takeStopsLocked()
	b.mu.Unlock()
	b.log.Info("lrp removed", "process_guid", processGUID)

	b.runStops(ctx, stops)
	return nil
}

// DesiredLRP returns a desired LRP.
func (b *BBS) DesiredLRP(ctx context.Context, processGUID string) (pando.DesiredLRP, error) {
	if err := ctx.Err(); err != nil {
		return pando.DesiredLRP{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	d, ok := b.st.desired(processGUID)
	if !ok {
		return pando.DesiredLRP{}, pando.Errorf(pando.ENotFound, "desired LRP %s not found", processGUID)
	}
	return cloneDesired(d), nil
}

// DesiredLRPs returns every desired LRP, sorted by process GUID.
func (b *BBS) DesiredLRPs(ctx context.Context) ([]pando.DesiredLRP, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	all := b.st.allDesired()
	for i := range all {
		all[i] = cloneDesired(all[i])
	}
	return all, nil
}

// ActualLRPs returns one instance per index of a process, sorted by index
// (every process's, by process GUID then index, when processGUID is
// empty). While a cell drains, an index whose replacement is not RUNNING
// yet shows the evacuating instance that still serves it, if that one is
// RUNNING.
func (b *BBS) ActualLRPs(ctx context.Context, processGUID string) ([]pando.ActualLRP, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var recs []actualRecord
	if processGUID == "" {
		recs = b.st.allActuals()
	} else {
		recs = b.st.actualsOf(processGUID)
	}
	var out []pando.ActualLRP
	for _, rec := range recs {
		// Records come sorted by index, the primary first.
		if n := len(out); n > 0 && out[n-1].ProcessGUID == rec.ProcessGUID && out[n-1].Index == rec.Index {
			if rec.evacuating && rec.State == pando.ActualRunning && out[n-1].State != pando.ActualRunning {
				out[n-1] = cloneActual(rec.ActualLRP)
			}
			continue
		}
		out = append(out, cloneActual(rec.ActualLRP))
	}
	return out, nil
}

// RetireActualLRP stops one instance and starts a new one for its index.
func (b *BBS) RetireActualLRP(ctx context.Context, processGUID, instanceGUID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	rec, ok := b.st.actual(instanceGUID)
	if !ok || rec.ProcessGUID != processGUID {
		b.mu.Unlock()
		return pando.Errorf(pando.ENotFound, "instance %s of process %s not found", instanceGUID, processGUID)
	}
	if rec.evacuating {
		// Its replacement already has the index.
		b.stopAndRemoveLocked(rec)
	} else {
		b.rescheduleLocked(rec)
	}
	stops := b.takeStopsLocked()
	b.mu.Unlock()
	b.log.Info("instance retired", "process_guid", processGUID, "instance_index", rec.Index, "instance_guid", instanceGUID)

	b.runStops(ctx, stops)
	b.placeLRPs(ctx, false)
	return nil
}

// putActualLocked stores a record and keeps the indexes of unplaced and
// restarting records right. Every write of an actual record goes through
// here or removeActualLocked.
func (b *BBS) putActualLocked(rec actualRecord, emit bool) {
	b.st.putActual(rec)
	delete(b.unplaced, rec.InstanceGUID)
	delete(b.waiting, rec.InstanceGUID)
	if rec.State == pando.ActualUnclaimed && rec.CellID == "" && !rec.evacuating {
		if rec.PlacementError == "" {
			b.unplaced[rec.InstanceGUID] = struct{}{}
		} else {
			if b.waiting == nil {
				b.waiting = map[string]struct{}{}
			}
			b.waiting[rec.InstanceGUID] = struct{}{}
		}
	}
	if rec.State == pando.ActualCrashed && !rec.restartAt.IsZero() {
		b.restarts[rec.InstanceGUID] = rec.restartAt
	} else {
		delete(b.restarts, rec.InstanceGUID)
	}
	if emit {
		b.emitActualLocked(pando.EventActualLRPChanged, rec.ActualLRP)
	}
}

func (b *BBS) removeActualLocked(rec actualRecord) {
	b.st.deleteActual(rec.InstanceGUID)
	delete(b.unplaced, rec.InstanceGUID)
	delete(b.waiting, rec.InstanceGUID)
	delete(b.restarts, rec.InstanceGUID)
	b.emitActualLocked(pando.EventActualLRPRemoved, rec.ActualLRP)
}

// stopAndRemoveLocked forgets a record and queues a stop on its cell.
func (b *BBS) stopAndRemoveLocked(rec actualRecord) {
	b.removeActualLocked(rec)
	b.queueStopLocked(rec.CellID, rec.ProcessGUID, rec.InstanceGUID)
}

func (b *BBS) queueStopLocked(cellID, processGUID, instanceGUID string) {
	if cellID == "" {
		return
	}
	e, ok := b.cells[cellID]
	if !ok {
		return
	}
	b.pendingStops = append(b.pendingStops, stopOp{cell: e.cell, processGUID: processGUID, instanceGUID: instanceGUID})
}

func (b *BBS) takeStopsLocked() []stopOp {
	s := b.pendingStops
	b.pendingStops = nil
	return s
}

// newInstanceLocked creates an UNCLAIMED record for an index, waiting for an
// auction. Crash history carries over when an instance is replaced.
func (b *BBS) newInstanceLocked(processGUID string, revision, index, crashCount int, crash *pando.Failure, crashReason string) actualRecord {
	rec := actualRecord{ActualLRP: pando.ActualLRP{
		ProcessGUID:  processGUID,
		Revision:     revision,
		Index:        index,
		InstanceGUID: uuid.NewString(),
		State:        pando.ActualUnclaimed,
		CrashCount:   crashCount,
		Crash:        crash,
		CrashReason:  crashReason,
		Since:        b.now(),
	}}
	b.putActualLocked(rec, true)
	return rec
}

// rescheduleLocked replaces an instance with a new one on the same index
// (a new instance GUID, auctioned again) and stops the old one if its cell
// is still registered.
func (b *BBS) rescheduleLocked(rec actualRecord) {
	b.stopAndRemoveLocked(rec)
	b.newInstanceLocked(rec.ProcessGUID, rec.Revision, rec.Index, rec.CrashCount, rec.Crash, rec.CrashReason)
}

// fillMissingLocked creates records for indices that have no primary one.
func (b *BBS) fillMissingLocked(d pando.DesiredLRP) {
	have := make(map[int]bool, d.Instances)
	for _, rec := range b.st.actualsOf(d.ProcessGUID) {
		if !rec.evacuating {
			have[rec.Index] = true
		}
	}
	for i := range d.Instances {
		if !have[i] {
			b.newInstanceLocked(d.ProcessGUID, d.Revision, i, 0, nil, "")
		}
	}
}

// trimExtraLocked stops instances beyond the desired count, highest index
// first, and duplicates of an index (keeping the most advanced one).
func (b *BBS) trimExtraLocked(d pando.DesiredLRP) {
	recs := b.st.actualsOf(d.ProcessGUID)
	primary := map[int]actualRecord{}
	for _, rec := range slices.Backward(recs) {
		if rec.Index >= d.Instances || rec.Revision != d.Revision {
			b.stopAndRemoveLocked(rec)
			continue
		}
		if rec.evacuating {
			continue
		}
		if p, ok := primary[rec.Index]; ok {
			keep, drop := p, rec
			if stateRank(rec.State) > stateRank(p.State) {
				keep, drop = rec, p
			}
			b.stopAndRemoveLocked(drop)
			primary[rec.Index] = keep
			continue
		}
		primary[rec.Index] = rec
	}
}

func stateRank(s string) int {
	switch s {
	case pando.ActualRunning:
		return 3
	case pando.ActualClaimed:
		return 2
	case pando.ActualUnclaimed:
		return 1
	}
	return 0
}

// placeLRPs auctions UNCLAIMED instances that have no cell and starts them
// on the winning cells. With retryFailed, instances whose last auction failed
// are tried again too (convergence does that, and a dispatch after a cell
// freed capacity; fresh work does not, so a full platform is not
// re-auctioned on every change).
func (b *BBS) placeLRPs(ctx context.Context, retryFailed bool) {
	b.placeMu.Lock()
	defer b.placeMu.Unlock()

	type item struct {
		rec     actualRecord
		desired *pando.DesiredLRP // shared by the process's instances
	}
	b.mu.Lock()
	if b.holdingLocked() {
		// Cells present before a restart may still report these
		// instances running (adopt.go).
		b.mu.Unlock()
		return
	}
	var guids []string
	for guid := range b.unplaced {
		guids = append(guids, guid)
	}
	if retryFailed {
		for guid := range b.waiting {
			guids = append(guids, guid)
		}
	}
	// Items are large: they live in one array and move by pointer.
	items := make([]item, 0, len(guids))
	work := make([]*item, 0, len(guids))
	desired := map[string]*pando.DesiredLRP{}
	for _, guid := range guids {
		rec, ok := b.st.actual(guid)
		if !ok || rec.placing {
			continue
		}
		d := desired[rec.ProcessGUID]
		if d == nil {
			dd, ok := b.st.desired(rec.ProcessGUID)
			if !ok {
				continue
			}
			d = &dd
			desired[rec.ProcessGUID] = d
		}
		if d.Revision != rec.Revision {
			continue
		}
		rec.placing = true
		b.putActualLocked(rec, false)
		items = append(items, item{rec: rec, desired: d})
		work = append(work, &items[len(items)-1])
	}
	refs := b.cellRefsLocked()
	b.mu.Unlock()
	if len(work) == 0 {
		return
	}
	slices.SortFunc(work, func(x, y *item) int { return compareRecords(x.rec, y.rec) })

	states := b.cellStates(ctx, refs)
	reqs := make([]auction.LRPRequest, len(work))
	for i, w := range work {
		reqs[i] = auction.LRPRequest{
			ProcessGUID: w.rec.ProcessGUID, Index: w.rec.Index,
			MemoryMB: w.desired.MemoryMB, DiskMB: w.desired.DiskMB, Stack: w.desired.Stack,
			ImageDigest: pando.ImageDigest(w.desired.Image),
		}
	}
	results := auction.PlaceLRPs(states, reqs)

	type start struct {
		cell pando.Cell
		*item
	}
	starts := make([]start, 0, len(results))
	b.mu.Lock()
	now := b.now()
	for i, res := range results {
		rec, ok := b.st.actual(work[i].rec.InstanceGUID)
		if !ok || !rec.placing {
			continue // removed while the auction ran
		}
		rec.placing = false
		e, cellOK := b.cells[res.CellID]
		if res.PlacementError != "" || !cellOK {
			why := res.PlacementError
			if why == "" {
				why = "cell " + res.CellID + " went away during placement"
			}
			changed := rec.PlacementError != why
			rec.PlacementError = why
			b.putActualLocked(rec, changed)
			if changed {
				b.log.Warn("instance placement failed", "process_guid", rec.ProcessGUID,
					"instance_index", rec.Index, "reason", why)
			}
			if res.PlacementError != "" {
				b.strandEvacueesLocked(rec, work[i].desired.AppGUID)
			}
			continue
		}
		rec.CellID = res.CellID
		rec.PlacementError = ""
		rec.placedAt = now
		b.putActualLocked(rec, true)
		work[i].rec = rec
		starts = append(starts, start{cell: e.cell, item: work[i]})
	}
	b.mu.Unlock()

	parallel(len(starts), func(i int) {
		s := starts[i]
		cctx, cancel := context.WithTimeout(ctx, cellCallTimeout)
		defer cancel()
		err := s.cell.StartLRP(cctx, cloneDesired(*s.desired), s.rec.Index, s.rec.InstanceGUID)
		if err == nil {
			b.mu.Lock()
			b.seenOnCellLocked(s.rec.InstanceGUID, s.rec.CellID)
			b.mu.Unlock()
			return
		}
		b.log.Warn("start instance", "cell_id", s.rec.CellID, "process_guid", s.rec.ProcessGUID,
			"instance_index", s.rec.Index, "instance_guid", s.rec.InstanceGUID, "error", err)
		b.mu.Lock()
		defer b.mu.Unlock()
		rec, ok := b.st.actual(s.rec.InstanceGUID)
		if !ok || rec.State != pando.ActualUnclaimed || rec.CellID != s.rec.CellID {
			return
		}
		// Back to the auction; convergence retries it.
		rec.CellID = ""
		rec.PlacementError = fmt.Sprintf("cell %s could not start the instance: %v", s.rec.CellID, err)
		b.putActualLocked(rec, true)
	})
}

// stuckAfter is how long an instance may sit placed-but-unclaimed or
// CLAIMED before convergence places it again.
func (b *BBS) stuckAfter(startTimeout time.Duration) time.Duration {
	t := startTimeout
	if t <= 0 {
		t = DefaultStartTimeout
	}
	return t + b.cfg.StuckMargin
}
