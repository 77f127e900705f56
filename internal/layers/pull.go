package layers

import (
	"context"

	"golang.org/x/sync/errgroup"
)

// pullConcurrency is how many layers of one image download at once (as
// docker does by default).
const pullConcurrency = 3

// Pull is what a container start needs: it marks the image's layers in use,
// fetches the missing ones (up to three at a time) and returns their
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
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(pullConcurrency)
	for i, l := range layers {
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
