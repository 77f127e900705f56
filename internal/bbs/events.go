package bbs

import (
	"context"
	"sync"

	pando "github.com/pandoplatform/pando"
)

// eventLog keeps the last Config.EventBuffer events so that a subscriber
// can resume from a sequence number (over HTTP, after a reconnect). It has
// its own lock: the BBS publishes while holding b.mu, so events are logged
// in the order the state changed, and subscribers read without b.mu.
type eventLog struct {
	mu   sync.Mutex
	ring []pando.RuntimeEvent
	// first is the Seq of the oldest event held, next the Seq the next
	// event gets; the log holds first..next-1.
	first, next uint64
	// wake is closed when an event is published while someone waits.
	wake    chan struct{}
	waiting bool
}

// newEventLog starts sequence numbers after start. The BBS passes its start
// time in nanoseconds, so a cursor from an earlier BBS (before a restart)
// is older than any event of this one and gets a resync.
func newEventLog(size int, start uint64) *eventLog {
	return &eventLog{ring: make([]pando.RuntimeEvent, size), first: start + 1, next: start + 1, wake: make(chan struct{})}
}

func (l *eventLog) publish(e pando.RuntimeEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.Seq = l.next
	size := uint64(len(l.ring))
	l.ring[e.Seq%size] = e
	l.next++
	if l.next-l.first > size {
		l.first = l.next - size
	}
	if l.waiting {
		close(l.wake)
		l.wake = make(chan struct{})
		l.waiting = false
	}
}

// position says whether the log can resume after the cursor, and its
// newest Seq.
func (l *eventLog) position(after uint64) (newest uint64, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	newest = l.next - 1
	return newest, after != 0 && after+1 >= l.first && after <= newest
}

// read returns up to n events after the cursor and the newest Seq. ok is
// false when the cursor is not a position in the log: events after it were
// dropped, or it comes from another BBS. wait is closed once an event
// arrives after the ones returned.
func (l *eventLog) read(after uint64, n int) (evs []pando.RuntimeEvent, newest uint64, ok bool, wait <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	newest = l.next - 1
	if after+1 < l.first || after > newest {
		return nil, newest, false, nil
	}
	size := uint64(len(l.ring))
	for s := after + 1; s <= newest && len(evs) < n; s++ {
		evs = append(evs, l.ring[s%size])
	}
	if len(evs) == 0 {
		l.waiting = true
	}
	return evs, newest, true, l.wake
}

// Subscribe streams every change after the event numbered after (see
// pando.Runtime): with after 0, or a cursor the log no longer holds, the
// stream starts with an EventResync. A subscriber more than
// Config.EventBuffer events behind gets an EventResync instead of the
// events it missed. The channel is closed when ctx ends.
func (b *BBS) Subscribe(ctx context.Context, after uint64) (<-chan pando.RuntimeEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The stream's start is fixed now: every change after Subscribe
	// returns is in it, or in the state read after its opening resync.
	newest, ok := b.events.position(after)
	out := make(chan pando.RuntimeEvent, 64)
	b.subscribers.Add(1)
	go func() {
		defer close(out)
		defer b.subscribers.Add(-1)
		send := func(e pando.RuntimeEvent) bool {
			select {
			case <-ctx.Done():
				return false
			case out <- e:
				return true
			}
		}
		cursor := after
		if !ok {
			if !send(pando.RuntimeEvent{Seq: newest, Type: pando.EventResync}) {
				return
			}
			cursor = newest
		}
		for {
			evs, newest, ok, wait := b.events.read(cursor, 256)
			if !ok {
				if !send(pando.RuntimeEvent{Seq: newest, Type: pando.EventResync}) {
					return
				}
				cursor = newest
				continue
			}
			if len(evs) == 0 {
				select {
				case <-ctx.Done():
					return
				case <-wait:
				}
				continue
			}
			for _, e := range evs {
				if !send(e) {
					return
				}
				cursor = e.Seq
			}
		}
	}()
	return out, nil
}

func (b *BBS) emitDesiredLocked(typ pando.EventType, d pando.DesiredLRP) {
	c := cloneDesired(d)
	b.events.publish(pando.RuntimeEvent{Type: typ, ProcessGUID: d.ProcessGUID, Desired: &c})
}

func (b *BBS) emitActualLocked(typ pando.EventType, a pando.ActualLRP) {
	c := cloneActual(a)
	b.events.publish(pando.RuntimeEvent{Type: typ, ProcessGUID: a.ProcessGUID, Actual: &c})
}

// emitTaskLocked publishes a task's change: a completion as
// EventTaskCompleted, anything else as EventTaskChanged.
func (b *BBS) emitTaskLocked(t pando.Task) {
	typ := pando.EventTaskChanged
	if t.State == pando.TaskCompleted {
		typ = pando.EventTaskCompleted
	}
	c := cloneTask(t)
	b.events.publish(pando.RuntimeEvent{Type: typ, Task: &c})
}

func (b *BBS) emitCellLocked(typ pando.EventType, id, state string) {
	b.events.publish(pando.RuntimeEvent{Type: typ, Cell: &pando.CellState{ID: id, State: state}})
}
