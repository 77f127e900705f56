package layers

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestReadahead_passesTheStreamThroughInOrder(t *testing.T) {
	data := make([]byte, 3*readaheadChunk+12345)
	for i := range data {
		data[i] = byte(i * 7)
	}
	ra := newReadahead(context.Background(), bytes.NewReader(data))
	defer ra.Close()
	got, err := io.ReadAll(ra)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes (want %d), equal %v, err %v", len(got), len(data), bytes.Equal(got, data), err)
	}
}

func TestReadahead_aCancelledReadEndsWithTheContextError(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ra := newReadahead(ctx, zeros{})
	defer ra.Close()
	buf := make([]byte, 1000)
	if _, err := io.ReadFull(ra, buf); err != nil {
		t.Fatal(err)
	}
	cancel()
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, ra)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("reading a cancelled readahead did not end")
	}
}
