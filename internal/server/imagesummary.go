package server

import (
	"slices"

	"github.com/pandoplatform/pando"
)

// recentImage is an image the cell pulled or is pulling: its digest, its
// layers' digests and how many pulls of it are in flight.
type recentImage struct {
	digest  string
	layers  []string
	pulling int
}

// pullStarted notes that a pull of the pinned image (with these layers)
// started, and returns its end. The most recent pulls are kept, at most
// pando.MaxCellImages; an unpinned image is not noted.
func (p *imagePuller) pullStarted(image string, ls []string) (done func()) {
	digest := pando.ImageDigest(image)
	if digest == "" {
		return func() {}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	k := slices.IndexFunc(p.recent, func(r *recentImage) bool { return r.digest == digest })
	var r *recentImage
	if k >= 0 {
		r = p.recent[k]
		p.recent = slices.Delete(p.recent, k, k+1)
	} else {
		r = &recentImage{digest: digest, layers: ls}
	}
	r.pulling++
	p.recent = slices.Insert(p.recent, 0, r)
	if len(p.recent) > pando.MaxCellImages {
		// The oldest goes, even if still pulling: the list is a hint.
		p.recent = p.recent[:pando.MaxCellImages]
	}
	return func() {
		p.mu.Lock()
		r.pulling--
		p.mu.Unlock()
	}
}

// CachedImages lists the digests of the recent images whose layers are
// being pulled or all still cached, most recent first: the cell's
// State.Images, so the auction places their instances here.
func (p *imagePuller) CachedImages() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, r := range p.recent {
		if r.pulling > 0 || p.cache.Holds(r.layers...) {
			out = append(out, r.digest)
		}
	}
	return out
}
