package netguard

import (
	"net/netip"
	"testing"
)

func TestPlatformListener_onlyThePlatformsPortsOnThisMachine(t *testing.T) {
	ports := [][2]int{{9022, 9023}, {8080, 8080}}
	for _, c := range []struct {
		addr string
		port int
		want bool
	}{
		{"127.0.0.1", 9022, true},
		{"127.9.9.9", 9023, true},
		{"::1", 8080, true},
		{"0.0.0.0", 8080, true},
		{"::ffff:127.0.0.1", 9022, true},
		{"127.0.0.1", 9024, false},
		{"192.0.2.10", 9022, false}, // TEST-NET-1: never a local interface here
	} {
		if got := PlatformListener(netip.MustParseAddr(c.addr), c.port, ports); got != c.want {
			t.Errorf("PlatformListener(%s, %d) = %v, want %v", c.addr, c.port, got, c.want)
		}
	}
}

func TestLocal_findsLoopbackAndNotAForeignAddress(t *testing.T) {
	if !Local(netip.MustParseAddr("127.0.0.1")) {
		t.Error("127.0.0.1 is not local")
	}
	if Local(netip.MustParseAddr("192.0.2.10")) {
		t.Error("192.0.2.10 (TEST-NET-1) is local")
	}
}
