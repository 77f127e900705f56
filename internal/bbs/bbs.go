// Package bbs is Pando's bulletin board (Diego's BBS): it holds desired LRPs,
// actual LRPs, tasks and cell presence, places work through the auctioneer,
// restarts crashed instances under Diego's crash policy, converges actual to
// desired state, evacuates draining cells and streams every change as events
// (the router and the Cloud Controller sync follow them). It is the
// in-process implementation of the runtime contract, pando.Runtime.
package bbs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	pando "github.com/pandoplatform/pando"
)

// Config configures a BBS. Zero fields take the defaults noted.
type Config struct {
	Logger *slog.Logger
	// ConvergeInterval is how often Run converges (default 30s).
	ConvergeInterval time.Duration
	// CellPresenceTTL is how long a heartbeating cell stays registered
	// without a heartbeat (default 6s; Run notices the expiry at the deadline). Cells that never heartbeat (the
	// in-process cell) do not expire.
	CellPresenceTTL time.Duration
	// StuckMargin is added to an instance's start timeout to decide that a
	// placed or CLAIMED instance is stuck and must be placed again; it
	// covers droplet downloads and image pulls (default 5m).
	StuckMargin time.Duration
	// EvacuationTimeout is how long a draining cell's instances keep
	// serving while their replacements start elsewhere (default 10m).
	EvacuationTimeout time.Duration
	// StrandedStopGrace is how long a draining cell's instance that no
	// other cell can take keeps running after its route is withdrawn, for
	// its in-flight requests to finish, before it is stopped (default 5s).
	StrandedStopGrace time.Duration
	// Logs, when set, receives the CELL lines the BBS writes into an app's
	// log (an instance stopped because no other cell can take it).
	Logs pando.LogSink
	// TaskRetention is how long completed tasks stay readable (default 1h).
	TaskRetention time.Duration
	// EventBuffer is how many recent events the BBS keeps: a subscriber may
	// resume from any of them, and one that falls further behind gets a
	// resync event instead (default 4096).
	EventBuffer int
	// Now and After are the clock (default time.Now and time.After); tests
	// substitute a fake one.
	Now   func() time.Time
	After func(d time.Duration) <-chan time.Time
}

// Defaults.
const (
	DefaultConvergeInterval  = 30 * time.Second
	DefaultCellPresenceTTL   = 6 * time.Second
	DefaultStuckMargin       = 5 * time.Minute
	DefaultEvacuationTimeout = 10 * time.Minute
	DefaultStrandedStopGrace = 5 * time.Second
	DefaultTaskRetention     = time.Hour
	DefaultEventBuffer       = 4096
	// DefaultStartTimeout applies when a DesiredLRP has none (CF's 60s).
	DefaultStartTimeout = 60 * time.Second

	// cellCallTimeout bounds every call the BBS makes into a cell.
	cellCallTimeout = 30 * time.Second
	// cellStateTimeout bounds a cell's answer on its capacity: a cell that
	// hangs (frozen, or cut off before its presence expires) holds up
	// neither the auction nor the cells view for long.
	cellStateTimeout = 5 * time.Second
	// cellCallConcurrency bounds parallel calls into cells.
	cellCallConcurrency = 8
)

// BBS is the bulletin board. It implements pando.Runtime for the API and
// pando.CellReporter for the cells. Create it with New, register cells, and
// keep Run going for crash restarts and convergence.
type BBS struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	after func(time.Duration) <-chan time.Time

	// placeMu serialises auction rounds so each sees the cells' usage after
	// the previous round's starts. Cells may be called while it is held.
	placeMu sync.Mutex

	// mu guards everything below. Never call a cell while holding it.
	mu    sync.Mutex
	st    state
	cells map[string]*cellEntry
	// unplaced indexes UNCLAIMED records waiting for an auction; restarts
	// indexes CRASHED records waiting for their backoff.
	unplaced     map[string]struct{}
	restarts     map[string]time.Time
	pendingStops []stopOp
	// laterStops are stops held back for a grace period (drain.go) or
	// retried after a failed call (stops.go).
	laterStops []laterStop

	// capacityFreed says a cell may take work it could not before (see
	// placement.go); the next dispatch retries failed placements.
	capacityFreed bool
	// waiting indexes UNCLAIMED records whose last auction failed (kept
	// apart from unplaced so fresh work never scans them).
	waiting map[string]struct{}

	// Re-adoption after a restart (adopt.go): the cells placement waits
	// for and until when, the tasks in flight before the restart that a
	// cell may claim, and a channel closed when the wait is over.
	awaiting  map[string]struct{}
	holdUntil time.Time
	expected  map[string]struct{}
	adopted   chan struct{}

	// epochs orders the periodic syncs against what the BBS learns
	// (missing.go).
	epochs syncEpochs

	events      *eventLog
	subscribers atomic.Int64

	kick    chan struct{}
	running atomic.Bool
}

type cellEntry struct {
	cell     pando.Cell
	draining bool
	// expires is the presence deadline of a heartbeating cell; zero means
	// the cell does not expire.
	expires time.Time
	// stranded are the cell's instances stopped while it drained because
	// no other cell could take them, until TakeStranded reads them.
	stranded []pando.ActualLRP
}

// stopOp is a StopLRP call to make once the lock is released (stops.go).
type stopOp struct {
	cell                      pando.Cell
	processGUID, instanceGUID string
	// attempts counts the calls that failed so far.
	attempts int
}

// New returns a BBS with empty state.
func New(cfg Config) *BBS {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ConvergeInterval <= 0 {
		cfg.ConvergeInterval = DefaultConvergeInterval
	}
	if cfg.CellPresenceTTL <= 0 {
		cfg.CellPresenceTTL = DefaultCellPresenceTTL
	}
	if cfg.StuckMargin <= 0 {
		cfg.StuckMargin = DefaultStuckMargin
	}
	if cfg.EvacuationTimeout <= 0 {
		cfg.EvacuationTimeout = DefaultEvacuationTimeout
	}
	if cfg.StrandedStopGrace <= 0 {
		cfg.StrandedStopGrace = DefaultStrandedStopGrace
	}
	if cfg.TaskRetention <= 0 {
		cfg.TaskRetention = DefaultTaskRetention
	}
	if cfg.EventBuffer <= 0 {
		cfg.EventBuffer = DefaultEventBuffer
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.After == nil {
		cfg.After = time.After
	}
	adopted := make(chan struct{})
	close(adopted)
	return &BBS{
		adopted:  adopted,
		cfg:      cfg,
		log:      cfg.Logger,
		now:      cfg.Now,
		after:    cfg.After,
		st:       newMemState(),
		cells:    map[string]*cellEntry{},
		unplaced: map[string]struct{}{},
		restarts: map[string]time.Time{},
		events:   newEventLog(cfg.EventBuffer, uint64(cfg.Now().UnixNano())),
		kick:     make(chan struct{}, 1),
		epochs:   syncEpochs{prefix: uuid.NewString() + ".", seq: 1},
	}
}

// Run keeps the BBS converging until ctx ends: it converges every
// ConvergeInterval, restarts crashed instances when their backoff is over,
// and places work queued by cell reports. Run returns nil when ctx ends;
// only one Run may be active at a time.
func (b *BBS) Run(ctx context.Context) error {
	if !b.running.CompareAndSwap(false, true) {
		return errors.New("bbs: Run is already running")
	}
	defer b.running.Store(false)

	b.dispatch(ctx)
	converge := b.after(b.cfg.ConvergeInterval)
	for {
		var restartC, expireC, holdC, stopC <-chan time.Time
		if due, ok := b.nextRestart(); ok {
			restartC = b.after(max(due.Sub(b.now()), 0))
		}
		if due, ok := b.nextExpiry(); ok {
			expireC = b.after(max(due.Sub(b.now()), 0))
		}
		if due, ok := b.holdDeadline(); ok {
			holdC = b.after(max(due.Sub(b.now()), 0))
		}
		if due, ok := b.nextLaterStop(); ok {
			stopC = b.after(max(due.Sub(b.now()), 0))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-converge:
			b.ConvergeOnce(ctx)
			converge = b.after(b.cfg.ConvergeInterval)
		case <-expireC:
			b.expireCells()
			b.dispatch(ctx)
		case <-holdC:
			b.endHoldIfDue()
			b.dispatch(ctx)
		case <-restartC:
			b.restartDue()
			b.dispatch(ctx)
		case <-stopC:
			b.runStops(ctx, b.takeDueLaterStops())
		case <-b.kick:
			b.dispatch(ctx)
		}
	}
}

// wake asks Run to place queued work and recompute its restart timer.
func (b *BBS) wake() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// dispatch performs work queued while the lock was held: stops first (they
// free capacity), then auctions for new instances.
func (b *BBS) dispatch(ctx context.Context) {
	b.mu.Lock()
	stops := b.pendingStops
	b.pendingStops = nil
	b.mu.Unlock()
	b.runStops(ctx, stops)
	b.placeLRPs(ctx, b.takeCapacityFreed())
}

func (b *BBS) nextRestart() (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var next time.Time
	for _, at := range b.restarts {
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return next, !next.IsZero()
}

// nextExpiry is the earliest presence deadline of a heartbeating cell.
func (b *BBS) nextExpiry() (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var next time.Time
	for _, e := range b.cells {
		if !e.expires.IsZero() && (next.IsZero() || e.expires.Before(next)) {
			next = e.expires
		}
	}
	return next, !next.IsZero()
}

// expireCells removes the cells whose presence expired: their instances
// are placed elsewhere by the next dispatch, without waiting for a
// convergence pass.
func (b *BBS) expireCells() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expireCellsLocked(b.now())
}

func (b *BBS) expireCellsLocked(now time.Time) {
	for id, e := range b.cells {
		if !e.expires.IsZero() && !now.Before(e.expires) {
			b.unregisterLocked(id, true)
		}
	}
}

// parallel calls fn(0..n-1) with bounded concurrency and waits for all.
func parallel(n int, fn func(i int)) {
	if n == 1 {
		fn(0)
		return
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, cellCallConcurrency)
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			fn(i)
		}()
	}
	wg.Wait()
}

// RegisterCell adds (or replaces) a cell. A cell registered again is no
// longer draining.
func (b *BBS) RegisterCell(c pando.Cell) {
	b.mu.Lock()
	b.cells[c.ID()] = &cellEntry{cell: c}
	b.emitCellLocked(pando.EventCellChanged, c.ID(), pando.CellHealthy)
	b.capacityFreedLocked()
	b.mu.Unlock()
	b.log.Info("cell registered", "cell_id", c.ID())
	// Work that found no cell may fit now.
	b.wake()
}

// CellPresenceTTL is how long a heartbeating cell stays registered
// without a heartbeat: cells renew their presence well within it.
func (b *BBS) CellPresenceTTL() time.Duration { return b.cfg.CellPresenceTTL }

// HeartbeatCell refreshes a cell's presence. From its first heartbeat on a
// cell is unregistered (and its instances rescheduled) when no heartbeat
// arrives within CellPresenceTTL.
func (b *BBS) HeartbeatCell(id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.cells[id]
	if !ok {
		return pando.Errorf(pando.ENotFound, "cell %q is not registered", id)
	}
	first := e.expires.IsZero()
	e.expires = b.now().Add(b.cfg.CellPresenceTTL)
	if first {
		b.wake() // Run arms the cell's presence deadline
	}
	return nil
}

// UnregisterCell removes a cell: its instances are rescheduled on other
// cells and its unfinished tasks fail.
func (b *BBS) UnregisterCell(id string) {
	b.mu.Lock()
	found := b.unregisterLocked(id, false)
	b.mu.Unlock()
	if found {
		b.wake()
	}
}

// unregisterLocked removes a cell, expired (its presence lapsed) or
// unregistered (it left, or came back as a new process).
func (b *BBS) unregisterLocked(id string, expired bool) bool {
	if _, ok := b.cells[id]; !ok {
		return false
	}
	delete(b.cells, id)
	// Stops it has not confirmed are dropped: if it comes back, it
	// reports what it still runs and the BBS stops those then.
	b.dropLaterStopsLocked(id, "")
	b.emitCellLocked(pando.EventCellRemoved, id, pando.CellLost)
	why, gone := "unregistered", "left or restarted"
	if expired {
		why = "presence expired"
		gone = fmt.Sprintf("is lost (no presence renewal for %s)", b.cfg.CellPresenceTTL)
	}
	b.log.Info("cell removed", "cell_id", id, "reason", why)
	for _, rec := range b.st.allActuals() {
		if rec.CellID != id {
			continue
		}
		switch {
		case rec.evacuating:
			b.removeActualLocked(rec)
		case rec.State == pando.ActualCrashed:
			// Its restart is placed by the auction anyway.
		default:
			// The app's log says why its instance starts again, as a
			// sync that finds one missing does.
			b.cellLineLocked(rec, fmt.Sprintf("Cell %s %s: instance %s is gone with it; starting a replacement",
				id, gone, rec.InstanceGUID))
			b.rescheduleLocked(rec)
		}
	}
	for _, t := range b.st.allTasks() {
		if t.CellID == id && t.State != pando.TaskCompleted {
			b.completeTaskLocked(t, pando.Task{Failed: true,
				FailureReason: "cell " + id + " disappeared before completion"})
		}
	}
	return true
}

// Cell returns a registered cell (e.g. to read an instance's stats).
func (b *BBS) Cell(id string) (pando.Cell, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.cells[id]
	if !ok {
		return nil, false
	}
	return e.cell, true
}

type cellRef struct {
	id       string
	cell     pando.Cell
	draining bool
}

func (b *BBS) cellRefsLocked() []cellRef {
	refs := make([]cellRef, 0, len(b.cells))
	for id, e := range b.cells {
		refs = append(refs, cellRef{id: id, cell: e.cell, draining: e.draining})
	}
	slices.SortFunc(refs, func(x, y cellRef) int { return strings.Compare(x.id, y.id) })
	return refs
}

// Cells asks every registered cell for its state, sorted by ID. A cell
// that does not answer is listed CellLost with its ID only; Draining (and
// CellDraining) reflect the BBS's view as well as the cell's.
func (b *BBS) Cells(ctx context.Context) ([]pando.CellState, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	refs := b.cellRefsLocked()
	b.mu.Unlock()
	states, ok := b.queryCells(ctx, refs)
	for i := range states {
		switch {
		case !ok[i]:
			states[i] = pando.CellState{ID: refs[i].id, State: pando.CellLost, Draining: refs[i].draining}
		case states[i].Draining:
			states[i].State = pando.CellDraining
		default:
			states[i].State = pando.CellHealthy
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return states, nil
}

// cellStates is the state of every cell that answers, for the auction.
func (b *BBS) cellStates(ctx context.Context, refs []cellRef) []pando.CellState {
	states, ok := b.queryCells(ctx, refs)
	out := states[:0]
	for i, s := range states {
		if ok[i] {
			out = append(out, s)
		}
	}
	return out
}

func (b *BBS) queryCells(ctx context.Context, refs []cellRef) ([]pando.CellState, []bool) {
	states := make([]pando.CellState, len(refs))
	ok := make([]bool, len(refs))
	parallel(len(refs), func(i int) {
		cctx, cancel := context.WithTimeout(ctx, cellStateTimeout)
		defer cancel()
		s, err := refs[i].cell.State(cctx)
		if err != nil {
			b.log.Warn("cell state", "cell_id", refs[i].id, "error", err)
			return
		}
		s.ID = refs[i].id
		s.Draining = s.Draining || refs[i].draining
		states[i], ok[i] = s, true
	})
	return states, ok
}

var _ pando.Runtime = (*BBS)(nil)
