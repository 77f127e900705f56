package server

import (
	"context"
	"fmt"
	"net"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pandoplatform/pando"
	fsblob "github.com/pandoplatform/pando/internal/blobstore/fs"
	"github.com/pandoplatform/pando/internal/cc"
	"github.com/pandoplatform/pando/internal/cell"
)

// localCell is `pando server`'s own cell, cell-0, in the server's
// process: it reports to the BBS in process, reads blobs as files of the
// blobstore (downloads them when the blobstore is S3) and logs straight to the log store and drains. A nil
// *localCell is `pando api`'s: no local cell at all.
type localCell struct {
	rt  *cellRuntime
	rep *cell.Rep
}

// openLocalCell opens the cell runtime and registers cell-0 with p's BBS.
func openLocalCell(ctx context.Context, cfg Config, plan *cellPlan, p *platform) (*localCell, error) {
	// Its RUNNING instances outlive a kill -9 of the server: adopted.
	rt, err := openCellRuntime(ctx, plan, p.log, true)
	if err != nil {
		return nil, err
	}
	repCfg := rt.cellConfig(cfg.HostCFStack)
	repCfg.ID = "cell-0"
	repCfg.Blobs, repCfg.Reporter, repCfg.Logs = p.blobs, p.board, p.drains
	if fs, ok := p.blobs.(*fsblob.Store); ok {
		// Blobs on this machine: read (or bind-mounted) in place.
		repCfg.BlobPath = func(key string) (string, bool) {
			p, err := fs.Path(key)
			return p, err == nil
		}
	}
	repCfg.HostAddr = cfg.CellHostAddr
	repCfg.TotalMemoryMB, repCfg.TotalDiskMB = cellCapacity(cfg)
	repCfg.StagingEgress = cfg.StagingEgress
	repCfg.StagingEgressMaxBytes = cfg.StagingEgressMaxBytes
	repCfg.StagingEgressDenyPorts = p.ports()
	repCfg.LogRateCeiling = cfg.LogRateCeiling
	repCfg.MaxConcurrentStarts = cfg.CellMaxConcurrentStarts
	repCfg.Logger = p.log.With("component", "cell")
	rep, err := cell.New(repCfg)
	if err != nil {
		rt.close()
		return nil, fmt.Errorf("start cell: %w", err)
	}
	p.board.RegisterCell(rep)
	return &localCell{rt: rt, rep: rep}, nil
}

// adopted is the cell's ID and inventory when it adopted instances,
// stagings or tasks of an earlier run (the BBS then awaits it as a joined
// cell); ok is false otherwise.
func (c *localCell) adopted() (id string, inv pando.CellInventory, ok bool) {
	if c == nil {
		return "", pando.CellInventory{}, false
	}
	inv = c.rep.Inventory()
	return c.rep.ID(), inv, len(inv.Actuals) > 0 || len(inv.Tasks) > 0
}

// releaseAdopted lets the stagings and tasks the cell adopted report
// their completion, once the BBS has its inventory.
func (c *localCell) releaseAdopted() {
	if c != nil {
		c.rep.ReleaseAdopted()
	}
}

// dialHostPort reaches an instance of this cell by its host port; false
// for an address that is not one of them.
func (c *localCell) dialHostPort(ctx context.Context, addr string) (net.Conn, bool, error) {
	if c == nil {
		return nil, false, nil
	}
	return c.rep.DialHostPort(ctx, addr)
}

// stackRuntimes tells the API the language runtimes of the local stacks;
// nil without a local cell (the API then lists none).
func (c *localCell) stackRuntimes() cc.StackRuntimes {
	if c == nil {
		return nil
	}
	return c.rt.runtimes
}

// start probes the stacks' runtimes (before anyone asks; a second of CPU
// when the host's changed since the answers the data dir keeps) and
// warms the Go build cache and the python seed, in g; once all of that
// has ended it logs "start-up warm-up done" (until then it competes with
// the first pushes for the CPU).
func (c *localCell) start(ctx context.Context, g *errgroup.Group) {
	if c == nil {
		return
	}
	began := time.Now()
	var warm errgroup.Group
	warm.Go(func() error { c.rt.probeStacks(ctx); return nil })
	c.rt.warm(ctx, &warm)
	g.Go(func() error {
		_ = warm.Wait() // each part logs its own failure
		if ctx.Err() == nil {
			c.rt.log.Info("start-up warm-up done", "ms", time.Since(began).Milliseconds())
		}
		return nil
	})
}

// sync keeps the cell's periodic sync with the BBS going in g (started
// after restore: the BBS judges its inventory once the apps are desired
// again).
func (c *localCell) sync(ctx context.Context, g *errgroup.Group, s cell.Syncer, interval time.Duration) {
	if c == nil {
		return
	}
	g.Go(func() error { c.rep.RunSync(ctx, s, interval); return nil })
}

// shutdown stops the cell's containers, reporting them gone.
func (c *localCell) shutdown(ctx context.Context) {
	if c == nil {
		return
	}
	if err := c.rep.Shutdown(ctx); err != nil {
		c.rt.log.Error("stop app containers", "err", err)
	}
	c.rt.stop(ctx)
}

// detach leaves the cell's containers running for the next start to
// adopt (cell.Rep.Detach) and closes the backend without its Cleanup:
// their records, volumes, host ids and shims stay. It logs how many it
// left.
func (c *localCell) detach() {
	if c == nil {
		return
	}
	instances, tasks := c.rep.Detach()
	c.rt.backend.Close()
	c.rt.log.Info("apps left running for the next start (--keep-apps-on-stop)", "cell_id", c.rep.ID(),
		"instances", instances, "stagings_and_tasks", tasks)
}

func (c *localCell) close() {
	if c != nil {
		c.rt.close()
	}
}
