package connwrap

import "net/netip"

// PerAddr counts what each client address holds (connections, large
// heads) for a limit per client; an address that holds nothing has no
// entry, so the map stays as small as the clients present. The caller
// guards it.
type PerAddr map[netip.Addr]int

// Take counts one more for addr.
func (p PerAddr) Take(addr netip.Addr) { p[addr]++ }

// Give counts one less for addr, dropping it at zero.
func (p PerAddr) Give(addr netip.Addr) {
	if n := p[addr] - 1; n > 0 {
		p[addr] = n
	} else {
		delete(p, addr)
	}
}
