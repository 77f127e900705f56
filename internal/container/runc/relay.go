package runc

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"sync"
	"time"
)

// Acknowledged output (protocol 2). A server that says so (the job's
// "acks", or a hello frame first on a connection it made) gets every
// output frame numbered: the frame's type in capitals, an 8-byte
// big-endian sequence number (increasing per container), then the usual
// payload. It answers with ack frames naming the last number it has
// passed on; the shim keeps each frame until it is acknowledged and sends
// the unacknowledged ones again, first, to the next server that connects.
// So output a server read but never passed on (it was killed) is not
// lost, and a reader drops a number it has seen (none appears twice).
// A server that never says hello (an older one) gets protocol 1 frames,
// delivered once written, as before.
const (
	frameHello      = 'h' // server → shim, no payload: acknowledge from now on
	frameAck        = 'a' // server → shim, 8 bytes: the last number passed on
	frameStdoutSeq  = 'O'
	frameStderrSeq  = 'E'
	frameDroppedSeq = 'D'
	seqBytes        = 8
	// helloWait is how long a shim whose first server acknowledged waits
	// for a later server's hello before taking it for an older server
	// that never says it.
	helloWait = 2 * time.Second
	// exitConfirmWait bounds the wait for the server to close the
	// connection after the exit frame.
	exitConfirmWait = 10 * time.Second
)

// entry is one output frame the shim holds: not yet written, or written
// to a server that acknowledges and not yet acknowledged.
type entry struct {
	seq  uint64
	typ  byte   // frameStdout, frameStderr or frameDropped
	data []byte // for frameDropped, lines and bytes (16 bytes)
}

func (e entry) size() int { return frameHeader + len(e.data) }

// relay moves the output of a shim's pipes to whichever server is
// connected. It holds at most max bytes of output: while a server reads,
// a full relay makes the pipes wait (the server paces its reading; the app
// blocks as on a plain pipe); while none does, the oldest output goes to
// make room, counted, and the count goes to the next server as a dropped
// frame in its place.
type relay struct {
	max       int
	helloWait time.Duration
	acksFirst bool          // servers acknowledge: wait for a later one's hello
	delivered chan struct{} // closed once a server has the exit frame

	mu   sync.Mutex
	cond *sync.Cond
	conn net.Conn // the current server; nil when none
	// draining counts the replaced connections still read: their
	// server's last acks come before anything is sent again.
	draining int
	acks     bool    // the current server acknowledges
	decided  bool    // whether it acknowledges is known
	held     []entry // output not acknowledged, oldest first
	bytes    int     // size of held
	sent     uint64  // held frames up to this number were written to conn
	nextSeq  uint64
	exit     []byte // the exit frame, once the container has exited
	exitOut  bool   // the exit frame was written to conn
	closed   bool   // delivered is closed
}

// newRelay returns a relay holding at most max bytes; acks says whether
// the server that starts the shim acknowledges (and so later ones will
// say whether they do).
func newRelay(max int, acks bool) *relay {
	r := &relay{max: max, helloWait: helloWait, acksFirst: acks, delivered: make(chan struct{}), nextSeq: 1}
	r.cond = sync.NewCond(&r.mu)
	return r
}

// attach makes c the connection output goes to, replacing any other. The
// shim's first connection comes from the server that started it (acks is
// what its job said); a later one is accepted, and says hello if it
// acknowledges.
func (r *relay) attach(c net.Conn, first bool) {
	r.mu.Lock()
	old := r.conn
	if old != nil {
		// Its acks still queued are read first (a dead server's end
		// is reached at once; a live one gets a second).
		r.draining++
		_ = old.SetReadDeadline(time.Now().Add(time.Second))
	}
	r.conn, r.sent, r.exitOut = c, 0, false
	r.acks = first && r.acksFirst
	r.decided = first || !r.acksFirst
	if !r.decided {
		time.AfterFunc(r.helloWait, func() { r.decide(c, false) })
	}
	r.cond.Broadcast()
	r.mu.Unlock()
	go r.serve(c)
	go r.listen(c)
}

// decide records whether c acknowledges, unless that is known.
func (r *relay) decide(c net.Conn, acks bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn != c || r.decided && (r.acks || !acks) {
		return
	}
	// A hello after frames went out as protocol 1 (a server that took
	// long to say it): those were delivered once written; the rest is
	// numbered from now on.
	r.decided, r.acks = true, acks
	r.cond.Broadcast()
}

// pump reads one pipe until its end.
func (r *relay) pump(f *os.File, typ byte) {
	defer f.Close()
	buf := make([]byte, shimReadChunk)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			r.push(typ, buf[:n])
		}
		if err != nil {
			return
		}
	}
}

// push holds a copy of data, waiting for room while a server reads,
// dropping the oldest output (counted) when none does.
func (r *relay) push(typ byte, data []byte) {
	e := entry{typ: typ, data: append([]byte(nil), data...)}
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.conn != nil && r.bytes > 0 && r.bytes+e.size() > r.max {
		r.cond.Wait()
	}
	if r.conn == nil {
		r.dropOldestLocked(e.size())
	}
	e.seq = r.nextSeq
	r.nextSeq++
	r.held = append(r.held, e)
	r.bytes += e.size()
	r.cond.Broadcast()
}

// dropOldestLocked drops the oldest output until size more bytes fit (or
// nothing but the count is left), counting it in a dropped frame that
// takes the place (and number) of the last frame it dropped.
func (r *relay) dropOldestLocked(size int) {
	for r.bytes+size > r.max {
		i := 0
		if len(r.held) > 0 && r.held[0].typ == frameDropped {
			i = 1
		}
		if i >= len(r.held) {
			return
		}
		gone := r.held[i]
		r.bytes -= gone.size()
		d := entry{seq: gone.seq, typ: frameDropped, data: make([]byte, 16)}
		if i == 1 {
			d.data = r.held[0].data
			r.bytes -= r.held[0].size()
			r.held[0] = entry{}
			r.held = r.held[1:]
		}
		putUint64(d.data[:8], getUint64(d.data[:8])+uint64(countLines(gone.data)))
		putUint64(d.data[8:], getUint64(d.data[8:])+uint64(len(gone.data)))
		r.held[0] = d // in place of the oldest
		r.bytes += d.size()
	}
}

// holds reports whether the relay holds output no server acknowledged.
func (r *relay) holds() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.held) > 0
}

// countLines counts the lines data holds or begins (at least one).
func countLines(data []byte) int {
	n := 0
	for _, b := range data {
		if b == '\n' {
			n++
		}
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		n++
	}
	return n
}

// finish queues the exit frame: no output comes after it.
func (r *relay) finish(st shimStatus) {
	payload, _ := json.Marshal(st)
	r.mu.Lock()
	r.exit = encodeFrame(frameExit, payload)
	r.cond.Broadcast()
	r.mu.Unlock()
}

// unsentLocked returns the held frames not yet written to the current
// connection.
func (r *relay) unsentLocked() []entry {
	i := sort.Search(len(r.held), func(i int) bool { return r.held[i].seq > r.sent })
	return r.held[i:]
}

// serve writes held frames to c, then the exit frame, until c fails or is
// replaced.
func (r *relay) serve(c net.Conn) {
	for {
		r.mu.Lock()
		for r.conn == c && !r.closed && (!r.decided || r.draining > 0 || len(r.unsentLocked()) == 0 && (r.exit == nil || r.exitOut)) {
			r.cond.Wait()
		}
		if r.conn != c || r.closed {
			r.mu.Unlock()
			return
		}
		batch := append([]entry(nil), r.unsentLocked()...)
		acks := r.acks
		final := len(batch) == 0
		r.mu.Unlock()

		bufs := make(net.Buffers, 0, 2*len(batch)+1)
		if final {
			bufs = append(bufs, r.exit)
		}
		for _, e := range batch {
			bufs = append(bufs, encodeHeader(e, acks), e.data)
		}
		if _, err := bufs.WriteTo(c); err != nil {
			// The server is gone: listen reads its last acks, then
			// the end (or, were it still there, times out).
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			return
		}
		r.mu.Lock()
		if r.conn == c {
			if final {
				r.exitOut = true
				_ = c.SetReadDeadline(time.Now().Add(exitConfirmWait))
				if uc, ok := c.(*net.UnixConn); ok {
					_ = uc.CloseWrite()
				}
			} else {
				r.sent = batch[len(batch)-1].seq
				if !acks {
					r.ackLocked(r.sent) // protocol 1: delivered once written
				}
			}
		}
		r.cond.Broadcast()
		r.mu.Unlock()
		if final {
			return
		}
	}
}

// encodeHeader is the frame header of e: protocol 2's carries its number.
func encodeHeader(e entry, acks bool) []byte {
	n := len(e.data)
	typ := e.typ
	var h []byte
	if acks {
		typ -= 'a' - 'A' // the capital letter
		n += seqBytes
		h = make([]byte, frameHeader+seqBytes)
		putUint64(h[frameHeader:], e.seq)
	} else {
		h = make([]byte, frameHeader)
	}
	h[0] = typ
	h[1], h[2], h[3], h[4] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	return h
}

// ackLocked forgets the held frames up to seq.
func (r *relay) ackLocked(seq uint64) {
	i := 0
	for i < len(r.held) && r.held[i].seq <= seq {
		r.bytes -= r.held[i].size()
		i++
	}
	if i > 0 {
		clear(r.held[:i]) // their data goes; the array is dropped as append grows it
		r.held = r.held[i:]
		r.cond.Broadcast()
	}
}

// listen reads what the server on c says: hello, acks, and the end of the
// connection, which after the exit frame confirms its delivery.
func (r *relay) listen(c net.Conn) {
	br := bufio.NewReaderSize(c, 256)
	var hdr [frameHeader]byte
	var p [seqBytes]byte
	for {
		_, err := io.ReadFull(br, hdr[:])
		if err == nil {
			n := int(hdr[1])<<24 | int(hdr[2])<<16 | int(hdr[3])<<8 | int(hdr[4])
			switch {
			case hdr[0] == frameHello && n == 0:
				r.decide(c, true)
				continue
			case hdr[0] == frameAck && n == seqBytes:
				if _, err = io.ReadFull(br, p[:]); err == nil {
					r.mu.Lock()
					r.ackLocked(getUint64(p[:]))
					r.mu.Unlock()
					continue
				}
			default:
				err = fmt.Errorf("unknown frame %q of %d bytes from the server", hdr[0], n)
			}
		}
		r.gone(c, err)
		return
	}
}

// gone drops connection c, ended by err. Held output stays for the next
// server. After the exit frame, the server closing c (not the deadline)
// is the delivery of everything: once all is acknowledged, when it
// acknowledges.
func (r *relay) gone(c net.Conn, err error) {
	c.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn != c {
		r.draining--
		r.cond.Broadcast()
		return
	}
	r.conn = nil
	r.cond.Broadcast()
	if !r.exitOut || r.closed || errors.Is(err, os.ErrDeadlineExceeded) || r.acks && len(r.held) > 0 {
		return
	}
	r.closed = true
	close(r.delivered)
}
