package cell

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/container"
)

// lifecyclePath is where the backend mounts the pando binary
// (docs/contracts.md).
const lifecyclePath = "/tmp/lifecycle/pando"

// instancePids bounds the processes of one instance.
const instancePids = 1024

// destroyTimeout bounds tearing a container down.
const destroyTimeout = 30 * time.Second

// instance is one LRP instance on this cell. Its goroutine (runInstance)
// owns the container; others only read through the mutex or ask it to stop.
type instance struct {
	lrp       pando.DesiredLRP
	index     int
	guid      string
	memMB     int
	diskMB    int
	ports     []pando.PortMapping
	listeners []net.Listener
	dir       string // the instance's disk volume; home/ is its /home/vcap
	vol       container.Volume
	// releaseLayers lets the cell's layer cache collect the image's
	// layers again (docker LRPs); nil otherwise.
	releaseLayers func()
	// releasePrepared gives back what the backend made ahead of the
	// container's Run, if no Run took it.
	releasePrepared func()

	stopCtx context.Context // ends when a stop is requested
	stopNow context.CancelFunc

	mu        sync.Mutex
	stopping  bool
	grace     time.Duration
	state     string
	details   string // reported while CLAIMED: it waits for a start slot
	ctr       container.Container
	startedAt time.Time
	cpu       uint64
	cpuAt     time.Time
	// stdout and stderr turn the app's output into log lines; teardown
	// flushes a last line that had no newline.
	stdout, stderr *lineWriter
}

func (i *instance) getState() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.state
}

func (i *instance) container() container.Container {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.ctr
}

// requestStop asks the instance goroutine to stop the instance, giving it
// grace between SIGTERM and SIGKILL.
func (i *instance) requestStop(grace time.Duration) {
	i.mu.Lock()
	if !i.stopping {
		i.stopping, i.grace = true, grace
	} else if grace < i.grace {
		i.grace = grace
	}
	i.mu.Unlock()
	i.stopNow()
}

func (i *instance) stopRequested() (bool, time.Duration) {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.stopping, i.grace
}

func (r *Rep) actual(i *instance, state string) pando.ActualLRP {
	i.mu.Lock()
	defer i.mu.Unlock()
	a := pando.ActualLRP{
		ProcessGUID:  i.lrp.ProcessGUID,
		Revision:     i.lrp.Revision,
		Index:        i.index,
		InstanceGUID: i.guid,
		CellID:       r.cfg.ID,
		State:        state,
		Since:        time.Now(),
		StartedAt:    i.startedAt,
	}
	if state == pando.ActualClaimed {
		a.Details = i.details
	}
	if state == pando.ActualRunning {
		a.Address = r.cfg.HostAddr
		a.Ports = append([]pando.PortMapping(nil), i.ports...)
		if len(i.ports) > 0 {
			a.Port = i.ports[0].HostPort
		}
	}
	return a
}

// StartLRP accepts an instance: it checks the stack and capacity, takes
// host ports, and starts the instance's goroutine, which reports CLAIMED,
// then RUNNING once healthy, or CRASHED.
func (r *Rep) StartLRP(ctx context.Context, lrp pando.DesiredLRP, index int, instanceGUID string) error {
	switch {
	case instanceGUID == "" || lrp.ProcessGUID == "":
		return pando.Errorf(pando.EInvalid, "start instance: process and instance guids are required")
	case index < 0:
		return pando.Errorf(pando.EInvalid, "start instance %s: negative index %d", instanceGUID, index)
	case lrp.Image != "" && r.cfg.Images == nil:
		return pando.Errorf(pando.EInvalid, "cell %s cannot run docker images", r.cfg.ID)
	case lrp.Image == "" && lrp.DropletKey == "":
		return pando.Errorf(pando.EInvalid, "start instance %s: no droplet", instanceGUID)
	}
	if lrp.Image == "" {
		if _, _, err := r.rootFS(lrp.Stack); err != nil {
			return err
		}
	}
	memMB, diskMB := lrp.MemoryMB, lrp.DiskMB
	if memMB <= 0 {
		memMB = DefaultInstanceMemoryMB
	}
	if diskMB <= 0 {
		diskMB = DefaultInstanceDiskMB
	}
	cports := lrp.Ports
	if len(cports) == 0 {
		cports = []int{8080}
	}
	for _, p := range cports {
		if p <= 0 || p > 65535 {
			return pando.Errorf(pando.EInvalid, "start instance %s: bad port %d", instanceGUID, p)
		}
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.instances[instanceGUID]; ok {
		return nil // already here: a retried start
	}
	if err := r.reserveLocked(memMB, diskMB); err != nil {
		return err
	}
	lns, hostPorts, err := r.allocatePortsLocked(len(cports))
	if err != nil {
		return err
	}
	mappings := make([]pando.PortMapping, len(cports))
	for k, p := range cports {
		mappings[k] = pando.PortMapping{ContainerPort: p, HostPort: hostPorts[k]}
	}
	stopCtx, stopNow := context.WithCancel(r.ctx)
	i := &instance{
		lrp:       lrp,
		index:     index,
		guid:      instanceGUID,
		memMB:     memMB,
		diskMB:    diskMB,
		ports:     mappings,
		listeners: lns,
		dir:       filepath.Join(r.cfg.WorkDir, dirInstances, safeName(instanceGUID)),
		stopCtx:   stopCtx,
		stopNow:   stopNow,
		state:     pando.ActualClaimed,
	}
	r.instances[instanceGUID] = i
	r.wg.Add(1)
	go r.runInstance(i)
	return nil
}

// appSource is the log source type of an LRP's output, as CF tags it:
// APP/PROC/WEB for web, APP/PROC/WORKER for a worker, and so on.
func appSource(lrp pando.DesiredLRP) string {
	if lrp.ProcessType == "" || lrp.ProcessType == "web" {
		return pando.LogSourceApp
	}
	return "APP/PROC/" + strings.ToUpper(lrp.ProcessType)
}

// allocatePortsLocked opens n listeners on free host ports of the range;
// the listener is the reservation. r.mu must be held.
func (r *Rep) allocatePortsLocked(n int) ([]net.Listener, []int, error) {
	lo, hi := r.cfg.PortRange[0], r.cfg.PortRange[1]
	var lns []net.Listener
	var ports []int
	fail := func() ([]net.Listener, []int, error) {
		for k, ln := range lns {
			ln.Close()
			delete(r.ports, ports[k])
		}
		return nil, nil, pando.Errorf(pando.EInsufficient, "insufficient resources: no free host port in %d-%d", lo, hi)
	}
	for len(lns) < n {
		found := false
		for tries := 0; tries <= hi-lo; tries++ {
			p := r.nextPort
			if r.nextPort++; r.nextPort > hi {
				r.nextPort = lo
			}
			if r.ports[p] {
				continue
			}
			ln, err := net.Listen("tcp", net.JoinHostPort(r.cfg.HostAddr, strconv.Itoa(p)))
			if err != nil {
				continue // taken by someone else
			}
			r.ports[p] = true
			lns, ports = append(lns, ln), append(ports, p)
			found = true
			break
		}
		if !found {
			return fail()
		}
	}
	return lns, ports, nil
}

// StopLRP stops an instance gracefully (SIGTERM, then SIGKILL after
// StopGrace), destroys its container and reports it removed. It returns
// once the stop is under way.
func (r *Rep) StopLRP(ctx context.Context, processGUID, instanceGUID string) error {
	r.mu.Lock()
	i, ok := r.instances[instanceGUID]
	r.mu.Unlock()
	if !ok || (processGUID != "" && i.lrp.ProcessGUID != processGUID) {
		return pando.Errorf(pando.ENotFound, "instance %s of process %s is not on cell %s", instanceGUID, processGUID, r.cfg.ID)
	}
	i.requestStop(r.cfg.StopGrace)
	return nil
}

// runInstance is an instance's life: claim, run, teardown, report.
func (r *Rep) runInstance(i *instance) {
	defer r.wg.Done()
	r.reportActual(r.actual(i, pando.ActualClaimed))
	r.finish(i, r.live(i))
}

// finish tears an instance down and reports it removed (a stop was
// requested) or CRASHED with why.
func (r *Rep) finish(i *instance, why *pando.Failure) {
	r.parkIfDetached()
	defer r.markEnding(i.guid)() // until its end is reported
	r.teardown(i)
	if stopped, _ := i.stopRequested(); stopped {
		r.reportRemoved(i.lrp.ProcessGUID, i.guid)
		return
	}
	a := r.actual(i, pando.ActualCrashed)
	a.Crash = why
	r.reportActual(a)
}

// teardown destroys the container, closes the host ports and removes the
// instance's files, record and reservation.
func (r *Rep) teardown(i *instance) {
	r.removeRecord(i)
	if i.stdout != nil {
		i.stdout.Flush()
		i.stderr.Flush()
	}
	if ctr := i.container(); ctr != nil {
		r.cellLog(i, "OUT", "Cell %s destroying container for instance %s", r.cfg.ID, i.guid)
		ctx, cancel := context.WithTimeout(context.Background(), destroyTimeout)
		err := ctr.Destroy(ctx)
		cancel()
		if err != nil {
			r.log.Error("destroy container", "instance_guid", i.guid, "error", err)
		} else {
			r.cellLog(i, "OUT", "Cell %s successfully destroyed container for instance %s", r.cfg.ID, i.guid)
		}
	}
	r.releaseVolume(i.vol)
	if i.releaseLayers != nil {
		i.releaseLayers()
	}
	if i.releasePrepared != nil {
		i.releasePrepared()
	}
	for _, ln := range i.listeners {
		ln.Close()
	}
	if err := os.RemoveAll(i.dir); err != nil {
		r.log.Error("remove instance dir", "instance_guid", i.guid, "error", err)
	}
	i.stopNow() // releases the context
	r.mu.Lock()
	delete(r.instances, i.guid)
	for _, p := range i.ports {
		delete(r.ports, p.HostPort)
	}
	r.mu.Unlock()
}

// instanceSpec prepares the instance's disk volume and files (the droplet
// at /home/vcap) and its container spec, from what instanceFiles
// downloaded.
func (r *Rep) instanceSpec(ctx context.Context, i *instance, files startFiles) (container.Spec, error) {
	lrp := i.lrp
	if lrp.Image != "" {
		return r.imageSpec(ctx, i, files)
	}
	_, rootfs, err := r.rootFS(lrp.Stack)
	if err != nil {
		return container.Spec{}, err
	}
	vol, err := r.newVolume(ctx, i.dir, i.diskMB)
	if err != nil {
		return container.Spec{}, err
	}
	i.vol = vol
	// Extracted as root: the backend hands the directory over to the
	// container's user (its host uid) when it runs the container.
	home := filepath.Join(i.dir, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		return container.Spec{}, err
	}
	if files.droplet != nil {
		if err := extractDroplet(ctx, files.droplet, home, i.diskMB); err != nil {
			return container.Spec{}, err
		}
	}
	mounts := []container.Mount{{Source: home, Destination: "/home/vcap"}}
	if lrp.BindingFiles != "" {
		// Writable so the backend hands the files to the app's user.
		bindings := filepath.Join(i.dir, "bindings")
		if err := writeBindingFiles(bindings, lrp.BindingFiles, lrpServices(lrp.Env)); err != nil {
			return container.Spec{}, err
		}
		mounts = append(mounts, container.Mount{Source: bindings, Destination: bindingRoot})
	}
	uid, gid := userIDs(lrp.User)
	idx := strconv.Itoa(i.index)
	i.stdout, i.stderr = outputWriters(r.logLimits(lrp.LogRateLimitBytes, "app instance"), func(typ, line string) {
		r.emit(lrp.AppGUID, appSource(lrp), idx, typ, line)
	})
	spec := container.Spec{
		ID:          containerID("app", i.guid),
		RootFS:      rootfs,
		Mounts:      mounts,
		Volume:      vol.Dir(),
		UID:         uid,
		GID:         gid,
		Env:         r.instanceEnv(lrp, i.index, i.guid, i.ports, i.memMB, i.diskMB),
		MemoryBytes: int64(i.memMB) << 20,
		DiskBytes:   int64(i.diskMB) << 20,
		PidsLimit:   instancePids,
		CPUShares:   cpuShares(i.memMB),
		Stdout:      i.stdout,
		Stderr:      i.stderr,
	}
	spec.Dir = "/home/vcap/app"
	spec.Args = []string{lifecyclePath, "launcher", "--app-dir", "/home/vcap/app", "--", lrp.StartCommand}
	return spec, nil
}

// cpuShares gives CPU weight in proportion to memory (1 GB = the kernel's
// default 1024 shares).
func cpuShares(memMB int) uint64 {
	return uint64(min(max(memMB, 2), 262144))
}

// userIDs maps an LRP's user ("", "vcap", "UID" or "UID:GID") to ids; 0
// lets the backend pick vcap.
func userIDs(user string) (uint32, uint32) {
	u, g, _ := strings.Cut(user, ":")
	uid, err := strconv.ParseUint(u, 10, 32)
	if err != nil {
		return VcapUID, VcapGID
	}
	gid, err := strconv.ParseUint(g, 10, 32)
	if err != nil {
		gid = uid
	}
	return uint32(uid), uint32(gid)
}

var unsafeID = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// safeName makes a guid safe as a file or container name.
func safeName(s string) string {
	s = unsafeID.ReplaceAllString(s, "_")
	if len(s) > 100 {
		s = s[:100]
	}
	if s == "" || s[0] == '.' || s[0] == '_' || s[0] == '-' {
		s = "x" + s
	}
	return s
}

func containerID(prefix, guid string) string { return prefix + "-" + safeName(guid) }

// cellLog emits a CELL line for the instance (as CF's rep does) and logs it.
func (r *Rep) cellLog(i *instance, typ, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.emit(i.lrp.AppGUID, pando.LogSourceCell, strconv.Itoa(i.index), typ, msg)
	r.log.Debug(msg, "instance_guid", i.guid, "process_guid", i.lrp.ProcessGUID)
}
