package layers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPull_startsEveryLayerOfAnImageAtOnce(t *testing.T) {
	requireRoot(t)
	layer := func(name string, n int) []byte { return tarball(t, "gzip", file(name, strings.Repeat("p", n))) }
	src, ls := newSource(layer("one", 10), layer("two", 20), layer("three", 30), layer("four", 40), layer("five", 50))
	src.gate = make(chan struct{})
	c, _ := openCache(t, Options{})
	type result struct {
		dirs    []string
		release func()
		err     error
	}
	done := make(chan result, 1)
	go func() {
		dirs, release, err := c.Pull(context.Background(), src, ls, Shift{})
		done <- result{dirs, release, err}
	}()
	// Every blob is opened while none of them can be read yet: all five
	// are in flight together.
	deadline := time.Now().Add(10 * time.Second)
	for {
		opened := 0
		for _, l := range ls {
			opened += min(src.openCount(l.Digest), 1)
		}
		if opened == len(ls) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d layers opened while the first ones wait", opened, len(ls))
		}
		time.Sleep(time.Millisecond)
	}
	close(src.gate)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.release()
	if len(r.dirs) != len(ls) {
		t.Fatalf("%d dirs for %d layers", len(r.dirs), len(ls))
	}
}

func TestLargestFirst_ordersByBlobSizeKeepingTheImageOrderOfTies(t *testing.T) {
	ls := []Layer{{Size: 5}, {Size: 50}, {Size: 7}, {Size: 50}, {Size: 1}}
	if got, want := largestFirst(ls), []int{1, 3, 2, 0, 4}; !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
}

func TestPull_boundsTheDownloadsOfTheWholeCache(t *testing.T) {
	requireRoot(t)
	var blobs [][]byte
	for i := range 3 * pullConcurrency {
		blobs = append(blobs, tarball(t, "gzip", file(fmt.Sprintf("f%d", i), strings.Repeat("b", i+1))))
	}
	src, ls := newSource(blobs...)
	src.gate = make(chan struct{})
	c, _ := openCache(t, Options{})
	// Three images of pullConcurrency layers start at once.
	errs := make(chan error, 3)
	for k := range 3 {
		go func() {
			_, release, err := c.Pull(context.Background(), src, ls[k*pullConcurrency:(k+1)*pullConcurrency], Shift{})
			if err == nil {
				release()
			}
			errs <- err
		}()
	}
	opened := func() int {
		n := 0
		for _, l := range ls {
			n += src.openCount(l.Digest)
		}
		return n
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		flying := len(c.flights)
		c.mu.Unlock()
		if flying == len(ls) && opened() >= maxFetches {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d flights, %d blobs opened", flying, opened())
		}
		time.Sleep(time.Millisecond)
	}
	if n := opened(); n != maxFetches {
		t.Fatalf("%d blobs open at once, want at most %d", n, maxFetches)
	}
	close(src.gate)
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if _, n := c.Usage(); n != len(ls) {
		t.Fatalf("%d layers cached, want %d", n, len(ls))
	}
}
