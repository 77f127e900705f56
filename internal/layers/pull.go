package layers

import (
	"context"
	"sort"

	"golang.org/x/sync/errgroup"
)

// pullConcurrency bounds how many layers of one image download at once.
// Every layer of a typical image (a handful) starts at once: with fewer
// (docker's default is 3), the layers left over start only when one ends
// and finish alone at the end, with one core unpacking; measured on the
// docker bench (4 layers, 3 at a time), the last one ended 150-350 ms
// after the others.
const pullConcurrency = 8

// maxFetches bounds the downloads of a whole cache (several images
// starting at once): each holds a connection and ~3 MB of buffers.
const maxFetches = 16

// Pull is what a container start needs: it marks the image's layers in use,
// fetches the missing ones (up to pullConcurrency at a time, the largest
// first, so the longest downloads do not start last) and returns their
// directories in the image's order, lowest first (overlayfs wants lowerdir
// highest first: reverse them). The layers stay in use until release; on
// error they are released already. src may be nil when every layer is
// cached.
func (c *Cache) Pull(ctx context.Context, src Source, layers []Layer, shift Shift) (dirs []string, release func(), err error) {
	digests := make([]string, len(layers))
	for i, l := range layers {
		digests[i] = l.Digest
	}
	release = c.Acquire(shift, digests...)
	dirs = make([]string, len(layers))
	order := largestFirst(layers)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(pullConcurrency)
	for _, i := range order {
		l := layers[i]
		g.Go(func() error {
			dir, err := c.Fetch(gctx, src, l, shift)
			dirs[i] = dir
			return err
		})
	}
	if err := g.Wait(); err != nil {
		release()
		return nil, func() {}, err
	}
	return dirs, release, nil
}

// largestFirst is the order to start fetching layers in: the indexes of
// layers, the largest blob first (ties in the image's order).
func largestFirst(layers []Layer) []int {
	order := make([]int, len(layers))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return layers[order[a]].Size > layers[order[b]].Size })
	return order
}
