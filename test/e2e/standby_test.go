package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pandoplatform/pando/internal/sqlstore/pgtest"
)

// standbyTakeover bounds how long the standby takes to serve after the
// leader dies: it claims the database within a second of PostgreSQL
// seeing the leader's connection close, then starts as a first server.
const standbyTakeover = 45 * time.Second

// Two `pando api` on one PostgreSQL database and one S3 bucket, the
// second with a copy of the first's secrets: the second waits as a
// standby (naming the leader, its API closed) while the first pushes an
// app to a joined cell that a separate `pando router` routes to (both
// given the two API URLs). The leader is killed (-9): the standby takes
// over, the app answers through the router throughout, the cell and the
// router move to the new leader, and a scale through it runs a second
// instance the router reaches.
func TestAPIStandby_takesOverWhenTheLeaderIsKilled(t *testing.T) {
	t.Parallel()
	requireE2E(t)
	dsn := pgtest.URL(t)
	_, blobArgs, blobEnv := s3Blobstore(t, "replicas")
	args := append([]string{"--database-url", dsn}, blobArgs...)
	leader := ownNode(t, "api", blobEnv, func(*server) []string { return args })

	standby, err := newServer(env.bin)
	if err != nil {
		t.Fatal(err)
	}
	standby.verb, standby.args, standby.env, standby.copiedSecrets = "api", args, blobEnv, true
	t.Cleanup(func() {
		if err := standby.cleanup(); err != nil {
			t.Errorf("clean up the standby: %v", err)
		}
	})
	standby.showLogOnFailure(t)
	copySecrets(t, leader.dataDir, standby.dataDir)
	started := make(chan error, 1)
	go func() { started <- standby.startOnce() }()
	eventually(t, "the standby saying it waits for the leader", startTimeout, func() (bool, string) {
		b, _ := os.ReadFile(standby.logPath)
		return strings.Contains(string(b), "is a standby") && strings.Contains(string(b), "api "+leader.apiAddr), string(b)
	})
	if c, err := net.DialTimeout("tcp", standby.apiAddr, time.Second); err == nil {
		c.Close()
		t.Fatalf("the standby's API %s accepts connections while the leader runs", standby.apiAddr)
	}

	c := leader.joinCell(t, "cell-ha", "127.0.0.2", "--memory", "4G", "--join", "http://"+standby.apiAddr)
	r := leader.startRouterWith(t, nil, []string{"--api", "http://" + standby.apiAddr})
	const name = "ha-app"
	host := name + ".localhost"
	push := leader.mustPando(t, "push", name, "-p", binaryApp(t), "-b", "binary_buildpack", "-c", "./server", "-m", "128M")
	requireOutput(t, push, `web: 1 of 1 instances running`)
	r.waitBody(t, host, "binary app index=0")
	guid := leader.appGUID(t, name)

	probe := startProbe(r, host)
	killed := time.Now()
	leader.kill9(t)
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("the standby did not take over: %v", err)
		}
	case <-time.After(standbyTakeover):
		t.Fatalf("the standby did not serve within %s of the leader's death", standbyTakeover)
	}
	t.Logf("the standby served %s after the leader was killed", time.Since(killed).Round(100*time.Millisecond))
	if log := standby.logTail(0, maxLogShown); !strings.Contains(log, "pando api started") {
		t.Fatalf("the new leader did not start:\n%s", log)
	}

	// The joined cell moves to the new leader, which adopts its instance
	// (not placed again: one instance, on cell-ha).
	eventually(t, "cell-ha healthy on the new leader with the app's instance", waitTimeout, func() (bool, string) {
		cs := standby.cells(t)
		return len(cs) == 1 && cs[0].ID == "cell-ha" && cs[0].State == "healthy" && len(cs[0].Instances) == 1, fmt.Sprint(cs)
	})
	if log := c.logTail(maxLogShown); !strings.Contains(log, "switched to another API replica") {
		t.Errorf("the cell does not say it switched to the new leader:\n%s", log)
	}
	served, failed := probe.stop()
	if len(failed) > 0 {
		t.Errorf("%d of %d requests through the router failed across the takeover: %v", len(failed), served+len(failed), failed)
	}
	if served == 0 {
		t.Fatal("the probe sent no request through the router")
	}

	// The new leader runs the platform: a scale places a second instance,
	// and the router (following the new leader's table) reaches it.
	standby.mustPando(t, "scale", name, "-i", "2")
	r.waitBody(t, host, "binary app index=1")
	if got := standby.appGUID(t, name); got != guid {
		t.Errorf("the app on the new leader is %s, want %s", got, guid)
	}
	if log := r.logTail(); !strings.Contains(log, "switched to another API replica") {
		t.Errorf("the router does not say it switched to the new leader:\n%s", log)
	}
}

// copySecrets copies the files docs/operating.md says API replicas share.
func copySecrets(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"secrets.key", "uaa-key.pem", "cell-ca.pem", "cell-ca-key.pem", "cell-token", "router-token", "admin-password"} {
		b, err := os.ReadFile(filepath.Join(from, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
