package e2e

import (
	"net"
	"strconv"
	"strings"
	"testing"
)

// When the cell API's derived port (the API's + 1) is taken and the
// operator did not choose one, the server still starts, runs apps on its
// own cell and says why no cell can join.
func TestServer_runsWithoutJoinedCellsWhenItsDerivedCellAPIPortIsTaken(t *testing.T) {
	t.Parallel()
	requireE2E(t)
	env.gates.ownTurn(t)
	s, err := newServer(env.bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.cleanup(); err != nil {
			t.Errorf("clean up server: %v", err)
		}
	})
	s.showLogOnFailure(t)

	// Hold a port P on the server's IP and give the API P-1 (retrying
	// while P-1 is itself taken).
	ip := s.loNet + "1"
	var held net.Listener
	for try := 0; held == nil; try++ {
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatal(err)
		}
		p := ln.Addr().(*net.TCPAddr).Port
		if probe, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(p-1))); err == nil {
			probe.Close()
			held, s.apiAddr = ln, net.JoinHostPort(ip, strconv.Itoa(p-1))
			break
		}
		ln.Close()
		if try == 20 {
			t.Fatal("no free port below a free port on " + ip)
		}
	}
	defer held.Close()
	s.cellAPIAddr = "" // the default: API port + 1, the one held

	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	if log := s.logTail(0, 1<<20); !strings.Contains(log, "cells on other machines cannot join this server") ||
		!strings.Contains(log, held.Addr().String()) {
		t.Fatalf("the server does not say that cells cannot join, and why:\n%s", log)
	}
	r := s.mustPando(t, "push", "nocellapi", "-p", binaryApp(t), "-b", "binary_buildpack", "-c", "./server", "-m", "128M")
	requireOutput(t, r, `web: 1 of 1 instances running`)
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
}
