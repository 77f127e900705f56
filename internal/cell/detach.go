package cell

// Detach leaves the cell's work to the next process on its work dir (a
// restarted `pando server` adopts it through Config.Adopter, as after a
// kill -9): it refuses new work and from then on stops, destroys, tears
// down and reports nothing. Containers keep running under their shims,
// records, volumes and host ids stay; a goroutine of the cell that was
// about to stop or clean up something parks until the process exits. It
// returns how many instances and stagings or tasks it left, and is for a
// process about to exit: do not call Shutdown after it.
func (r *Rep) Detach() (instances, tasks int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	r.detachOnce.Do(func() { close(r.detached) })
	return len(r.instances), len(r.tasks)
}

// parkIfDetached blocks for good once the cell is detached. Its callers
// are about to stop a container, destroy it or remove its record, which
// belong to the next process then: a container that ends meanwhile is
// found ended by the next process (an instance is placed again, a staging
// or task finished from its exit status).
func (r *Rep) parkIfDetached() {
	select {
	case <-r.detached:
		r.parked.Add(1)
		select {}
	default:
	}
}
