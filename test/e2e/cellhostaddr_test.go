package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// --cell-host-addr opens the local cell's host ports on that address and
// advertises it: the instance's stats name it, a client (a router on
// another machine) reaches the instance there, and the server's own router
// still reaches it.
func TestServer_cellHostAddrIsWhereLocalInstancesAreReached(t *testing.T) {
	t.Parallel()
	var ip string
	s := ownServerFor(t, nil, func(s *server) []string {
		ip = s.loNet + "5"
		return []string{"--cell-host-addr", ip}
	})
	const name = "hostaddr"
	s.pushBinary(t, name, 1)
	var stats struct {
		Resources []struct {
			State         string `json:"state"`
			Host          string `json:"host"`
			InstancePorts []struct {
				External int `json:"external"`
			} `json:"instance_ports"`
		} `json:"resources"`
	}
	s.api(t, "/v3/apps/"+s.appGUID(t, name)+"/processes/web/stats", &stats)
	if len(stats.Resources) != 1 || stats.Resources[0].Host != ip || len(stats.Resources[0].InstancePorts) == 0 {
		t.Fatalf("stats %+v, want the instance at %s", stats, ip)
	}
	addr := net.JoinHostPort(ip, fmt.Sprint(stats.Resources[0].InstancePorts[0].External))
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := hc.Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("GET the instance at its advertised address %s: %v", addr, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), "binary app index=0") {
		t.Fatalf("GET %s: %d %q", addr, resp.StatusCode, body)
	}
	if body := s.curlRoute(t, name+".localhost", "/"); !strings.HasPrefix(body, "binary app index=0") {
		t.Fatalf("through the server's router: %q", body)
	}
}
