package bbs

import (
	"context"
	"sync"

	pando "github.com/pandoplatform/pando"
)

// Event types.
const (
	EventDesiredChanged = "desired_changed"
	EventDesiredRemoved = "desired_removed"
	EventActualChanged  = "actual_changed"
	EventActualRemoved  = "actual_removed"
	EventTaskChanged    = "task_changed"
	// EventResync tells a subscriber that fell behind that events were
	// dropped: it must re-read the full state (DesiredLRPs, ActualLRPs).
	EventResync = "resync"
)

// Event is one change in the BBS. Desired, Actual and Task point at copies
// shared by all subscribers: read them, do not modify them.
type Event struct {
	Type        string
	ProcessGUID string
	Desired     *pando.DesiredLRP
	Actual      *pando.ActualLRP
	Task        *pando.Task
}

// subscriber queues events for one Subscribe call. The publisher never
// blocks: when the queue is full it is replaced by a single resync event.
type subscriber struct {
	max    int
	mu     sync.Mutex
	queue  []Event
	signal chan struct{}
}

func (s *subscriber) push(e Event) {
	s.mu.Lock()
	if len(s.queue) >= s.max {
		// Everything queued is superseded by a re-read of the state, which
		// already reflects e.
		s.queue = append(s.queue[:0], Event{Type: EventResync})
	} else {
		s.queue = append(s.queue, e)
	}
	s.mu.Unlock()
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

func (s *subscriber) pop() (Event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return Event{}, false
	}
	e := s.queue[0]
	s.queue[0] = Event{}
	s.queue = s.queue[1:]
	return e, true
}

// Subscribe returns a stream of every change from now on. The channel is
// closed when ctx ends. A subscriber that falls more than Config.EventBuffer
// events behind gets one EventResync instead of the events it missed.
func (b *BBS) Subscribe(ctx context.Context) <-chan Event {
	out := make(chan Event, 64)
	if ctx.Err() != nil {
		close(out)
		return out
	}
	s := &subscriber{max: b.cfg.EventBuffer, signal: make(chan struct{}, 1)}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	go func() {
		defer close(out)
		defer func() {
			b.mu.Lock()
			delete(b.subs, s)
			b.mu.Unlock()
		}()
		for {
			e, ok := s.pop()
			if !ok {
				select {
				case <-ctx.Done():
					return
				case <-s.signal:
				}
				continue
			}
			select {
			case <-ctx.Done():
				return
			case out <- e:
			}
		}
	}()
	return out
}

// publishLocked fans an event out to every subscriber. The caller holds
// b.mu, so subscribers see events in the order the state changed.
func (b *BBS) publishLocked(e Event) {
	for s := range b.subs {
		s.push(e)
	}
}

func (b *BBS) emitDesiredLocked(typ string, d pando.DesiredLRP) {
	if len(b.subs) == 0 {
		return
	}
	c := cloneDesired(d)
	b.publishLocked(Event{Type: typ, ProcessGUID: d.ProcessGUID, Desired: &c})
}

func (b *BBS) emitActualLocked(typ string, a pando.ActualLRP) {
	if len(b.subs) == 0 {
		return
	}
	c := cloneActual(a)
	b.publishLocked(Event{Type: typ, ProcessGUID: a.ProcessGUID, Actual: &c})
}

func (b *BBS) emitTaskLocked(t pando.Task) {
	if len(b.subs) == 0 {
		return
	}
	c := cloneTask(t)
	b.publishLocked(Event{Type: EventTaskChanged, Task: &c})
}
