package layers

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"testing"
)

// benchLayer is a ~32 MiB gzipped layer of 256 half-compressible files.
func benchLayer(b *testing.B) []byte {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	var ents []ent
	for i := range 256 {
		body := make([]byte, 128<<10)
		for j := range body {
			if j%2 == 0 {
				body[j] = byte(rng.IntN(256))
			} else {
				body[j] = 'a'
			}
		}
		ents = append(ents, file(fmt.Sprintf("usr/lib/f%03d", i), string(body)))
	}
	return tarball(b, "gzip", ents...)
}

// BenchmarkFetch measures a cold fetch (verify + unpack + commit) of one
// layer; compare with BenchmarkFetchFloor, which only decompresses and
// reads the same tar.
func BenchmarkFetch(b *testing.B) {
	blob := benchLayer(b)
	src, ls := newSource(blob)
	b.SetBytes(int64(len(blob)))
	for b.Loop() {
		b.StopTimer()
		c, err := Open(filepath.Join(b.TempDir(), "cache"), Options{NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := c.Fetch(context.Background(), src, ls[0], Shift{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		c.Close()
		b.StartTimer()
	}
}

func BenchmarkFetchFloor(b *testing.B) {
	blob := benchLayer(b)
	b.SetBytes(int64(len(blob)))
	for b.Loop() {
		r, done, err := decompress(bytes.NewReader(blob))
		if err != nil {
			b.Fatal(err)
		}
		tr := tar.NewReader(r)
		for {
			if _, err := tr.Next(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, tr)
		}
		done()
	}
}
