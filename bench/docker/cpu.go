package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// usage is what one process had used at a moment: time on a CPU and
// time runnable but waiting for one (summed over its threads, from
// /proc/PID/task/TID/schedstat, in nanoseconds; threads that ended are
// not counted), the CPU of the children it has reaped, and its minor page
// faults. CPU time, unlike wall time, hardly depends on the machine's
// load, so it says where a cold start's work goes on a busy machine too.
type usage struct {
	run, wait time.Duration
	children  time.Duration
	minflt    int64
}

func (u usage) sub(v usage) usage {
	return usage{run: u.run - v.run, wait: u.wait - v.wait, children: u.children - v.children, minflt: u.minflt - v.minflt}
}

// userHZ is the unit of /proc/PID/stat's times (USER_HZ, 100 on Linux).
const userHZ = 100

// processUsage reads pid's usage from /proc.
func processUsage(pid int) (usage, error) {
	var u usage
	dir := filepath.Join("/proc", strconv.Itoa(pid))
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return u, err
	}
	if u.minflt, u.children, err = parseStat(string(stat)); err != nil {
		return u, fmt.Errorf("%s/stat: %w", dir, err)
	}
	tasks, err := os.ReadDir(filepath.Join(dir, "task"))
	if err != nil {
		return u, err
	}
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, "task", t.Name(), "schedstat"))
		if err != nil {
			continue // the thread ended meanwhile
		}
		run, wait, err := parseSchedstat(string(b))
		if err != nil {
			return u, fmt.Errorf("%s/task/%s/schedstat: %w", dir, t.Name(), err)
		}
		u.run += run
		u.wait += wait
	}
	return u, nil
}

// parseStat reads the minor faults and the reaped children's user and
// system time from a /proc/PID/stat line.
func parseStat(s string) (minflt int64, children time.Duration, err error) {
	// The command name is in parentheses and may hold spaces or ')'.
	k := strings.LastIndexByte(s, ')')
	if k < 0 || k+2 > len(s) {
		return 0, 0, errors.New("no command name")
	}
	f := strings.Fields(s[k+2:]) // from field 3 (state) on
	if len(f) < 15 {
		return 0, 0, fmt.Errorf("%d fields", len(f)+2)
	}
	var n [3]int64
	for i, idx := range []int{7, 13, 14} { // minflt, cutime, cstime
		if n[i], err = strconv.ParseInt(f[idx], 10, 64); err != nil {
			return 0, 0, err
		}
	}
	return n[0], time.Duration(n[1]+n[2]) * time.Second / userHZ, nil
}

// parseSchedstat reads "run_ns wait_ns timeslices".
func parseSchedstat(s string) (run, wait time.Duration, err error) {
	f := strings.Fields(s)
	if len(f) < 2 {
		return 0, 0, fmt.Errorf("%q: want run and wait times", s)
	}
	r, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return 0, 0, err
	}
	w, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0, 0, err
	}
	return time.Duration(r), time.Duration(w), nil
}

// childPid finds this process's child running the command comm (0: none).
func childPid(comm string) int {
	des, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	me := strconv.Itoa(os.Getpid())
	for _, de := range des {
		pid, err := strconv.Atoi(de.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", de.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open || end+2 > len(s) {
			continue
		}
		if f := strings.Fields(s[end+2:]); len(f) > 1 && s[open+1:end] == comm && f[1] == me {
			return pid
		}
	}
	return 0
}

// selfUsage is this process's CPU and that of its reaped children
// (getrusage).
func selfUsage() (self, children time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err == nil {
		children = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return self, children
}

// meter measures the usage of the processes of a cold start from start
// to stop: the server (and the children it reaped), the registry, and
// this process (its polling) and the children it reaped meanwhile (the
// CLI).
type meter struct {
	serverPid, registryPid int
	server0, registry0     usage
	self0, children0       time.Duration
}

// cpuUse is what a meter measured.
type cpuUse struct {
	server, registry usage
	bench, cli       time.Duration
	ok               bool
}

func startMeter(serverPid, registryPid int) *meter {
	m := &meter{serverPid: serverPid, registryPid: registryPid}
	m.server0, _ = processUsage(serverPid)
	if registryPid > 0 {
		m.registry0, _ = processUsage(registryPid)
	}
	m.self0, m.children0 = selfUsage()
	return m
}

func (m *meter) stop() cpuUse {
	self, children := selfUsage()
	c := cpuUse{bench: self - m.self0, cli: children - m.children0}
	s, err := processUsage(m.serverPid)
	if err != nil {
		return c
	}
	c.server, c.ok = s.sub(m.server0), true
	if m.registryPid > 0 {
		if r, err := processUsage(m.registryPid); err == nil {
			c.registry = r.sub(m.registry0)
		}
	}
	return c
}

// reportCPU prints the medians of what the processes used during the cold
// push, beside what the registry used serving the floor.
func reportCPU(w io.Writer, rs []round) {
	var ok []round
	for _, r := range rs {
		if r.cpu.ok {
			ok = append(ok, r)
		}
	}
	if len(ok) == 0 {
		return
	}
	med := func(f func(round) time.Duration) string {
		ds := make([]time.Duration, len(ok))
		for i, r := range ok {
			ds[i] = f(r)
		}
		slices.Sort(ds)
		return ms(ds[len(ds)/2])
	}
	medN := func(f func(round) int64) int64 {
		ns := make([]int64, len(ok))
		for i, r := range ok {
			ns[i] = f(r)
		}
		slices.Sort(ns)
		return ns[len(ns)/2]
	}
	fmt.Fprintf(w, "\nCPU from the push to the first 200 (median of %d rounds; on a CPU / runnable, waiting for one):\n", len(ok))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "pando server\t%s\t%s\t\n", med(func(r round) time.Duration { return r.cpu.server.run }), med(func(r round) time.Duration { return r.cpu.server.wait }))
	fmt.Fprintf(tw, "  its children reaped meanwhile (runc, mkfs.ext4, unshare, ...)\t%s\t\t\n", med(func(r round) time.Duration { return r.cpu.server.children }))
	fmt.Fprintf(tw, "pando push (CLI)\t%s\t\t\n", med(func(r round) time.Duration { return r.cpu.cli }))
	fmt.Fprintf(tw, "the bench (its polling for the first 200)\t%s\t\t\n", med(func(r round) time.Duration { return r.cpu.bench }))
	if ok[0].cpu.registry != (usage{}) {
		fmt.Fprintf(tw, "registry\t%s\t%s\t\n", med(func(r round) time.Duration { return r.cpu.registry.run }), med(func(r round) time.Duration { return r.cpu.registry.wait }))
		fmt.Fprintf(tw, "registry serving the floor, after\t%s\t%s\t\n", med(func(r round) time.Duration { return r.floorRegistry.run }), med(func(r round) time.Duration { return r.floorRegistry.wait }))
		fmt.Fprintf(tw, "registry page faults: during the push / the floor\t%d\t%d\t\n", medN(func(r round) int64 { return r.cpu.registry.minflt }), medN(func(r round) int64 { return r.floorRegistry.minflt }))
	}
	fmt.Fprintf(tw, "pando server page faults during the push\t%d\t\t\n", medN(func(r round) int64 { return r.cpu.server.minflt }))
	tw.Flush()
}
