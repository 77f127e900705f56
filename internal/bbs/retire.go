package bbs

import (
	"context"

	pando "github.com/pandoplatform/pando"
)

// RestartInstance stops the instance at index of a process and starts a
// fresh one in its place (cf restart-app-instance; Diego's
// RetireActualLRP followed by convergence, done at once). The new instance
// has a new GUID and no crash history: the user asked for a clean start.
// An index the process does not desire is ENotFound.
func (b *BBS) RestartInstance(ctx context.Context, processGUID string, index int) error {
	b.mu.Lock()
	d, ok := b.st.desired(processGUID)
	if !ok || index < 0 || index >= d.Instances {
		b.mu.Unlock()
		return pando.Errorf(pando.ENotFound, "instance %d of process %s not found", index, processGUID)
	}
	for _, rec := range b.st.actualsOf(processGUID) {
		if rec.Index == index && !rec.evacuating {
			b.stopAndRemoveLocked(rec)
		}
	}
	b.newInstanceLocked(processGUID, d.Revision, index, 0, "")
	stops := b.takeStopsLocked()
	b.mu.Unlock()
	b.log.Info("instance restarted by request", "process_guid", processGUID, "instance_index", index)

	b.runStops(ctx, stops)
	b.placeLRPs(ctx, false)
	return nil
}
