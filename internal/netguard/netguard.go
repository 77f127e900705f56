// Package netguard holds the address checks shared by what dials out on a
// stranger's behalf (the staging egress proxy, syslog drains): whether an
// address is this machine's and whether it reaches one of the platform's
// own listeners.
package netguard

import (
	"net"
	"net/netip"
)

// Local reports whether ip is one of this machine's interface addresses;
// true when that cannot be told (refusing is the safe answer).
func Local(ip netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return true
	}
	ip = ip.Unmap()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if la, ok := netip.AddrFromSlice(n.IP); ok && la.Unmap() == ip {
				return true
			}
		}
	}
	return false
}

// PlatformListener reports whether ip:port reaches one of the platform's
// own listeners: a port in ports (inclusive ranges) on a loopback,
// unspecified or local interface address.
func PlatformListener(ip netip.Addr, port int, ports [][2]int) bool {
	for _, r := range ports {
		if port >= r[0] && port <= r[1] {
			return ip.IsLoopback() || ip.IsUnspecified() || Local(ip)
		}
	}
	return false
}
