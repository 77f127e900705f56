package runc

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"

	"github.com/pandoplatform/pando/internal/container"
)

// readFrames copies a shim's output frames to out until the exit frame.
// With acks set (a shim that numbers its frames: see relay.go), it
// acknowledges on acks each numbered frame once out has taken it, and
// drops one it has passed on already. Protocol 1 frames pass as they
// come, unacknowledged.
func readFrames(r io.Reader, acks io.Writer, out container.Output, log interface {
	Warn(string, ...any)
}) (shimStatus, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var hdr [frameHeader]byte
	buf := make([]byte, 0, shimReadChunk)
	var seen uint64 // the last number passed on
	numbered := false
	for {
		if numbered && acks != nil {
			// A failed write is the shim gone: the next read says so.
			_, _ = acks.Write(encodeAck(seen))
		}
		numbered = false
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return shimStatus{}, fmt.Errorf("read container shim: %w", err)
		}
		n := int(hdr[1])<<24 | int(hdr[2])<<16 | int(hdr[3])<<8 | int(hdr[4])
		if n > maxFrame+seqBytes {
			return shimStatus{}, fmt.Errorf("read container shim: frame of %d bytes", n)
		}
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		p := buf[:n]
		if _, err := io.ReadFull(br, p); err != nil {
			return shimStatus{}, fmt.Errorf("read container shim: %w", err)
		}
		typ := hdr[0]
		switch typ {
		case frameStdoutSeq, frameStderrSeq, frameDroppedSeq:
			if n < seqBytes {
				return shimStatus{}, fmt.Errorf("read container shim: numbered frame of %d bytes", n)
			}
			seq := getUint64(p[:seqBytes])
			if seq <= seen {
				continue // passed on already
			}
			seen, typ, p, numbered = seq, typ+('a'-'A'), p[seqBytes:], true
		case frameStdout, frameStderr, frameDropped, frameExit:
			if n > maxFrame {
				return shimStatus{}, fmt.Errorf("read container shim: frame of %d bytes", n)
			}
		}
		switch typ {
		case frameStdout:
			if out.Stdout != nil {
				_, _ = out.Stdout.Write(p)
			}
		case frameStderr:
			if out.Stderr != nil {
				_, _ = out.Stderr.Write(p)
			}
		case frameDropped:
			if len(p) != 16 {
				return shimStatus{}, fmt.Errorf("read container shim: dropped frame of %d bytes", len(p))
			}
			lines, bytes := getUint64(p[:8]), getUint64(p[8:])
			log.Warn("container output dropped while nobody read it", "lines", lines, "bytes", bytes)
			if out.Dropped != nil {
				out.Dropped(lines, bytes)
			}
		case frameExit:
			var st shimStatus
			if err := json.Unmarshal(p, &st); err != nil {
				return shimStatus{}, fmt.Errorf("read container shim: exit status: %w", err)
			}
			return st, nil
		default:
			return shimStatus{}, fmt.Errorf("read container shim: unknown frame type %q", hdr[0])
		}
	}
}

// encodeAck is the ack frame for everything up to seq.
func encodeAck(seq uint64) []byte {
	var p [seqBytes]byte
	putUint64(p[:], seq)
	return encodeFrame(frameAck, p[:])
}

// helloFrame is what a server that acknowledges sends first on a
// connection it makes to a shim.
func helloFrame() []byte { return encodeFrame(frameHello, nil) }
