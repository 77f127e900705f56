package server

import (
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/pandoplatform/pando/internal/router"
	"golang.org/x/sys/unix"
)

// wantFiles is the open-file limit the server asks for: enough for the
// router's default cap (a routed connection costs two fds) with room for
// the API, the database, containers and log pipes.
const wantFiles = 1 << 16

// fdReserve is kept out of the router's share of the fd limit.
const fdReserve = 4096

// raiseFileLimit lifts RLIMIT_NOFILE towards wantFiles (as root the hard
// limit too, up to fs.nr_open) and returns the soft limit in force.
func raiseFileLimit(log *slog.Logger) int {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return 1024
	}
	want := uint64(wantFiles)
	if data, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
		if n, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64); err == nil {
			want = min(want, n)
		}
	}
	if lim.Cur >= want {
		return int(lim.Cur)
	}
	next := unix.Rlimit{Cur: want, Max: max(lim.Max, want)}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &next); err != nil {
		// Not allowed past the hard limit: take what there is.
		next = unix.Rlimit{Cur: lim.Max, Max: lim.Max}
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &next); err != nil {
			return int(lim.Cur)
		}
	}
	log.Debug("open file limit", "soft", next.Cur, "hard", next.Max)
	return int(next.Cur)
}

// apiMaxConns caps the API's open connections (an eighth of the fd limit
// at most); one client address may hold apiMaxConnsPerClient of them.
// CLIs hold a few each (requests, log streams, long polls).
func apiMaxConns(fdLimit int) int { return min(4096, max(fdLimit/8, 64)) }

const apiMaxConnsPerClient = 512

// routerMaxConns is the configured cap, or the default lowered to fit in
// the fd limit (two fds per routed connection) beside others (the API's
// share in `pando server`, none in `pando router`) and a reserve.
func routerMaxConns(configured, fdLimit, others int, log *slog.Logger) int {
	if configured != 0 {
		return configured
	}
	fit := (fdLimit - fdReserve - others) / 2
	if fit < router.DefaultMaxConns {
		fit = max(fit, 64)
		log.Warn("the open file limit caps the router below its default connections; raise the limit (ulimit -n, systemd LimitNOFILE) to lift it",
			"fd_limit", fdLimit, "router_max_conns", fit, "default", router.DefaultMaxConns)
		return fit
	}
	return router.DefaultMaxConns
}
