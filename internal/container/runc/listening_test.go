package runc

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// Lines as a little-endian kernel prints them.
const procNetTCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 41234 1 0000000000000000 100 0 0 10 0
   1: 00000000:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 41235 1 0000000000000000 100 0 0 10 0
   2: 0100007F:1F90 0100007F:D2F4 01 00000000:00000000 00:00000000 00000000  1000        0 41236 1 0000000000000000 20 4 30 10 -1
`

const procNetTCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F91 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5001 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5002 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:0051 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5003 1 0000000000000000 100 0 0 10 0
`

func littleEndianOnly(t *testing.T) {
	t.Helper()
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("sample text is a little-endian kernel's")
	}
}

func addrs(t *testing.T, s ...string) []netip.AddrPort {
	t.Helper()
	var out []netip.AddrPort
	for _, a := range s {
		out = append(out, netip.MustParseAddrPort(a))
	}
	return out
}

func TestParseListening_v4ListenersOnly(t *testing.T) {
	littleEndianOnly(t)
	got, err := ParseListening(strings.NewReader(procNetTCP), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if want := addrs(t, "127.0.0.1:8080", "0.0.0.0:3000"); !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestParseListening_v6(t *testing.T) {
	littleEndianOnly(t)
	got, err := ParseListening(strings.NewReader(procNetTCP6), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if want := addrs(t, "[::]:8081", "[::1]:80", "127.0.0.1:81"); !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestParseListening_boundedInput(t *testing.T) {
	littleEndianOnly(t)
	// Only the bytes up to the limit count: the first socket line is cut
	// short and the second is never read.
	got, err := ParseListening(strings.NewReader(procNetTCP), int64(len(strings.SplitN(procNetTCP, "\n", 2)[0])+25))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("got %v past the limit", got)
	}
	// A flood of listeners yields at most maxListenersSeen of them.
	line := strings.SplitN(procNetTCP, "\n", 3)[1] + "\n"
	got, err = ParseListening(strings.NewReader(strings.Repeat(line, 1000)), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != maxListenersSeen {
		t.Errorf("%d addresses from a flood, want %d", len(got), maxListenersSeen)
	}
}

func TestParseListening_garbageIsIgnored(t *testing.T) {
	littleEndianOnly(t)
	garbage := strings.Join([]string{
		"",
		"\x00\xff\xfe binary",
		"   0: ZZZZZZZZ:1F90 00000000:0000 0A",         // bad hex address
		"   0: 0100007F:1F9 00000000:0000 0A",          // short port
		"   0: 0100007F:GGGG 00000000:0000 0A",         // bad port
		"   0: 0100007F1F90 00000000:0000 0A",          // no colon
		"   0: 0100007F00:1F90 00000000:0000 0A",       // odd address length
		"   0: 0100007F:1F90 00000000:0000 XX",         // bad state
		"0 0100007F:1F90 00000000:0000 0A",             // no sl colon
		"   0: 0100007F:1F90",                          // too few fields
		strings.Repeat("A", 4*maxProcNetLine),          // over-long line
		"   7: 00000000:1F92 00000000:0000 0A 0 0 0 0", // the one good line
	}, "\n")
	got, err := ParseListening(strings.NewReader(garbage), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	// An over-long line ends the scan: what came before it counts.
	if len(got) != 0 {
		t.Errorf("got %v from garbage", got)
	}
	got, err = ParseListening(strings.NewReader(strings.ReplaceAll(garbage, strings.Repeat("A", 4*maxProcNetLine), "")), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if want := addrs(t, "0.0.0.0:8082"); !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// The parser reads the kernel's real text: a listener this test opens on
// loopback is among the process's listening sockets.
func TestParseListening_readsTheKernelsText(t *testing.T) {
	// Other tests here enter containers' network namespaces on their
	// threads: listen and read on one thread, in one namespace.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := os.Open("/proc/thread-self/net/tcp")
	if err != nil {
		t.Fatalf("no /proc/thread-self/net/tcp (Linux has it since 3.17): %v", err)
	}
	defer f.Close()
	sc, err := ParseListening(f, maxProcNetBytes)
	if err != nil {
		t.Fatal(err)
	}
	want := netip.MustParseAddrPort(ln.Addr().String())
	if !slices.Contains(sc, want) && len(sc) < maxListenersSeen {
		t.Errorf("%v not among %v", want, sc)
	}
}
