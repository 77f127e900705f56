package layers

import (
	"context"
	"io"
	"sync"
)

// readahead reads r on its own goroutine in chunks, so decompression (and
// the download and hashing feeding it) overlaps with the file writes of
// the unpacker. At most depth chunks are buffered.
type readahead struct {
	chunks chan []byte
	free   chan []byte
	buf    []byte // the chunk being read
	cur    []byte // its unread part
	err    error
	errMu  sync.Mutex
	stop   context.CancelFunc
	done   chan struct{}
}

const (
	readaheadChunk = 256 << 10
	readaheadDepth = 8
)

func newReadahead(ctx context.Context, r io.Reader) *readahead {
	ctx, cancel := context.WithCancel(ctx)
	ra := &readahead{
		chunks: make(chan []byte, readaheadDepth),
		free:   make(chan []byte, readaheadDepth+2),
		stop:   cancel,
		done:   make(chan struct{}),
	}
	go ra.fill(ctx, r)
	return ra
}

func (ra *readahead) fill(ctx context.Context, r io.Reader) {
	defer close(ra.done)
	defer close(ra.chunks)
	for {
		var buf []byte
		select {
		case buf = <-ra.free:
		default:
			buf = make([]byte, readaheadChunk)
		}
		n, err := io.ReadFull(r, buf[:cap(buf)])
		if n > 0 {
			select {
			case ra.chunks <- buf[:n]:
			case <-ctx.Done():
				err = ctx.Err()
			}
		}
		if err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		if err == nil {
			err = ctx.Err()
		}
		if err != nil {
			ra.errMu.Lock()
			ra.err = err
			ra.errMu.Unlock()
			return
		}
	}
}

func (ra *readahead) Read(p []byte) (int, error) {
	for len(ra.cur) == 0 {
		buf, ok := <-ra.chunks
		if !ok {
			ra.errMu.Lock()
			defer ra.errMu.Unlock()
			if ra.err == nil {
				return 0, io.ErrClosedPipe // cannot happen: fill always says why it stopped
			}
			return 0, ra.err
		}
		ra.buf, ra.cur = buf, buf
	}
	n := copy(p, ra.cur)
	ra.cur = ra.cur[n:]
	if len(ra.cur) == 0 {
		select {
		case ra.free <- ra.buf[:0]:
		default:
		}
	}
	return n, nil
}

// Close stops the reading goroutine and waits for it. The underlying
// reader must be unblocked by the caller's means (closing the stream or
// cancelling its context) if a read is in progress.
func (ra *readahead) Close() {
	ra.stop()
	<-ra.done
}
