package sqlstore

import (
	"context"
	"database/sql/driver"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// pgProbeEvery is how often the circuit tries PostgreSQL again while it
// cannot be reached (the first try is at once).
const pgProbeEvery = time.Second

// pgCircuit bounds how long requests wait for a PostgreSQL that cannot be
// reached. A connection it cannot make (refused, or connect_timeout spent
// on a network that drops packets) opens the circuit: from then on every
// request fails at once with errUnreachable instead of waiting its own
// connect_timeout, while one goroutine tries to connect in the background,
// at once and then every pgProbeEvery; the first connection it makes
// closes the circuit. So only the requests already connecting when
// PostgreSQL went away wait for it (connect_timeout per address).
type pgCircuit struct {
	dial   func(context.Context) (driver.Conn, error)
	every  time.Duration
	logger *slog.Logger

	mu      sync.Mutex
	err     error // the failure that opened the circuit; nil: closed
	stopped bool
	stop    chan struct{}
	done    sync.WaitGroup
}

func newPGCircuit(dial func(context.Context) (driver.Conn, error), logger *slog.Logger) *pgCircuit {
	return &pgCircuit{dial: dial, every: pgProbeEvery, logger: logger, stop: make(chan struct{})}
}

// check is errUnreachable while the circuit is open, nil otherwise.
func (c *pgCircuit) check() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return errUnreachable(c.err)
	}
	return nil
}

// trip opens the circuit for err, a connection that could not be made,
// and starts the probe unless it runs already.
func (c *pgCircuit) trip(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil || c.stopped {
		return
	}
	c.err = err
	c.logger.Warn("PostgreSQL cannot be reached: requests fail at once (503) until it answers again", "err", err)
	c.done.Add(1)
	go c.probe()
}

func (c *pgCircuit) probe() {
	defer c.done.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		conn, err := c.dial(ctx)
		if err == nil {
			conn.Close()
			c.mu.Lock()
			c.err = nil
			c.mu.Unlock()
			c.logger.Info("PostgreSQL answers again")
			return
		}
		if ctx.Err() != nil {
			return
		}
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		t.Reset(c.every)
	}
}

// close stops the probe and waits for it.
func (c *pgCircuit) close() {
	if c == nil {
		return
	}
	c.mu.Lock()
	if !c.stopped {
		c.stopped = true
		close(c.stop)
	}
	c.mu.Unlock()
	c.done.Wait()
}

// pgConnector turns the connections it cannot make into errUnreachable
// (bar a refused login or a missing database), so that is what a request
// meets while PostgreSQL is down, and opens the circuit on them.
type pgConnector struct {
	driver.Connector
	circuit *pgCircuit
}

func (c pgConnector) Connect(ctx context.Context) (driver.Conn, error) {
	if err := c.circuit.check(); err != nil {
		return nil, err
	}
	conn, err := c.Connector.Connect(ctx)
	if err != nil && ctx.Err() == nil && (pgDialect{}).unreachable(err) {
		c.circuit.trip(err)
		return nil, errUnreachable(err)
	}
	return conn, err
}

// pgUserTimeout bounds how long data sent to PostgreSQL may stay
// unacknowledged before the connection counts as broken, and keepalives
// find an idle connection's peer gone: on a network that drops packets a
// pooled connection fails within this instead of the kernel's
// retransmission limit (~15 minutes).
const pgUserTimeout = 20 * time.Second

// pgDial dials like pgx's default dialer, with pgUserTimeout and
// keepalives on TCP connections.
func pgDial(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 15 * time.Second, Interval: 5 * time.Second, Count: 3},
		Control: func(network, _ string, rc syscall.RawConn) error {
			if network != "tcp" && network != "tcp4" && network != "tcp6" {
				return nil
			}
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(pgUserTimeout.Milliseconds()))
			})
			if err != nil {
				return err
			}
			return serr
		},
	}
	return d.DialContext(ctx, network, addr)
}
