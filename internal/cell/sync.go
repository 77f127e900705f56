package cell

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/pandoplatform/pando"
)

// The periodic sync (Diego's rep bulk sync): every sync period the cell
// sends what it runs, in one message, and stops the instances and
// cancels the tasks the server answers it does not want, so that a
// duplicate the server forgot without telling the cell (a lost stop, a
// server restart that missed the cell) does not run for good.

// Syncer is the server side of the periodic sync: the BBS in the
// server's process, the server's cell API on a joined cell.
type Syncer interface {
	SyncCell(ctx context.Context, cellID string, inv pando.CellInventory) (pando.CellSyncAnswer, error)
}

// DefaultSyncInterval is how often a cell syncs by default.
const DefaultSyncInterval = 30 * time.Second

// syncTimeout bounds one sync.
const syncTimeout = 30 * time.Second

// RunSync syncs the cell with s every interval (DefaultSyncInterval when
// not positive), each wait jittered by up to a fifth either way so that
// cells spread their syncs, until ctx ends or the cell shuts down. A sync
// that fails is logged and tried again the next period.
func (r *Rep) RunSync(ctx context.Context, s Syncer, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultSyncInterval
	}
	for {
		wait := interval - interval/5 + time.Duration(rand.Int64N(int64(2*interval/5)+1))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-r.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		sctx, cancel := context.WithTimeout(ctx, syncTimeout)
		err := r.SyncOnce(sctx, s)
		cancel()
		switch {
		case err == nil, ctx.Err() != nil:
		case pando.IsNotFound(err):
			// Not registered (the server restarted or lost the cell):
			// the presence renewal registers it and sends its inventory.
			r.log.Debug("sync with the server: not registered yet", "error", err)
		default:
			r.log.Warn("sync with the server", "error", err)
		}
	}
}

// markEnding lists an instance as ending (Inventory's Ending) until the
// returned func is called: from before its record goes until its end is
// reported, so that no sync meanwhile has the server think it lost.
func (r *Rep) markEnding(guid string) (done func()) {
	r.mu.Lock()
	r.ending[guid] = struct{}{}
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		delete(r.ending, guid)
		r.mu.Unlock()
	}
}

// SyncOnce sends the cell's inventory to s and acts on the answer: it
// stops the instances and cancels the tasks the server does not want,
// each with a CELL line in its app's log saying why, and reports gone an
// instance the server adopted that ended since the inventory was taken.
//
// The inventory carries the epoch mark of the last answer (taken before
// the inventory), so that the server knows what it must list: an
// instance or task the server placed here before that mark and the
// inventory lacks is lost, and the server replaces or fails it.
func (r *Rep) SyncOnce(ctx context.Context, s Syncer) error {
	r.mu.Lock()
	epoch := r.syncEpoch
	r.mu.Unlock()
	inv := r.Inventory()
	inv.Epoch = epoch
	ans, err := s.SyncCell(ctx, r.cfg.ID, inv)
	if err != nil {
		return fmt.Errorf("sync cell %s: %w", r.cfg.ID, err)
	}
	r.mu.Lock()
	r.syncEpoch = ans.Epoch
	r.mu.Unlock()
	var processOf map[string]string
	for _, v := range ans.Actuals {
		r.mu.Lock()
		i, ok := r.instances[v.GUID]
		r.mu.Unlock()
		switch v.Action {
		case pando.SyncStop:
			if !ok {
				continue
			}
			if stopping, _ := i.stopRequested(); stopping {
				// Already stopping (the server's stop, an evacuation's):
				// the server no longer lists it for that reason.
				continue
			}
			r.log.Info("stopping an instance the server does not want", "process_guid", i.lrp.ProcessGUID,
				"instance_guid", v.GUID, "reason", v.Reason)
			r.cellLog(i, "OUT", "Stopping instance %s: the platform does not want it on this cell (%s)", v.GUID, v.Reason)
			i.requestStop(r.cfg.StopGrace)
		case pando.SyncAdopt:
			if ok {
				if st := i.getState(); st == pando.ActualClaimed || st == pando.ActualRunning {
					continue
				}
			}
			// It ended after the inventory was taken, and its end may
			// have reached the server before the inventory did.
			if processOf == nil {
				processOf = make(map[string]string, len(inv.Actuals))
				for _, a := range inv.Actuals {
					processOf[a.InstanceGUID] = a.ProcessGUID
				}
			}
			r.reportRemoved(processOf[v.GUID], v.GUID)
		}
	}
	for _, v := range ans.Tasks {
		if v.Action != pando.SyncStop {
			continue
		}
		r.mu.Lock()
		tk, ok := r.tasks[v.GUID]
		r.mu.Unlock()
		if !ok {
			continue
		}
		r.log.Info("cancelling a task the server does not want", "task_guid", v.GUID, "reason", v.Reason)
		msg := fmt.Sprintf("Cancelling task %s: the platform does not want it on this cell (%s)", v.GUID, v.Reason)
		switch {
		case tk.t.Run != nil:
			r.emit(tk.t.Run.AppGUID, pando.LogSourceCell, "0", "OUT", msg)
		case tk.t.Staging != nil:
			r.emit(tk.t.Staging.AppGUID, pando.LogSourceCell, "0", "OUT", msg)
		}
		tk.stop(errCancelled, r.cfg.StopGrace)
	}
	return nil
}
