package drain

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"

	"github.com/pandoplatform/pando/internal/netguard"
)

// Guard keeps drains off addresses a developer must not reach through
// the platform: a drain URL is chosen by whoever can create a service
// instance, and the server dials it. Link-local addresses (cloud metadata
// services), unspecified and multicast ones are refused, and so are the
// platform's own listeners (DenyPorts) on loopback or local addresses.
// The check runs on the address actually dialed, after name resolution,
// so a name that resolves differently later gains nothing.
type Guard struct {
	// DenyPorts are the platform's own ports (inclusive ranges): the API,
	// the router, the cell API.
	DenyPorts [][2]int
}

// ErrDenied is the error for an address a drain may not reach.
var ErrDenied = errors.New("address not allowed for syslog drains")

func (g Guard) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		host, port, err := net.SplitHostPort(address)
		if err != nil {
			return fmt.Errorf("%s: %w", address, ErrDenied)
		}
		ip, err1 := netip.ParseAddr(host)
		pn, err2 := strconv.Atoi(port)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("%s: %w", address, ErrDenied)
		}
		ap = netip.AddrPortFrom(ip, uint16(pn))
	}
	if g.denied(ap.Addr().Unmap(), int(ap.Port())) {
		return fmt.Errorf("%s: %w", address, ErrDenied)
	}
	return nil
}

func (g Guard) denied(ip netip.Addr, port int) bool {
	if ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsUnspecified() || ip.IsMulticast() {
		return true
	}
	return netguard.PlatformListener(ip, port, g.DenyPorts)
}
