package bbs

import (
	"cmp"
	"maps"
	"slices"
	"time"

	pando "github.com/pandoplatform/pando"
)

// actualRecord is an ActualLRP plus the bookkeeping the BBS needs about it.
type actualRecord struct {
	pando.ActualLRP
	// evacuating marks an instance on a draining cell that keeps serving
	// until its replacement (the index's primary record) is RUNNING.
	evacuating    bool
	evacuateUntil time.Time
	// placing is set while an auction for the record is in flight.
	placing bool
	// placedAt is when the auction handed the record to CellID.
	placedAt time.Time
	// startingAt is when the cell said a CLAIMED instance stopped waiting
	// for a start slot (Details cleared): its start began then.
	startingAt time.Time
	// restartAt is when a CRASHED record is restarted; zero means never
	// (the crash policy gave up).
	restartAt time.Time
	// seenEpoch is the sync epoch (sync.go) at which the BBS first knew
	// that CellID held the instance (the cell accepted its start,
	// reported it or was adopted with it); zero while it does not know.
	seenEpoch uint64
}

// taskRecord is a Task plus completion bookkeeping.
type taskRecord struct {
	pando.Task
	// completionSentAt is when the task's EventTaskCompleted was last
	// published; convergence sends it again until the task is resolved.
	completionSentAt time.Time
	// seenEpoch is as for actualRecord: when the BBS first knew that
	// CellID ran the task.
	seenEpoch uint64
}

// state is where the BBS keeps desired LRPs, actual LRPs and tasks. Values go
// in and out by copy, so a SQL-backed implementation can replace the memory
// one without changing the BBS. Callers hold the BBS lock.
type state interface {
	desired(processGUID string) (pando.DesiredLRP, bool)
	putDesired(d pando.DesiredLRP)
	deleteDesired(processGUID string)
	allDesired() []pando.DesiredLRP
	// desiredShapes is what convergence needs of every desired LRP,
	// sorted by process guid (cheaper than copying them all).
	desiredShapes() []desiredShape

	actual(instanceGUID string) (actualRecord, bool)
	putActual(a actualRecord)
	deleteActual(instanceGUID string)
	// actualsOf returns a process's records sorted by index, primaries
	// before evacuating ones.
	actualsOf(processGUID string) []actualRecord
	// evacueesOf returns a process's evacuating records of one index (in
	// no order), without looking at the others.
	evacueesOf(processGUID string, index int) []actualRecord
	allActuals() []actualRecord
	// actualsOnCell returns the records placed on a cell, in no order;
	// countActualsOnCell says how many there are.
	actualsOnCell(cellID string) []actualRecord
	countActualsOnCell(cellID string) int

	task(guid string) (taskRecord, bool)
	putTask(t taskRecord)
	deleteTask(guid string)
	allTasks() []taskRecord
	// tasksOnCell returns the tasks placed on a cell, in no order.
	tasksOnCell(cellID string) []taskRecord
}

// memState is the in-memory state. The Cloud Controller re-desires every LRP
// from the CCDB when it starts, so losing it on restart is recoverable.
type memState struct {
	desiredLRPs map[string]pando.DesiredLRP
	actuals     map[string]actualRecord
	byProcess   map[string]map[string]struct{}
	// evacuees holds the evacuating records' guids by process (few: only
	// while a cell drains).
	evacuees map[string]map[string]struct{}
	tasks    map[string]taskRecord
	// actualsByCell and tasksByCell index the guids of the records
	// placed on each cell.
	actualsByCell, tasksByCell cellIndex
}

// cellIndex is a set of guids per cell.
type cellIndex map[string]map[string]struct{}

func (ix cellIndex) move(guid, from, to string) {
	if from == to {
		return
	}
	if set := ix[from]; set != nil {
		delete(set, guid)
		if len(set) == 0 {
			delete(ix, from)
		}
	}
	if to == "" {
		return
	}
	set := ix[to]
	if set == nil {
		set = map[string]struct{}{}
		ix[to] = set
	}
	set[guid] = struct{}{}
}

func newMemState() *memState {
	return &memState{
		desiredLRPs: map[string]pando.DesiredLRP{},
		actuals:     map[string]actualRecord{},
		byProcess:   map[string]map[string]struct{}{},
		evacuees:    map[string]map[string]struct{}{},
		tasks:       map[string]taskRecord{},

		actualsByCell: cellIndex{},
		tasksByCell:   cellIndex{},
	}
}

func (m *memState) desired(guid string) (pando.DesiredLRP, bool) {
	d, ok := m.desiredLRPs[guid]
	return d, ok
}

func (m *memState) putDesired(d pando.DesiredLRP) { m.desiredLRPs[d.ProcessGUID] = d }

func (m *memState) deleteDesired(guid string) { delete(m.desiredLRPs, guid) }

// desiredShape is the part of a desired LRP a convergence pass reads for
// every process.
type desiredShape struct {
	ProcessGUID  string
	Revision     int
	Instances    int
	StartTimeout time.Duration
}

func (m *memState) desiredShapes() []desiredShape {
	out := make([]desiredShape, 0, len(m.desiredLRPs))
	for k, d := range m.desiredLRPs {
		out = append(out, desiredShape{k, d.Revision, d.Instances, d.HealthCheck.StartTimeout})
	}
	slices.SortFunc(out, func(a, b desiredShape) int { return cmp.Compare(a.ProcessGUID, b.ProcessGUID) })
	return out
}

// allDesired sorts the keys, not the (large) values: convergence reads
// every desired LRP on each pass.
func (m *memState) allDesired() []pando.DesiredLRP {
	keys := make([]string, 0, len(m.desiredLRPs))
	for k := range m.desiredLRPs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]pando.DesiredLRP, len(keys))
	for i, k := range keys {
		out[i] = m.desiredLRPs[k]
	}
	return out
}

func (m *memState) actual(guid string) (actualRecord, bool) {
	a, ok := m.actuals[guid]
	return a, ok
}

func (m *memState) putActual(a actualRecord) {
	m.actualsByCell.move(a.InstanceGUID, m.actuals[a.InstanceGUID].CellID, a.CellID)
	m.actuals[a.InstanceGUID] = a
	set := m.byProcess[a.ProcessGUID]
	if set == nil {
		set = map[string]struct{}{}
		m.byProcess[a.ProcessGUID] = set
	}
	set[a.InstanceGUID] = struct{}{}
	if a.evacuating {
		ev := m.evacuees[a.ProcessGUID]
		if ev == nil {
			ev = map[string]struct{}{}
			m.evacuees[a.ProcessGUID] = ev
		}
		ev[a.InstanceGUID] = struct{}{}
	} else {
		m.forgetEvacuee(a.ProcessGUID, a.InstanceGUID)
	}
}

func (m *memState) forgetEvacuee(processGUID, guid string) {
	if ev := m.evacuees[processGUID]; ev != nil {
		delete(ev, guid)
		if len(ev) == 0 {
			delete(m.evacuees, processGUID)
		}
	}
}

func (m *memState) evacueesOf(processGUID string, index int) []actualRecord {
	var out []actualRecord
	for guid := range m.evacuees[processGUID] {
		if a := m.actuals[guid]; a.Index == index {
			out = append(out, a)
		}
	}
	return out
}

func (m *memState) deleteActual(guid string) {
	a, ok := m.actuals[guid]
	if !ok {
		return
	}
	delete(m.actuals, guid)
	m.actualsByCell.move(guid, a.CellID, "")
	m.forgetEvacuee(a.ProcessGUID, guid)
	if set := m.byProcess[a.ProcessGUID]; set != nil {
		delete(set, guid)
		if len(set) == 0 {
			delete(m.byProcess, a.ProcessGUID)
		}
	}
}

func compareRecords(a, b actualRecord) int {
	if c := cmp.Compare(a.Index, b.Index); c != 0 {
		return c
	}
	if a.evacuating != b.evacuating {
		if !a.evacuating {
			return -1
		}
		return 1
	}
	return cmp.Compare(a.InstanceGUID, b.InstanceGUID)
}

func (m *memState) actualsOf(processGUID string) []actualRecord {
	set := m.byProcess[processGUID]
	out := make([]actualRecord, 0, len(set))
	for guid := range set {
		out = append(out, m.actuals[guid])
	}
	slices.SortFunc(out, compareRecords)
	return out
}

// allActuals sorts small keys, then copies the records in their order, as
// allDesired does.
func (m *memState) allActuals() []actualRecord {
	type key struct {
		process, guid string
		index         int
		evacuating    bool
	}
	keys := make([]key, 0, len(m.actuals))
	for _, a := range m.actuals {
		keys = append(keys, key{a.ProcessGUID, a.InstanceGUID, a.Index, a.evacuating})
	}
	slices.SortFunc(keys, func(a, b key) int {
		if c := cmp.Compare(a.process, b.process); c != 0 {
			return c
		}
		if c := cmp.Compare(a.index, b.index); c != 0 {
			return c
		}
		if a.evacuating != b.evacuating {
			if !a.evacuating {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.guid, b.guid)
	})
	out := make([]actualRecord, len(keys))
	for i, k := range keys {
		out[i] = m.actuals[k.guid]
	}
	return out
}

func (m *memState) task(guid string) (taskRecord, bool) {
	t, ok := m.tasks[guid]
	return t, ok
}

func (m *memState) putTask(t taskRecord) {
	m.tasksByCell.move(t.GUID, m.tasks[t.GUID].CellID, t.CellID)
	m.tasks[t.GUID] = t
}

func (m *memState) deleteTask(guid string) {
	m.tasksByCell.move(guid, m.tasks[guid].CellID, "")
	delete(m.tasks, guid)
}

func (m *memState) actualsOnCell(cellID string) []actualRecord {
	return onCell(m.actualsByCell, cellID, m.actuals)
}

func (m *memState) countActualsOnCell(cellID string) int { return len(m.actualsByCell[cellID]) }

func (m *memState) tasksOnCell(cellID string) []taskRecord {
	return onCell(m.tasksByCell, cellID, m.tasks)
}

// onCell returns the records an index places on a cell, in no order.
func onCell[R any](ix cellIndex, cellID string, records map[string]R) []R {
	set := ix[cellID]
	out := make([]R, 0, len(set))
	for guid := range set {
		out = append(out, records[guid])
	}
	return out
}

func (m *memState) allTasks() []taskRecord {
	out := make([]taskRecord, 0, len(m.tasks))
	for _, t := range m.tasks {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b taskRecord) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.GUID, b.GUID))
	})
	return out
}

// Copies, so callers and stored values never share slices.

func cloneDesired(d pando.DesiredLRP) pando.DesiredLRP {
	d.Env = slices.Clone(d.Env)
	d.Ports = slices.Clone(d.Ports)
	d.Routes = slices.Clone(d.Routes)
	d.RoutePorts = maps.Clone(d.RoutePorts)
	return d
}

func cloneActual(a pando.ActualLRP) pando.ActualLRP {
	a.Ports = slices.Clone(a.Ports)
	if a.Crash != nil {
		c := *a.Crash
		a.Crash = &c
	}
	return a
}

func cloneTask(t pando.Task) pando.Task {
	if t.Staging != nil {
		s := *t.Staging
		s.Buildpacks = slices.Clone(s.Buildpacks)
		s.Env = slices.Clone(s.Env)
		t.Staging = &s
	}
	if t.Failure != nil {
		f := *t.Failure
		t.Failure = &f
	}
	if t.Run != nil {
		r := *t.Run
		r.Env = slices.Clone(r.Env)
		t.Run = &r
	}
	if t.Result != nil {
		r := *t.Result
		if r.ProcessTypes != nil {
			pt := make(map[string]string, len(r.ProcessTypes))
			for k, v := range r.ProcessTypes {
				pt[k] = v
			}
			r.ProcessTypes = pt
		}
		t.Result = &r
	}
	return t
}
