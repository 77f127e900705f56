package runc

import (
	"runtime"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// allowedSyscalls are what an unprivileged process without capabilities
// may call, modelled on the syscalls Docker's default profile allows such
// a container (its unconditional list, less io_uring). Anything not listed
// fails with EPERM. Names a given architecture lacks are skipped by
// libseccomp; names newer than the host's libseccomp are skipped by runc.
var allowedSyscalls = []string{
	// Files and directories.
	"access", "chdir", "chmod", "chown", "chown32", "close", "close_range", "copy_file_range",
	"creat", "dup", "dup2", "dup3", "faccessat", "faccessat2", "fadvise64", "fadvise64_64",
	"fallocate", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat",
	"fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fremovexattr",
	"fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate",
	"ftruncate64", "futimesat", "getcwd", "getdents", "getdents64", "getxattr", "ioctl",
	"lchown", "lchown32", "lgetxattr", "link", "linkat", "listxattr", "llistxattr", "_llseek",
	"lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "mkdir", "mkdirat", "mknod",
	"mknodat", "name_to_handle_at", "newfstatat", "open", "openat", "openat2", "pipe", "pipe2",
	"pread64", "preadv", "preadv2", "pwrite64", "pwritev", "pwritev2", "read", "readahead",
	"readlink", "readlinkat", "readv", "removexattr", "rename", "renameat", "renameat2",
	"rmdir", "sendfile", "sendfile64", "setxattr", "splice", "stat", "stat64", "statfs",
	"statfs64", "statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs", "tee",
	"truncate", "truncate64", "umask", "unlink", "unlinkat", "utime", "utimensat",
	"utimensat_time64", "utimes", "vmsplice", "write", "writev", "cachestat",
	// Asynchronous I/O (the old AIO interface; io_uring is not allowed).
	"io_cancel", "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64",
	"io_setup", "io_submit",
	// Waiting and events.
	"epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
	"epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "fanotify_mark",
	"inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "_newselect",
	"pause", "poll", "ppoll", "ppoll_time64", "pselect6", "pselect6_time64", "select",
	"signalfd", "signalfd4", "timerfd_create", "timerfd_gettime", "timerfd_gettime64",
	"timerfd_settime", "timerfd_settime64",
	// Memory.
	"brk", "madvise", "map_shadow_stack", "membarrier", "memfd_create", "memfd_secret",
	"mincore", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect", "mremap", "mseal",
	"msync", "munlock", "munlockall", "munmap", "pkey_alloc", "pkey_free", "pkey_mprotect",
	"remap_file_pages",
	// Processes, threads and signals (clone is below, with its flags checked).
	"capget", "capset", "execve", "execveat", "exit", "exit_group", "fork", "futex",
	"futex_requeue", "futex_time64", "futex_wait", "futex_waitv", "futex_wake", "get_robust_list",
	"getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrlimit", "getrusage", "getsid",
	"gettid", "ioprio_get", "ioprio_set", "kill", "pidfd_open", "pidfd_send_signal", "prctl",
	"prlimit64", "process_mrelease", "restart_syscall", "rseq", "rt_sigaction",
	"rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend",
	"rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_get_priority_max",
	"sched_get_priority_min", "sched_getaffinity", "sched_getattr", "sched_getparam",
	"sched_getscheduler", "sched_rr_get_interval", "sched_rr_get_interval_time64",
	"sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield",
	"seccomp", "set_robust_list", "set_tid_address", "setpgid", "setpriority", "setrlimit",
	"setsid", "sigaltstack", "sigprocmask", "sigreturn", "tgkill", "tkill", "ugetrlimit",
	"vfork", "wait4", "waitid", "waitpid",
	"landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self",
	// Credentials: without capabilities these only switch among the
	// process's own ids.
	"getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups",
	"getgroups32", "getresgid", "getresgid32", "getresuid", "getresuid32", "getuid", "getuid32",
	"setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups",
	"setgroups32", "setregid", "setregid32", "setresgid", "setresgid32", "setresuid",
	"setresuid32", "setreuid", "setreuid32", "setuid", "setuid32",
	// Time.
	"adjtimex", "alarm", "clock_adjtime", "clock_adjtime64", "clock_getres",
	"clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
	"clock_nanosleep_time64", "getitimer", "gettimeofday", "nanosleep", "setitimer", "time",
	"timer_create", "timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64",
	"timer_settime", "timer_settime64", "times",
	// Sockets (socket itself is below, with its family checked).
	"accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt",
	"listen", "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "send", "sendmmsg",
	"sendmsg", "sendto", "setsockopt", "shutdown", "socketcall", "socketpair",
	// System V and POSIX IPC (the container has its own IPC namespace).
	"ipc", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive",
	"mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "msgctl",
	"msgget", "msgrcv", "msgsnd", "semctl", "semget", "semop", "semtimedop",
	"semtimedop_time64", "shmat", "shmctl", "shmdt", "shmget",
	// Information.
	"getcpu", "getrandom", "sysinfo", "uname",
}

// Architecture-specific calls x86 programs (and their libc) make.
var allowedX86Syscalls = []string{"arch_prctl", "get_thread_area", "modify_ldt", "set_thread_area"}

// personalities programs set for themselves (as Docker allows): Linux,
// Linux with UNAME26, with READ_IMPLIES_EXEC... and the query 0xffffffff.
var allowedPersonalities = []uint64{0x0, 0x0008, 0x20000, 0x20008, 0xffffffff}

// Flags and values the filter checks.
const (
	// CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET: no new
	// namespaces, so no user namespace with capabilities in it.
	cloneNamespaceFlags = 0x7E020000
	afVsock             = 40
)

// seccompProfile is an allowlist: everything not named fails with EPERM,
// as in Docker's default profile. Not allowed, among others: io_uring
// (io_uring_setup/enter/register: a syscall multiplexer seccomp cannot
// see into), bpf, perf_event_open, userfaultfd, keyctl/add_key/
// request_key, ptrace and process_vm_readv/writev, mount and the new
// mount API, unshare and setns, clone with namespace flags, kexec and
// modules, reboot, swap, quotactl, acct, syslog, chroot, pivot_root,
// setting the clock or hostname, NUMA policy calls, AF_VSOCK sockets.
// clone3 answers ENOSYS so libc and Go fall back to clone, whose flags the
// filter can inspect.
func seccompProfile() *specs.LinuxSeccomp {
	eperm, enosys := uint(1), uint(38)
	var arches []specs.Arch
	names := append([]string(nil), allowedSyscalls...)
	switch runtime.GOARCH {
	case "amd64":
		arches = []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}
		names = append(names, allowedX86Syscalls...)
	case "arm64":
		arches = []specs.Arch{specs.ArchAARCH64, specs.ArchARM}
	}
	rules := []specs.LinuxSyscall{
		{Names: names, Action: specs.ActAllow},
		{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &enosys},
		{
			Names: []string{"clone"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: cloneFlagsArg(), Value: cloneNamespaceFlags, ValueTwo: 0, Op: specs.OpMaskedEqual}},
		},
		{
			Names: []string{"socket"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: afVsock, Op: specs.OpNotEqual}},
		},
	}
	for _, p := range allowedPersonalities {
		rules = append(rules, specs.LinuxSyscall{
			Names: []string{"personality"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: p, Op: specs.OpEqualTo}},
		})
	}
	return &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: &eperm,
		Architectures:   arches,
		Syscalls:        rules,
	}
}

// cloneFlagsArg is clone's flags argument index (s390x swaps the first two).
func cloneFlagsArg() uint {
	if runtime.GOARCH == "s390x" {
		return 1
	}
	return 0
}
