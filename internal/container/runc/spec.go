package runc

import (
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/pandoplatform/pando/internal/container"
)

// defaultPath is PATH when the caller's environment has none.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// maxOpenFiles is CF's default instance file descriptor limit. runc run
// starts under prlimit with it and the container inherits it: runc would
// set a spec's rlimits from outside, with prlimit(2) on a process of
// another user, which needs CAP_SYS_RESOURCE that root may lack.
const maxOpenFiles = 16384

// ociSpec builds config.json: runc's default spec (namespaces, /proc,
// /dev, masked paths) plus the stack, the generated /etc files, the
// per-container /home/vcap and /tmp, the lifecycle binary and the caller's
// mounts, in that order.
func (b *Backend) ociSpec(spec container.Spec, d bundle, stack []stackMount, uid, gid uint32, ids *idLease, userns string) *specs.Spec {
	env := append([]string(nil), spec.Env...)
	hasPath := false
	for _, e := range env {
		if strings.HasPrefix(e, "PATH=") {
			hasPath = true
		}
	}
	if !hasPath {
		env = append([]string{defaultPath}, env...)
	}
	cwd := spec.Dir
	if cwd == "" {
		cwd = "/home/vcap"
		if d.image {
			cwd = "/"
		}
	}

	mounts := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
	}
	for _, m := range stack {
		mounts = append(mounts, bind(m.source, m.dest, true))
	}
	for _, name := range etcFiles {
		if d.image && (name == "passwd" || name == "group") {
			continue // the image's own
		}
		mounts = append(mounts, bind(d.path("etc", name), "/etc/"+name, true))
	}
	if !d.image {
		mounts = append(mounts, bind(d.writable("home"), "/home/vcap", false))
	}
	mounts = append(mounts,
		bind(d.writable("tmp"), "/tmp", false),
		bind(b.lifecycle, LifecyclePath, true),
	)
	for _, m := range sortMounts(spec.Mounts) {
		mounts = append(mounts, bind(m.Source, m.Destination, m.ReadOnly))
	}

	res := &specs.LinuxResources{
		Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
	}
	if spec.MemoryBytes > 0 {
		limit, swap := spec.MemoryBytes, spec.MemoryBytes // memory+swap = memory: no swap
		res.Memory = &specs.LinuxMemory{Limit: &limit, Swap: &swap}
	}
	if spec.PidsLimit > 0 {
		pids := spec.PidsLimit
		res.Pids = &specs.LinuxPids{Limit: &pids}
	}
	if spec.CPUShares > 0 {
		shares := spec.CPUShares
		res.CPU = &specs.LinuxCPU{Shares: &shares}
	}

	return &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: d.rootfs, Readonly: !d.overlay},
		Process: &specs.Process{
			Terminal:        false,
			User:            specs.User{UID: uid, GID: gid},
			Args:            append([]string(nil), spec.Args...),
			Env:             env,
			Cwd:             cwd,
			NoNewPrivileges: true,
			Capabilities:    capabilities(d.image, uid),
		},
		Hostname: hostname(spec.ID),
		Mounts:   mounts,
		Linux: &specs.Linux{
			CgroupsPath: b.cgroupParent + "/" + spec.ID,
			Resources:   res,
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace},
				// Joined, not created: see userNS. The mappings tell runc
				// what the namespace maps.
				{Type: specs.UserNamespace, Path: userns},
			},
			UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: ids.base, Size: idBlockSize}},
			GIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: ids.base, Size: idBlockSize}},
			MaskedPaths: []string{
				"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
			},
			ReadonlyPaths: []string{
				"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
			},
			Seccomp: seccompProfile(),
		},
	}
}

func bind(src, dst string, ro bool) specs.Mount {
	opts := []string{"rbind", "nosuid", "nodev"}
	if ro {
		opts = append(opts, "ro")
	} else {
		opts = append(opts, "rw")
	}
	return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: opts}
}

// imageRootCaps are what an image's root gets: Docker's default set, each
// confined to the container's own user namespace (its files, its network
// namespace), so images that start as root and drop to a user (chown,
// setuid, binding port 80) work. They give nothing on the host.
var imageRootCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// capabilities: none for buildpack containers (they never run as root);
// an image process running as root gets imageRootCaps, any other image
// user none (with no_new_privs it cannot gain them).
func capabilities(image bool, uid uint32) *specs.LinuxCapabilities {
	none := func() []string { return []string{} }
	c := &specs.LinuxCapabilities{Bounding: none(), Effective: none(), Permitted: none(), Inheritable: none(), Ambient: none()}
	if image {
		c.Bounding = append([]string(nil), imageRootCaps...)
		if uid == 0 {
			c.Effective = append([]string(nil), imageRootCaps...)
			c.Permitted = append([]string(nil), imageRootCaps...)
		}
	}
	return c
}
