package server

import (
	"strings"
	"testing"

	"github.com/pandoplatform/pando/internal/cellauth"
)

func TestCellAPIAddr_isTheAPIPortPlusOneUnlessGiven(t *testing.T) {
	for _, c := range []struct{ api, flag, want string }{
		{"127.0.0.1:9022", "", "127.0.0.1:9023"},
		{"10.0.0.5:8000", "", "10.0.0.5:8001"},
		{"[::1]:9022", "", "[::1]:9023"},
		{"127.0.0.1:9022", "0.0.0.0:7000", "0.0.0.0:7000"},
	} {
		if got := cellAPIAddr(Config{APIAddr: c.api, CellAPIAddr: c.flag}); got != c.want {
			t.Errorf("API %s, flag %q: %s, want %s", c.api, c.flag, got, c.want)
		}
	}
}

func TestDefaultCellID_isAValidIDNamingTheAddress(t *testing.T) {
	for addr, ip := range map[string]string{"127.0.0.2:7000": "-127.0.0.2", "[fd00::1]:7000": "-fd00--1"} {
		id := DefaultCellID(addr)
		if err := cellauth.CheckCellID(id); err != nil || !strings.HasSuffix(id, ip) {
			t.Errorf("DefaultCellID(%s) = %q (%v), want a valid id ending in %s", addr, id, err, ip)
		}
	}
}
