package cell

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/container"
)

// healthCheck returns the instance's check (CF's port, http or process),
// each attempt bounded by the invocation timeout. The port and http checks
// reach the first container port from inside the container's network
// namespace, as the router's traffic does.
func (r *Rep) healthCheck(i *instance, ctr container.Container) func(ctx context.Context) error {
	hc := i.lrp.HealthCheck
	timeout := hc.InvocationTimeout
	if timeout <= 0 {
		timeout = DefaultInvocationTimeout
	}
	port := checkPort(i)
	switch hc.Type {
	case pando.HealthCheckProcess:
		return func(context.Context) error { return nil }
	case pando.HealthCheckHTTP:
		endpoint := hc.Endpoint
		if endpoint == "" {
			endpoint = "/"
		}
		if !strings.HasPrefix(endpoint, "/") {
			endpoint = "/" + endpoint
		}
		client := &http.Client{
			Transport: &http.Transport{
				DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					return ctr.Dial(ctx, port)
				},
				DisableKeepAlives: true,
			},
			// A redirect is not a 200: do not follow it.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
		url := "http://127.0.0.1:" + strconv.Itoa(port) + endpoint
		return func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			start := time.Now()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				//lint:ignore ST1005 CF's wording, shown to users as the crash reason
				return fmt.Errorf("Failed to make HTTP request to '%s' on port %d: %v", endpoint, port, err)
			}
			resp, err := client.Do(req)
			if cellShortOf(err) {
				return classify(err)
			}
			if err != nil {
				return attemptFailure(fmt.Sprintf("Failed to make HTTP request to '%s' on port %d", endpoint, port), err, timeout)
			}
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				//lint:ignore ST1005 CF's wording, shown to users as the crash reason
				return fmt.Errorf("Failed to make HTTP request to '%s' on port %d: received status code %d in %dms",
					endpoint, port, resp.StatusCode, time.Since(start).Milliseconds())
			}
			return nil
		}
	default: // port
		return func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			c, err := ctr.Dial(ctx, port)
			if cellShortOf(err) {
				return classify(err)
			}
			if err != nil {
				return attemptFailure(fmt.Sprintf("Failed to make TCP connection to port %d", port), err, timeout)
			}
			c.Close()
			return nil
		}
	}
}

// checkPort is the container port the port and http checks reach.
func checkPort(i *instance) int {
	if len(i.ports) > 0 {
		return i.ports[0].ContainerPort
	}
	return 8080
}

// errCellResources marks a check that could not run because this cell
// (not the app) is short of fds, memory or threads. It says nothing about
// the instance's health, so it never fails an instance.
var errCellResources = errors.New("cell out of resources")

// cellShortOf reports whether err is the cell's own resource exhaustion.
func cellShortOf(err error) bool {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.EAGAIN} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// classify turns a check's dial error into errCellResources when the cell
// is to blame.
func classify(err error) error {
	if err != nil && cellShortOf(err) {
		return fmt.Errorf("%w: %v", errCellResources, err)
	}
	return err
}

// connError words a dial failure as CF's health check does.
func connError(err error, timeout time.Duration) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case timedOut(err):
		return fmt.Sprintf("timed out after %s", timeout)
	}
	return err.Error()
}

func timedOut(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err)
}

// attemptFailure is a failed check attempt in CF's words ("WHAT: why");
// one that got no answer in time is a *noAnswerError.
func attemptFailure(what string, err error, timeout time.Duration) error {
	msg := what + ": " + connError(err, timeout)
	if timedOut(err) {
		return &noAnswerError{msg: msg}
	}
	return errors.New(msg)
}

// noAnswerError is a check attempt that timed out: the app may be
// unhealthy, or only starved of CPU with the rest of the machine.
type noAnswerError struct{ msg string }

func (e *noAnswerError) Error() string { return e.msg }

// firstCheckDelay is the gap after a startup check that failed at once.
const firstCheckDelay = 5 * time.Millisecond

// nextCheckDelay is the gap before the next startup health check, after
// one that failed delay after the one before, elapsed into the start. The
// gaps grow by firstCheckDelay each time, up to fastCheckCap (and never
// past the interval): a node or Python app that binds in 50-150 ms is
// seen within 15-25 ms of it (gaps that doubled caught a 90 ms start at
// 155 ms), one that takes a second or two (npm start, a JVM) within
// about 100 ms, at a cost of ~40 checks (a connect each) in the first
// four seconds. After fastCheckFor the checks slow to the interval.
func nextCheckDelay(delay, elapsed, interval time.Duration) time.Duration {
	if elapsed >= fastCheckFor {
		return interval
	}
	return min(delay+firstCheckDelay, interval, fastCheckCap)
}
