package runc

import (
	"context"
	"fmt"
	"time"

	"github.com/pandoplatform/pando"
)

// A container's host ids and user namespace need nothing of its spec: a
// caller that first gets the container's layers or droplet can have them
// made meanwhile (Prepare), and Run then starts from them, off the
// critical path of a start (20-40 ms quiet, 100 ms and more under load:
// the namespace's holder is a process of its own).

// preparedFor is how long prepared ids and namespace wait for their Run;
// an older preparation is given back and Run makes its own.
const preparedFor = 2 * time.Minute

type prepared struct {
	lease  *idLease
	userns *userNS
	made   time.Time
}

// discard kills the namespace's holder and frees the ids.
func (p *prepared) discard(b *Backend, id string) {
	p.userns.close()
	if err := p.lease.release(); err != nil {
		b.log.Error("release prepared host ids", "container_id", id, "error", err)
	}
}

// Prepare makes the host ids and user namespace of container id ahead of
// its Run, which uses them if it comes within preparedFor. release gives
// them back if no Run took them (call it once the container is destroyed
// or will not be run; it is idempotent and harmless after a Run). A
// failed Prepare costs the Run nothing: it makes them itself.
func (b *Backend) Prepare(ctx context.Context, id string) (release func(), err error) {
	if !validID(id) {
		return nil, pando.Errorf(pando.EInvalid, "container id %q: use 1-128 letters, digits, '_', '.' or '-', starting with a letter or digit", id)
	}
	b.mu.Lock()
	_, dup := b.prepared[id]
	_, live := b.live[id]
	b.mu.Unlock()
	if dup || live {
		return func() {}, nil
	}
	lease, err := b.ids.acquire(b.stateDir + " " + id)
	if err != nil {
		return nil, fmt.Errorf("prepare container %s: %w", id, err)
	}
	// The holder outlives the wait and a start after it, and no more if
	// this process dies.
	ns, err := newUserNS(ctx, b.unshare, lease, preparedFor+b.startTimeout+time.Minute)
	if err != nil {
		_ = lease.release()
		return nil, fmt.Errorf("prepare container %s: %w", id, err)
	}
	p := &prepared{lease: lease, userns: ns, made: time.Now()}
	b.mu.Lock()
	_, dup = b.prepared[id]
	_, live = b.live[id]
	closed := b.isClosing()
	if !dup && !live && !closed {
		b.prepared[id] = p
	}
	b.mu.Unlock()
	if dup || live || closed {
		p.discard(b, id)
		return func() {}, nil
	}
	return func() {
		b.mu.Lock()
		mine := b.prepared[id] == p
		if mine {
			delete(b.prepared, id)
		}
		b.mu.Unlock()
		if mine {
			p.discard(b, id)
		}
	}, nil
}

// takePrepared hands Run the preparation of id when it is fresh enough
// (nil: none); a stale one is given back.
func (b *Backend) takePrepared(id string) *prepared {
	b.mu.Lock()
	p, ok := b.prepared[id]
	delete(b.prepared, id)
	b.mu.Unlock()
	if !ok {
		return nil
	}
	if time.Since(p.made) > preparedFor || p.userns.cmd.ProcessState != nil {
		p.discard(b, id)
		return nil
	}
	return p
}

// discardPrepared gives back every preparation no Run took (Close).
func (b *Backend) discardPrepared() {
	b.mu.Lock()
	ps := b.prepared
	b.prepared = map[string]*prepared{}
	b.mu.Unlock()
	for id, p := range ps {
		p.discard(b, id)
	}
}

func (b *Backend) isClosing() bool {
	select {
	case <-b.closing:
		return true
	default:
		return false
	}
}
