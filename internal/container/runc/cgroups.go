package runc

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// cgroups finds a container's cgroup files. runc places a container whose
// linux.cgroupsPath is absolute at <hierarchy mount><cgroupsPath> (v1) or
// /sys/fs/cgroup<cgroupsPath> (v2), so the paths are known without asking
// runc.
type cgroups struct {
	v2 bool
	// v1 mount points by controller; v2 uses unified.
	memory, cpuacct, pids string
	unified               string
	all                   []string // every hierarchy, for clean-up
}

func detectCgroups() (cgroups, error) {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return cgroups{v2: true, unified: "/sys/fs/cgroup", all: []string{"/sys/fs/cgroup"}}, nil
	}
	ms, err := readMountInfo()
	if err != nil {
		return cgroups{}, err
	}
	var cg cgroups
	for _, m := range ms {
		if m.fsType == "cgroup2" { // hybrid: runc makes dirs here too
			cg.all = append(cg.all, m.mountPoint)
		}
		if m.fsType != "cgroup" {
			continue
		}
		cg.all = append(cg.all, m.mountPoint)
		for _, opt := range strings.Split(m.superOpts, ",") {
			switch opt {
			case "memory":
				cg.memory = m.mountPoint
			case "cpuacct":
				cg.cpuacct = m.mountPoint
			case "pids":
				cg.pids = m.mountPoint
			}
		}
	}
	if cg.memory == "" {
		return cgroups{}, errors.New("no cgroup v1 memory hierarchy and no cgroup v2: cannot limit memory")
	}
	return cg, nil
}

type cgroupStats struct {
	cpuNanos, memory, memoryLimit, pids uint64
}

// stats reads the figures a cell reports. Memory is usage minus inactive
// page cache (the "working set"), which is what an app can be blamed for.
func (cg cgroups) stats(path string) (cgroupStats, error) {
	var s cgroupStats
	var err error
	if cg.v2 {
		dir := filepath.Join(cg.unified, path)
		cpu, e := readKeyed(filepath.Join(dir, "cpu.stat"), "usage_usec")
		s.cpuNanos = cpu * 1000
		err = errors.Join(err, e)
		mem, e := readUint(filepath.Join(dir, "memory.current"))
		err = errors.Join(err, e)
		inactive, _ := readKeyed(filepath.Join(dir, "memory.stat"), "inactive_file")
		s.memory = sub(mem, inactive)
		s.memoryLimit, _ = readUint(filepath.Join(dir, "memory.max")) // "max" parses as 0
		s.pids, _ = readUint(filepath.Join(dir, "pids.current"))
		return s, err
	}
	if cg.cpuacct != "" {
		var e error
		s.cpuNanos, e = readUint(filepath.Join(cg.cpuacct, path, "cpuacct.usage"))
		err = errors.Join(err, e)
	}
	dir := filepath.Join(cg.memory, path)
	mem, e := readUint(filepath.Join(dir, "memory.usage_in_bytes"))
	err = errors.Join(err, e)
	inactive, _ := readKeyed(filepath.Join(dir, "memory.stat"), "total_inactive_file")
	s.memory = sub(mem, inactive)
	if lim, e := readUint(filepath.Join(dir, "memory.limit_in_bytes")); e == nil && lim < 1<<62 {
		s.memoryLimit = lim // the kernel's "unlimited" is near 2^63; report 0
	}
	if cg.pids != "" {
		s.pids, _ = readUint(filepath.Join(cg.pids, path, "pids.current"))
	}
	return s, err
}

// oomKills counts processes the kernel killed in the cgroup for lack of
// memory.
func (cg cgroups) oomKills(path string) (uint64, error) {
	if cg.v2 {
		return readKeyed(filepath.Join(cg.unified, path, "memory.events"), "oom_kill")
	}
	return readKeyed(filepath.Join(cg.memory, path, "memory.oom_control"), "oom_kill")
}

// killAll sends SIGKILL to every process in the cgroup at path, without
// starting a process of its own (it works when the host is out of fds or
// pids for a fork). It returns how many it signalled.
func (cg cgroups) killAll(path string) (int, error) {
	base := cg.unified
	if !cg.v2 {
		base = cg.memory
	}
	data, err := os.ReadFile(filepath.Join(base, path, "cgroup.procs"))
	if err != nil {
		return 0, fmt.Errorf("read processes of cgroup %s: %w", path, err)
	}
	n := 0
	for _, f := range strings.Fields(string(data)) {
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 0 {
			continue
		}
		if unix.Kill(pid, unix.SIGKILL) == nil {
			n++
		}
	}
	return n, nil
}

// removeEmptyUnder removes the empty cgroup directories at and below parent
// in every hierarchy, deepest first. Busy ones (rmdir fails) stay.
func (cg cgroups) removeEmptyUnder(parent string) {
	for _, mnt := range cg.all {
		base := filepath.Join(mnt, parent)
		var dirs []string
		_ = filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			_ = unix.Rmdir(d)
		}
	}
}

func sub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

func readUint(path string) (uint64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(data))
	if s == "max" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", path, err)
	}
	return n, nil
}

// readKeyed reads "key value" lines (memory.stat, memory.oom_control,
// cpu.stat) and returns key's value.
func readKeyed(path, key string) (uint64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == key {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse %s %s: %w", path, key, err)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("%s: no %s", path, key)
}
