package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pandoplatform/pando/internal/mountinfo"
)

// volumeMounts lists the mounts of the server's disk volumes: one per
// container, on its directory under <data-dir>/cell.
func (s *server) volumeMounts(t *testing.T) []string {
	t.Helper()
	ms, err := mountinfo.Under(filepath.Join(s.dataDir, "cell"))
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// loopDevices counts the loop devices backed by the server's volume images.
func (s *server) loopDevices(t *testing.T) int {
	t.Helper()
	images := filepath.Join(s.dataDir, "containers", "volumes")
	ents, err := os.ReadDir("/sys/block")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/sys/block", e.Name(), "loop", "backing_file"))
		if err == nil && strings.HasPrefix(string(b), images+"/") {
			n++
		}
	}
	return n
}

func TestDiskQuota_aDeletedOpenFileStopsAtItAndAKill9LeaksNoVolume(t *testing.T) {
	t.Parallel()
	s := ownServer(t)
	const name = "filler"
	// Fills a file no directory lists past its 16M quota, then serves
	// while holding it open.
	dir := writeFiles(t, t.TempDir(), map[string]string{"index.html": "still serving\n"})
	start := `exec 3>/tmp/hidden; rm /tmp/hidden; dd if=/dev/zero bs=1M count=200 >&3; exec busybox httpd -f -p $PORT -h /home/vcap/app`
	s.mustPando(t, "push", name, "-p", dir, "-b", "binary_buildpack", "-k", "16M", "-c", start)
	if body := s.curlRoute(t, name+".localhost", "/"); body != "still serving\n" {
		t.Fatalf("GET / = %q", body)
	}
	logs := s.mustPando(t, "logs", name, "--recent")
	requireOutput(t, logs, `No space left on device`)
	// `app` shows what the filesystem counts: the hidden file included.
	full := regexp.MustCompile(`#0\s+running\s.*\s1[56](\.\d)?M of 16M\s`)
	eventually(t, "app shows its disk full", 30*time.Second, func() (bool, string) {
		r := s.pando(t, "app", name)
		return full.MatchString(r.stdout), r.out()
	})
	before := s.volumeMounts(t)
	if len(before) != 1 || s.loopDevices(t) != 1 {
		t.Fatalf("volume mounts %v and %d loop devices for one instance, want one each", before, s.loopDevices(t))
	}

	// kill -9: the instance, its mount and loop device outlive the
	// server; the next start adopts the instance with its volume.
	s.killAll()
	if left := s.volumeMounts(t); len(left) != 1 {
		t.Fatalf("after kill -9: volume mounts %v, want the instance's still there", left)
	}
	if err := s.start(); err != nil {
		t.Fatalf("start again: %v", err)
	}
	if body := s.curlRoute(t, name+".localhost", "/"); body != "still serving\n" {
		t.Fatalf("after the restart GET / = %q", body)
	}
	after := s.volumeMounts(t)
	if len(after) != 1 || after[0] != before[0] || s.loopDevices(t) != 1 {
		t.Fatalf("after the restart: volume mounts %v (before %v), %d loop devices; want the adopted instance's only", after, before, s.loopDevices(t))
	}

	s.mustPando(t, "delete", name, "-f")
	eventually(t, "the volume released", 30*time.Second, func() (bool, string) {
		return len(s.volumeMounts(t)) == 0 && s.loopDevices(t) == 0, strings.Join(s.volumeMounts(t), " ")
	})
	// Only the images formatted ahead for the next volumes stay.
	ents, _ := os.ReadDir(filepath.Join(s.dataDir, "containers", "volumes"))
	var left []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "pool-") {
			left = append(left, e.Name())
		}
	}
	if len(left) > 0 {
		t.Errorf("volume images left: %v", left)
	}
}
