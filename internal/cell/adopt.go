package cell

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/atomicfile"
	"github.com/pandoplatform/pando/internal/container"
)

// A cell whose containers outlive its process (the runc backend runs each
// under a shim) adopts its RUNNING instances when it starts again: a
// `kill -9` of `pando server` then restarts no app. Each RUNNING instance
// has a record in WorkDir/records (written when it became RUNNING, removed
// at its teardown); New adopts the container and volume of each record
// through the Adopter, makes the host-port forwarders again, and resumes
// the liveness checks; the Adopter's Cleanup removes everything else
// (instances still starting, work without a record). What the BBS no longer
// wants it stops after the cell's Inventory (bbs.CellSynced). Stagings
// and CF tasks are adopted too (adopttask.go).

// Adopter is a container backend that can take over the containers and
// volumes an earlier process on the same state left running.
type Adopter interface {
	AdoptVolume(ctx context.Context, dir string) (container.Volume, error)
	Adopt(ctx context.Context, id string, out container.Output) (container.Container, error)
	// AdoptEnded is Adopt for a staging's or task's container, which
	// may have exited meanwhile: its Wait then gives the exit status.
	AdoptEnded(ctx context.Context, id string, out container.Output) (container.Container, error)
	// Cleanup removes every container and volume not adopted.
	Cleanup(ctx context.Context) error
}

// dirRecords holds one instanceRecord per RUNNING instance.
const dirRecords = "records"

// recordVersion is the records' format; others are not adopted.
const recordVersion = 1

// maxRecordBytes bounds a record read back (an LRP with its environment).
const maxRecordBytes = 4 << 20

// adoptTimeout bounds the adoption of all of a cell's instances at start.
const adoptTimeout = 2 * time.Minute

// instanceRecord is what the cell keeps on disk of a RUNNING instance.
type instanceRecord struct {
	Version      int                 `json:"version"`
	LRP          pando.DesiredLRP    `json:"lrp"`
	Index        int                 `json:"index"`
	InstanceGUID string              `json:"instance_guid"`
	MemoryMB     int                 `json:"memory_mb"`
	DiskMB       int                 `json:"disk_mb"`
	Ports        []pando.PortMapping `json:"ports"`
	ContainerID  string              `json:"container_id"`
	Dir          string              `json:"dir"`
	StartedAt    time.Time           `json:"started_at"`
}

func (r *Rep) recordPath(guid string) string {
	return filepath.Join(r.cfg.WorkDir, dirRecords, safeName(guid)+".json")
}

// saveRecord writes the instance's record, atomically (a temp file
// renamed over it): a killed server leaves the old record or the new one.
// No fsync: the containers do not outlive a reboot either.
func (r *Rep) saveRecord(i *instance) error {
	i.mu.Lock()
	rec := instanceRecord{
		Version:      recordVersion,
		LRP:          i.lrp,
		Index:        i.index,
		InstanceGUID: i.guid,
		MemoryMB:     i.memMB,
		DiskMB:       i.diskMB,
		Ports:        append([]pando.PortMapping(nil), i.ports...),
		ContainerID:  containerID("app", i.guid),
		Dir:          i.dir,
		StartedAt:    i.startedAt,
	}
	i.mu.Unlock()
	// Registry passwords stay sealed in the CCDB: an adopted image's
	// layers come from the cell's cache.
	rec.LRP.ImageCredentials = nil
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("record instance %s: %w", i.guid, err)
	}
	path := r.recordPath(i.guid)
	// No fsync: the container does not outlive a reboot either.
	if err := atomicfile.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("record instance %s: %w", i.guid, err)
	}
	return nil
}

func (r *Rep) removeRecord(i *instance) {
	if err := os.Remove(r.recordPath(i.guid)); err != nil && !errors.Is(err, os.ErrNotExist) {
		r.log.Warn("remove instance record", "instance_guid", i.guid, "error", err)
	}
}

// parseRecord reads a record and checks it against the cell: its paths
// and container id must be the ones the cell gives that instance guid.
func parseRecord(data []byte, workDir string) (instanceRecord, error) {
	var rec instanceRecord
	if len(data) > maxRecordBytes {
		return rec, fmt.Errorf("record of %d bytes", len(data))
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return rec, fmt.Errorf("decode record: %w", err)
	}
	switch {
	case rec.Version != recordVersion:
		return rec, fmt.Errorf("record version %d, want %d", rec.Version, recordVersion)
	case rec.InstanceGUID == "" || rec.LRP.ProcessGUID == "":
		return rec, errors.New("record without instance or process guid")
	case rec.Index < 0 || rec.MemoryMB <= 0 || rec.DiskMB <= 0:
		return rec, fmt.Errorf("record of instance %s: bad index or limits", rec.InstanceGUID)
	case rec.ContainerID != containerID("app", rec.InstanceGUID):
		return rec, fmt.Errorf("record of instance %s: container %q is not its own", rec.InstanceGUID, rec.ContainerID)
	case rec.Dir != filepath.Join(workDir, dirInstances, safeName(rec.InstanceGUID)):
		return rec, fmt.Errorf("record of instance %s: directory %q is not its own", rec.InstanceGUID, rec.Dir)
	case len(rec.Ports) == 0:
		return rec, fmt.Errorf("record of instance %s: no ports", rec.InstanceGUID)
	}
	for _, p := range rec.Ports {
		if p.ContainerPort <= 0 || p.ContainerPort > 65535 || p.HostPort <= 0 || p.HostPort > 65535 {
			return rec, fmt.Errorf("record of instance %s: bad port mapping %d:%d", rec.InstanceGUID, p.HostPort, p.ContainerPort)
		}
	}
	return rec, nil
}

// readRecords reads every record; unreadable ones are removed (their
// containers are not adopted, so Cleanup removes them).
func (r *Rep) readRecords() []instanceRecord {
	dir := filepath.Join(r.cfg.WorkDir, dirRecords)
	ents, err := os.ReadDir(dir)
	if err != nil {
		r.log.Warn("read instance records: no instance is adopted", "error", err)
		return nil
	}
	var out []instanceRecord
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if !strings.HasSuffix(e.Name(), ".json") || !e.Type().IsRegular() {
			_ = os.RemoveAll(p)
			continue
		}
		data, err := os.ReadFile(p)
		var rec instanceRecord
		if err == nil {
			rec, err = parseRecord(data, r.cfg.WorkDir)
		}
		if err != nil {
			r.log.Warn("instance record not adopted", "file", e.Name(), "error", err)
			_ = os.Remove(p)
			continue
		}
		out = append(out, rec)
	}
	return out
}

// adoptAll adopts the instances of the records, then has the backend
// remove everything else. It returns the adopted instances' directories.
func (r *Rep) adoptAll(ctx context.Context, a Adopter) map[string]bool {
	keep := map[string]bool{}
	for _, rec := range r.readRecords() {
		i, err := r.adoptInstance(ctx, a, rec)
		if err != nil {
			r.log.Warn("instance not adopted: its container is removed and the BBS places it again",
				"instance_guid", rec.InstanceGUID, "process_guid", rec.LRP.ProcessGUID, "error", err)
			_ = os.Remove(r.recordPath(rec.InstanceGUID))
			continue
		}
		keep[i.dir] = true
	}
	r.adoptTasks(ctx, a, keep)
	if err := a.Cleanup(ctx); err != nil {
		r.log.Warn("clean up leftover containers", "error", err)
	}
	return keep
}

// adoptInstance takes over a recorded instance's volume, layers, host
// ports and container, and resumes its life (runAdopted).
func (r *Rep) adoptInstance(ctx context.Context, a Adopter, rec instanceRecord) (_ *instance, err error) {
	lrp := rec.LRP
	if lrp.Image != "" && r.cfg.Images == nil {
		return nil, errors.New("the cell cannot run docker images")
	}
	stopCtx, stopNow := context.WithCancel(r.ctx)
	i := &instance{
		lrp:       lrp,
		index:     rec.Index,
		guid:      rec.InstanceGUID,
		memMB:     rec.MemoryMB,
		diskMB:    rec.DiskMB,
		dir:       rec.Dir,
		stopCtx:   stopCtx,
		stopNow:   stopNow,
		state:     pando.ActualRunning,
		startedAt: rec.StartedAt,
	}
	defer func() {
		if err != nil {
			r.releaseVolume(i.vol)
			if i.releaseLayers != nil {
				i.releaseLayers()
			}
			r.mu.Lock()
			for k, ln := range i.listeners {
				ln.Close()
				delete(r.ports, i.ports[k].HostPort)
			}
			r.mu.Unlock()
			stopNow()
		}
	}()
	r.mu.Lock()
	if err := r.reserveLocked(i.memMB, i.diskMB); err != nil {
		r.mu.Unlock()
		return nil, err
	}
	for _, p := range rec.Ports {
		ln, port, err := r.rebindPortLocked(p.HostPort)
		if err != nil {
			r.mu.Unlock()
			return nil, err
		}
		if port != p.HostPort {
			r.log.Warn("adopted instance's host port was taken: it gets another", "instance_guid", i.guid,
				"old_port", p.HostPort, "new_port", port)
		}
		i.listeners = append(i.listeners, ln)
		i.ports = append(i.ports, pando.PortMapping{ContainerPort: p.ContainerPort, HostPort: port})
	}
	r.mu.Unlock()
	if i.vol, err = a.AdoptVolume(ctx, i.dir); err != nil {
		return nil, err
	}
	if lrp.Image != "" {
		// Its layers are in the cell's cache: this holds them again.
		_, release, err := r.cfg.Images.Pull(ctx, lrp.Image, nil, int64(i.diskMB)<<20)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", lrp.Image, err)
		}
		i.releaseLayers = release
	}
	idx := strconv.Itoa(i.index)
	i.stdout, i.stderr = outputWriters(r.logLimits(lrp.LogRateLimitBytes, "app instance"), func(typ, line string) {
		r.emit(lrp.AppGUID, appSource(lrp), idx, typ, line)
	})
	ctr, err := a.Adopt(ctx, rec.ContainerID, container.Output{Stdout: i.stdout, Stderr: i.stderr,
		Dropped: func(lines, bytes uint64) {
			r.emit(lrp.AppGUID, appSource(lrp), idx, "OUT", fmt.Sprintf(
				"app instance: %d log lines (%d bytes) dropped while the cell was not reading them", lines, bytes))
		}})
	if err != nil {
		return nil, err
	}
	i.ctr = ctr
	r.mu.Lock()
	r.instances[i.guid] = i
	r.mu.Unlock()
	if err := r.saveRecord(i); err != nil { // its ports may have changed
		r.log.Warn("record adopted instance", "instance_guid", i.guid, "error", err)
	}
	r.log.Info("instance adopted", "instance_guid", i.guid, "process_guid", lrp.ProcessGUID,
		"instance_index", i.index, "container_id", rec.ContainerID)
	r.wg.Add(1)
	go r.runAdopted(i)
	return i, nil
}

// rebindPortLocked listens on port again, or on another free port of the
// range when it is taken. r.mu must be held.
func (r *Rep) rebindPortLocked(port int) (net.Listener, int, error) {
	if port >= r.cfg.PortRange[0] && port <= r.cfg.PortRange[1] && !r.ports[port] {
		if ln, err := net.Listen("tcp", net.JoinHostPort(r.cfg.HostAddr, strconv.Itoa(port))); err == nil {
			r.ports[port] = true
			return ln, port, nil
		}
	}
	lns, ports, err := r.allocatePortsLocked(1)
	if err != nil {
		return nil, 0, err
	}
	return lns[0], ports[0], nil
}

// runAdopted is an adopted instance's life: it is RUNNING (the BBS hears
// it in the cell's Inventory), checked for liveness until it exits, fails
// or is stopped, then torn down and reported as any instance.
func (r *Rep) runAdopted(i *instance) {
	defer r.wg.Done()
	r.cellLog(i, "OUT", "Cell %s adopted the container of instance %s after a restart", r.cfg.ID, i.guid)
	r.finish(i, r.watch(i, i.container(), true))
}
