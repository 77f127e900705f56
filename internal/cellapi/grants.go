package cellapi

import (
	"sync"
	"time"

	"github.com/pandoplatform/pando"
)

// maxGrantsPerCell bounds what one cell's grants hold; past it the oldest
// half goes (work given that long ago is granted again when retried).
const maxGrantsPerCell = 50000

// Grants records, per cell, the blobs it may read or write and the apps
// it may send log lines for: what the work the server gave it needs, and
// nothing else, so a cell cannot read another app's droplet or package.
type Grants struct {
	mu    sync.Mutex
	cells map[string]*cellGrants
}

type cellGrants struct {
	keys map[string]grant // blob key
	apps map[string]time.Time
}

type grant struct {
	write bool
	at    time.Time
}

// NewGrants returns empty grants.
func NewGrants() *Grants { return &Grants{cells: map[string]*cellGrants{}} }

func (g *Grants) cell(id string) *cellGrants {
	c := g.cells[id]
	if c == nil {
		c = &cellGrants{keys: map[string]grant{}, apps: map[string]time.Time{}}
		g.cells[id] = c
	}
	return c
}

func (g *Grants) add(id, app string, read []string, write []string) {
	if g == nil {
		return
	}
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.cell(id)
	for _, k := range read {
		if k != "" && !c.keys[k].write {
			c.keys[k] = grant{at: now}
		}
	}
	for _, k := range write {
		if k != "" {
			c.keys[k] = grant{write: true, at: now}
		}
	}
	if app != "" {
		c.apps[app] = now
	}
	if len(c.keys) > maxGrantsPerCell {
		trimOldest(c.keys, func(x grant) time.Time { return x.at })
	}
	if len(c.apps) > maxGrantsPerCell {
		trimOldest(c.apps, func(t time.Time) time.Time { return t })
	}
}

// trimOldest drops the older half of m.
func trimOldest[V any](m map[string]V, at func(V) time.Time) {
	var mean int64
	for _, v := range m {
		mean += at(v).UnixNano() / int64(len(m))
	}
	for k, v := range m {
		if at(v).UnixNano() <= mean {
			delete(m, k)
		}
	}
}

func (g *Grants) grantLRP(id string, lrp pando.DesiredLRP) {
	g.add(id, lrp.AppGUID, []string{lrp.DropletKey}, nil)
}

func (g *Grants) grantTask(id string, t pando.Task) {
	switch {
	case t.Staging != nil:
		s := t.Staging
		read := []string{s.PackageKey}
		for _, b := range s.Buildpacks {
			read = append(read, b.Key)
		}
		var write []string
		if s.DropletGUID != "" {
			write = append(write, pando.DropletBlobKey(s.DropletGUID))
		}
		write = append(write, s.BuildCacheKey)
		g.add(id, s.AppGUID, read, write)
	case t.Run != nil:
		g.add(id, t.Run.AppGUID, []string{t.Run.DropletKey}, nil)
	}
}

// CanRead says whether cell id may read blob key.
func (g *Grants) CanRead(id, key string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.cells[id]
	if c == nil {
		return false
	}
	_, ok := c.keys[key]
	return ok
}

// CanWrite says whether cell id may write blob key.
func (g *Grants) CanWrite(id, key string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.cells[id]
	return c != nil && c.keys[key].write
}

// CanLog says whether cell id may send log lines of app.
func (g *Grants) CanLog(id, app string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.cells[id]
	if c == nil {
		return false
	}
	_, ok := c.apps[app]
	return ok
}
