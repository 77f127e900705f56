package runc

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Bounds on what Listening reads and returns: the kernel lists listening
// sockets first, so a container with thousands of connections still shows
// its listeners within the first bytes.
const (
	maxProcNetBytes  = 256 << 10
	maxProcNetLine   = 512
	maxListenersSeen = 32
)

// tcpListen is the LISTEN state in /proc/net/tcp's st column.
const tcpListen = 0x0A

// Listening returns the TCP addresses that processes in the container's
// network namespace listen on, read from the kernel's /proc/<init>/net/tcp
// and tcp6 (at most maxListenersSeen, bounded reads).
func (c *Container) Listening(ctx context.Context) ([]netip.AddrPort, error) {
	var all []netip.AddrPort
	for _, name := range []string{"tcp", "tcp6"} {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", c.pid, name))
		if errors.Is(err, os.ErrNotExist) && name == "tcp6" {
			continue // no IPv6 in this kernel
		}
		if err != nil {
			return nil, fmt.Errorf("container %s: listening sockets: %w", c.id, err)
		}
		got, err := ParseListening(f, maxProcNetBytes)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("container %s: listening sockets: %s: %w", c.id, name, err)
		}
		all = append(all, got...)
	}
	slices.SortFunc(all, func(a, b netip.AddrPort) int { return a.Compare(b) })
	all = slices.Compact(all)
	if len(all) > maxListenersSeen {
		all = all[:maxListenersSeen]
	}
	return all, nil
}

// ParseListening returns the local addresses of the LISTEN sockets in the
// text of a /proc/net/tcp or tcp6 file, reading at most limit bytes and
// ignoring lines that do not parse or are longer than maxProcNetLine. It
// returns at most maxListenersSeen addresses.
func ParseListening(r io.Reader, limit int64) ([]netip.AddrPort, error) {
	sc := bufio.NewScanner(io.LimitReader(r, limit))
	sc.Buffer(make([]byte, 0, maxProcNetLine), maxProcNetLine)
	var out []netip.AddrPort
	for sc.Scan() && len(out) < maxListenersSeen {
		if ap, ok := parseProcNetLine(sc.Text()); ok {
			out = append(out, ap)
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, bufio.ErrTooLong) {
		return out, err
	}
	return out, nil
}

// parseProcNetLine reads one socket line, "sl local rem st ...", and
// returns its local address when it is listening.
func parseProcNetLine(line string) (netip.AddrPort, bool) {
	f := strings.Fields(line)
	if len(f) < 4 || !strings.HasSuffix(f[0], ":") {
		return netip.AddrPort{}, false
	}
	if st, err := strconv.ParseUint(f[3], 16, 8); err != nil || st != tcpListen {
		return netip.AddrPort{}, false
	}
	host, port, ok := strings.Cut(f[1], ":")
	if !ok || len(port) != 4 {
		return netip.AddrPort{}, false
	}
	p, err := strconv.ParseUint(port, 16, 16)
	if err != nil {
		return netip.AddrPort{}, false
	}
	addr, ok := procNetAddr(host)
	if !ok {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(addr, uint16(p)), true
}

// procNetAddr decodes an address as the kernel prints it: 32-bit words in
// hex, each in the host's byte order (8 digits for IPv4, 32 for IPv6).
func procNetAddr(s string) (netip.Addr, bool) {
	if len(s) != 8 && len(s) != 32 {
		return netip.Addr{}, false
	}
	raw, err := hex.DecodeString(s)
	if err != nil {
		return netip.Addr{}, false
	}
	b := make([]byte, len(raw))
	for i := 0; i < len(raw); i += 4 {
		w := binary.BigEndian.Uint32(raw[i:])
		binary.NativeEndian.PutUint32(b[i:], w)
	}
	if len(b) == 4 {
		return netip.AddrFrom4([4]byte(b)), true
	}
	return netip.AddrFrom16([16]byte(b)).Unmap(), true
}
