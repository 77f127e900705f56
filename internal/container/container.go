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
	// Mounts are bound in after the standard ones. The backend hands each
	// writable mount's source, and everything below it, over to the
	// container's user (as the host sees it, e.g. its user namespace's
	// host uid): callers fill them as root. Read-only sources are used
	// as they are, so must be readable by any user.
	Mounts []Mount
	// UID and GID are the process's ids inside the container.
	UID  uint32
	GID  uint32
	Env  []string // KEY=VALUE
	Dir  string
	Args []string
	// Resource limits; zero means unlimited.
	MemoryBytes int64
	DiskBytes   int64 // best effort
	PidsLimit   int64
	CPUShares   uint64
	// Stdout and Stderr receive the process's output; the backend keeps
	// copying until the process exits. Nil discards.
	Stdout io.Writer
	Stderr io.Writer
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

// Backend creates containers.
type Backend interface {
	Run(ctx context.Context, spec Spec) (Container, error)
}
