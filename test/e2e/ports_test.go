package e2e

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// The platform's own ports (a server's API, router and cell API, a cell's
// rep, a router's listener) come from below the kernel's ephemeral port
// range, and the tests' own servers (httptest, registries, proxies,
// drains) from inside it (port 0). The staging egress proxy refuses the
// platform's ports on every loopback address, so a test server sharing a
// port number with a platform listener on another 127.x address would be
// refused: the two ranges never meet, so that cannot happen.

// platformPortsFloor is the lowest port the platform's listeners take.
const platformPortsFloor = 10000

// freeLoopbackAddr finds a free port on ip for a platform listener, below
// the ephemeral range, and frees it for the process to bind.
func freeLoopbackAddr(ip string) (string, error) {
	lo, hi := platformPortsFloor, ephemeralLow()-1
	if hi-lo < 1000 {
		return "", fmt.Errorf("find a free port on %s: the ephemeral port range starts at %d, leaving no room below it", ip, hi+1)
	}
	var lastErr error
	for range 100 {
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(lo+rand.IntN(hi-lo+1))))
		if err != nil {
			lastErr = err
			continue
		}
		addr := ln.Addr().String()
		ln.Close()
		return addr, nil
	}
	return "", fmt.Errorf("find a free port on %s in %d-%d: %w", ip, lo, hi, lastErr)
}

// ephemeralLow is the first port of the kernel's ephemeral range (what a
// listen on port 0 gets), 32768 when it cannot be read.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= 0 {
		return 32768
	}
	return n
}

// TestPlatformPortsNeverMeetTestServers checks the rule the egress tests
// rely on: a platform listener's port is below every port a test server
// listening on port 0 gets.
func TestPlatformPortsNeverMeetTestServers(t *testing.T) {
	low := ephemeralLow()
	for range 20 {
		addr, err := freeLoopbackAddr("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		_, p, _ := net.SplitHostPort(addr)
		n, _ := strconv.Atoi(p)
		if n < platformPortsFloor || n >= low {
			t.Fatalf("platform port %d is outside %d-%d", n, platformPortsFloor, low-1)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		got := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if got < low {
			t.Fatalf("a test server got port %d, below the ephemeral range's start %d", got, low)
		}
	}
}
