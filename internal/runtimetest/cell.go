// Package runtimetest is the conformance suite of the runtime contract
// (pando.Runtime): every implementation, the in-process BBS and the HTTP
// client alike, must pass Run. Cell is the simulated cell the suite runs
// work on.
package runtimetest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/pandoplatform/pando"
)

// Cell is a simulated cell: instances it is asked to start report CLAIMED
// then RUNNING at once, tasks run until the test completes them.
type Cell struct {
	id       string
	memoryMB int
	// Reporter receives the cell's reports; set it before the cell gets
	// work (the BBS behind the runtime under test).
	Reporter pando.CellReporter

	mu        sync.Mutex
	instances map[string]pando.DesiredLRP // by instance GUID
	tasks     map[string]pando.Task
	cancelled []string
}

// NewCell returns a cell with memoryMB of memory and the "host" stack.
func NewCell(id string, memoryMB int) *Cell {
	return &Cell{id: id, memoryMB: memoryMB, instances: map[string]pando.DesiredLRP{}, tasks: map[string]pando.Task{}}
}

func (c *Cell) ID() string { return c.id }

func (c *Cell) State(ctx context.Context) (pando.CellState, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := pando.CellState{ID: c.id, Zone: "z1", Stacks: []string{"host"}, TotalMemoryMB: c.memoryMB,
		TotalDiskMB: 100 << 10, TotalContainers: 100, InstancesPerProcess: map[string]int{}}
	for _, d := range c.instances {
		s.UsedMemoryMB += d.MemoryMB
		s.UsedDiskMB += d.DiskMB
		s.UsedContainers++
		s.InstancesPerProcess[d.ProcessGUID]++
	}
	for _, t := range c.tasks {
		s.UsedContainers++
		if t.Staging != nil {
			s.UsedMemoryMB += t.Staging.MemoryMB
		}
	}
	return s, nil
}

func (c *Cell) StartLRP(ctx context.Context, lrp pando.DesiredLRP, index int, instanceGUID string) error {
	c.mu.Lock()
	c.instances[instanceGUID] = lrp
	c.mu.Unlock()
	port := 61000 + index
	a := pando.ActualLRP{ProcessGUID: lrp.ProcessGUID, Revision: lrp.Revision, Index: index,
		InstanceGUID: instanceGUID, CellID: c.id, State: pando.ActualClaimed}
	if err := c.Reporter.ActualLRPChanged(ctx, a); err != nil {
		return err
	}
	a.State, a.Address, a.Port = pando.ActualRunning, "127.0.0.1", port
	a.Ports = []pando.PortMapping{{ContainerPort: 8080, HostPort: port}}
	a.StartedAt = time.Now()
	return c.Reporter.ActualLRPChanged(ctx, a)
}

func (c *Cell) StopLRP(ctx context.Context, processGUID, instanceGUID string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.instances[instanceGUID]; !ok {
		return pando.Errorf(pando.ENotFound, "instance %s not on cell %s", instanceGUID, c.id)
	}
	delete(c.instances, instanceGUID)
	return nil
}

func (c *Cell) RunTask(ctx context.Context, t pando.Task) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tasks[t.GUID] = t
	return nil
}

func (c *Cell) CancelTask(ctx context.Context, guid string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cancelled = append(c.cancelled, guid)
	delete(c.tasks, guid)
	return nil
}

func (c *Cell) Stats(ctx context.Context, instanceGUID string) (pando.InstanceStats, error) {
	return pando.InstanceStats{InstanceGUID: instanceGUID}, nil
}

// Running reports whether the cell runs an instance or a task.
func (c *Cell) Running(guid string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, lrp := c.instances[guid]
	_, task := c.tasks[guid]
	return lrp || task
}

// Cancelled returns the task GUIDs the runtime cancelled on the cell.
func (c *Cell) Cancelled() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.cancelled)
}

// CompleteTask ends a running task with the outcome of done (Failed,
// Failure or FailureReason, FailureCode, Result) and reports it.
func (c *Cell) CompleteTask(ctx context.Context, guid string, done pando.Task) error {
	c.mu.Lock()
	_, ok := c.tasks[guid]
	delete(c.tasks, guid)
	c.mu.Unlock()
	if !ok {
		return errors.New("runtimetest: task " + guid + " is not running on cell " + c.id)
	}
	done.GUID, done.CellID, done.State = guid, c.id, pando.TaskCompleted
	return c.Reporter.TaskCompleted(ctx, done)
}
