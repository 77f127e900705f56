// Package container is the seam between a cell and the thing that isolates
// processes: runc/ runs real OCI containers; fake/ simulates them for tests
// and scale benchmarks. A cell asks a Backend to run a Spec and gets back a
// Container it can wait on, measure, dial into and destroy.
package container

import (
	"context"
	"io"
	"net"
	"time"
)

// Mount is a bind mount into the container.
type Mount struct {
	Source      string
	Destination string
	ReadOnly    bool
}

// Spec describes one container and the process it runs.
type Spec struct {
	// ID is unique per backend; it names the runc container and its bundle.
	ID string
	// RootFS is a read-only root filesystem directory. Empty means the
	// "host" stack: host /usr, /bin, /lib, /lib64, /sbin, /etc/ssl (and the
	// few /etc files programs need) bind-mounted read-only.
	RootFS string
	// Layers, when set, make the rootfs an OCI image's: its layer
	// directories (overlayfs-ready, whiteouts converted), lowest first,
	// stacked read-only under the container's writable layer. RootFS must
	// then be empty. An image keeps its own /etc/passwd and /etc/group,
	// and gets no /home/vcap unless Mounts has one.
	Layers []string
	// Mounts are bound in after the standard ones. The backend hands each
	// writable mount's source, and everything below it, over to the
	// container's user (as the host sees it, e.g. its user namespace's
	// host uid): callers fill them as root. Read-only sources are used
	// as they are, so must be readable by any user.
	Mounts []Mount
	// UID and GID are the process's ids inside the container; zero means
	// vcap's. User, when set, overrides them with exact ids, root
	// included (root of the container's user namespace, never the host's).
	UID  uint32
	GID  uint32
	User *User
	Env  []string // KEY=VALUE
	Dir  string
	Args []string
	// Volume, if set, is the Dir of a Volume from the same Backend: the
	// container's own writable directories (/tmp, the overlay's upper
	// layer) go on it, so that everything the container can write shares
	// the volume's limit, and Stats reports the volume's usage. The
	// backend keeps them under Volume/container; the caller's files go in
	// other subdirectories, bind-mounted through Mounts.
	Volume string
	// Resource limits; zero means unlimited.
	MemoryBytes int64
	// DiskBytes is informational (e.g. for the container's environment):
	// the Volume's size is what limits disk.
	DiskBytes int64
	PidsLimit int64
	CPUShares uint64
	// Stdout and Stderr receive the process's output; the backend keeps
	// copying until the process exits. Nil discards. Once a Write
	// returns, its bytes count as taken: a backend whose containers
	// outlive the server (runc) gives an adopting server again only what
	// no Write took.
	Stdout io.Writer
	Stderr io.Writer
	// Dropped, when set, hears of output lost while nobody read it: a
	// backend whose containers outlive the server (runc) keeps a bounded
	// backlog meanwhile and counts what did not fit.
	Dropped func(lines, bytes uint64)
}

// Output is where a container's output goes (as Spec's fields).
type Output struct {
	Stdout, Stderr io.Writer
	Dropped        func(lines, bytes uint64)
}

// User is a process's exact ids inside a container.
type User struct {
	UID, GID uint32
}

// ExitStatus is how a container's process ended.
type ExitStatus struct {
	Code      int
	OOMKilled bool
	Signaled  bool
}

// Stats are a container's resource figures from its cgroups.
type Stats struct {
	CPUNanos    uint64 // cumulative CPU time
	MemoryBytes uint64
	MemoryLimit uint64
	DiskBytes   uint64
	Pids        uint64
}

// Container is a running (or exited) container.
type Container interface {
	ID() string
	// Wait blocks until the process exits (or ctx ends).
	Wait(ctx context.Context) (ExitStatus, error)
	Stats(ctx context.Context) (Stats, error)
	// Dial connects to 127.0.0.1:port inside the container's own network
	// namespace. This is how the cell forwards inbound traffic and runs
	// health checks without routed container addresses.
	Dial(ctx context.Context, port int) (net.Conn, error)
	// Stop sends SIGTERM, then SIGKILL after grace.
	Stop(ctx context.Context, grace time.Duration) error
	// Destroy kills what is left and removes the container and its files.
	// It is safe to call more than once.
	Destroy(ctx context.Context) error
}

// Volume is a directory on a filesystem of its own whose size the kernel
// enforces: a write past it fails with ENOSPC, whatever the number, names
// or lifetime of the files (a deleted file still open counts until it is
// closed).
type Volume interface {
	Dir() string
	Usage() (VolumeUsage, error)
	// Release unmounts the volume and frees it and everything on it; Dir
	// is gone after it. Destroy the containers using it first. It is safe
	// to call more than once.
	Release(ctx context.Context) error
}

// VolumeUsage is a volume's fill, as the filesystem reports it.
type VolumeUsage struct {
	SizeBytes  uint64 // room for files
	UsedBytes  uint64
	FreeBytes  uint64 // what an unprivileged writer can still write
	FreeInodes uint64
}

// Full reports whether the volume is at its limit: too little room left
// for a usual write (writers fail on a whole buffer, so the last one can
// leave up to its size free), or no inode left.
func (u VolumeUsage) Full() bool {
	slack := max(u.SizeBytes/50, 2<<20)
	slack = min(slack, u.SizeBytes/4)
	return u.FreeBytes <= slack || u.FreeInodes == 0
}

// Backend creates containers and the volumes that hold what they write.
type Backend interface {
	Run(ctx context.Context, spec Spec) (Container, error)
	// Volume creates dir (absent or an empty directory) as a volume of
	// bytes. The caller fills it, runs containers with Spec.Volume = dir
	// and releases it after destroying them.
	Volume(ctx context.Context, dir string, bytes int64) (Volume, error)
}
