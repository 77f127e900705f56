package router

import (
	crand "crypto/rand"
	"encoding/hex"
	"math/rand/v2"
	"sync"
)

// requestIDs makes X-Vcap-Request-Id values: random (version 4) UUIDs
// from a ChaCha8 stream seeded once from the system's randomness, so a
// request costs no system call for its id. The ids need to be unique, not
// secret.
type requestIDs struct {
	mu  sync.Mutex
	rng *rand.ChaCha8
}

func newRequestIDs() *requestIDs {
	var seed [32]byte
	_, _ = crand.Read(seed[:]) // never fails on Linux (Go 1.24+)
	return &requestIDs{rng: rand.NewChaCha8(seed)}
}

func (g *requestIDs) next() string {
	var u [16]byte
	g.mu.Lock()
	_, _ = g.rng.Read(u[:])
	g.mu.Unlock()
	u[6] = (u[6] & 0x0f) | 0x40 // version 4
	u[8] = (u[8] & 0x3f) | 0x80 // RFC 4122 variant
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}

// bufferPool lends the relay its 32 KiB copy buffers; it holds pointers,
// so that giving one back allocates nothing.
type bufferPool struct{ p *sync.Pool }

func newBufferPool() bufferPool {
	return bufferPool{p: &sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
}

func (bp bufferPool) Get() *[]byte  { return bp.p.Get().(*[]byte) }
func (bp bufferPool) Put(b *[]byte) { bp.p.Put(b) }
