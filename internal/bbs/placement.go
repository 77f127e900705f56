package bbs

// Work that fits nowhere stays UNCLAIMED with its PlacementError, and is
// placed as soon as a cell can take it: a cell that registers, or a cell
// reporting that it tore down an instance, a crashed container or a task,
// marks capacity as freed, and the next dispatch auctions the failed work
// again. Nothing else re-auctions it (besides convergence), so a platform
// that is full does not auction on every report.

// capacityFreedLocked notes that a cell may take work it could not before
// and wakes Run to retry failed placements. b.mu must be held.
func (b *BBS) capacityFreedLocked() {
	b.capacityFreed = true
	b.wake()
}

// takeCapacityFreed reports whether capacity was freed since the last
// call, and clears the mark.
func (b *BBS) takeCapacityFreed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	freed := b.capacityFreed
	b.capacityFreed = false
	return freed
}
