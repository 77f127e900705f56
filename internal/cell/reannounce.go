package cell

import "github.com/pandoplatform/pando"

// Reannounce reports every instance the cell runs (CLAIMED or RUNNING)
// again. A cell the server had lost calls it when it is registered
// again: the server keeps the instances it still wants here and stops
// those it placed elsewhere meanwhile, so no index runs twice.
func (r *Rep) Reannounce() {
	r.mu.Lock()
	list := make([]*instance, 0, len(r.instances))
	for _, i := range r.instances {
		list = append(list, i)
	}
	r.mu.Unlock()
	for _, i := range list {
		switch st := i.getState(); st {
		case pando.ActualClaimed, pando.ActualRunning:
			r.reportActual(r.actual(i, st))
		}
	}
}
