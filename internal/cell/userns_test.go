package cell

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/container/runc"
	"github.com/pandoplatform/pando/internal/testenv"
)

// probeProgram serves its uid and whether inotify_init works; with "hold"
// it first takes every inotify instance its user may have.
const probeProgram = `package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"syscall"
)

func main() {
	held := -1
	if os.Args[1] == "hold" {
		for held = 0; held < 100000; held++ {
			if _, err := syscall.InotifyInit1(syscall.IN_CLOEXEC); err != nil {
				break
			}
		}
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC)
		if err == nil {
			syscall.Close(fd)
		}
		fmt.Fprintf(w, "uid=%d held=%d inotify=%v\n", os.Getuid(), held, err)
	})
	ln, err := net.Listen("tcp", ":"+os.Getenv("PORT"))
	if err != nil {
		panic(err)
	}
	panic(http.Serve(ln, nil))
}
`

// buildProbe compiles probeProgram as a static binary.
func buildProbe(t *testing.T) []byte {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		if goBin, err = exec.LookPath("/usr/local/go/bin/go"); err != nil {
			testenv.Missing(t, "no Go toolchain to build the probe program")
		}
	}
	dir := t.TempDir()
	for name, body := range map[string]string{"go.mod": "module probe\n\ngo 1.21\n", "main.go": probeProgram} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(goBin, "build", "-o", "probe", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false", "GOTOOLCHAIN=local")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build probe: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "probe"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// hostUIDOf returns the host uid of the process whose arguments end with
// marker.
func hostUIDOf(t *testing.T, marker string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !strings.HasSuffix(string(cmdline), "\x00"+marker+"\x00") {
			continue
		}
		status, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(status), "\n") {
			if f := strings.Fields(line); len(f) == 5 && f[0] == "Uid:" {
				uid, _ := strconv.Atoi(f[1])
				return uid
			}
		}
	}
	t.Fatalf("no process with argument %q", marker)
	return 0
}

// Issue 6's done-when, through the cell: two apps, one holding all its
// inotify instances, do not share the per-user limit or a host uid.
func TestLRP_twoAppsHaveTheirOwnHostUIDsAndPerUserLimits(t *testing.T) {
	c := newRuncCell(t, nil)
	probe := buildProbe(t)
	b, sum := dropletOf(t, map[string]string{"probe": string(probe)})
	key := pando.DropletBlobKey("d-probe")
	c.put(t, key, b)
	token := strconv.FormatInt(time.Now().UnixNano(), 36)
	start := func(guid, mode string) pando.ActualLRP {
		// chmod works because the droplet is the app's own.
		lrp := pando.DesiredLRP{
			ProcessGUID: "proc-" + guid, AppGUID: "app-" + guid, MemoryMB: 64,
			DropletKey: key, DropletSHA256: sum,
			StartCommand: "chmod +x probe && exec ./probe " + mode + " " + guid + token,
		}
		if err := c.rep.StartLRP(context.Background(), lrp, 0, guid); err != nil {
			t.Fatal(err)
		}
		return c.rec.wait(t, 30*time.Second, "RUNNING", isState(guid, pando.ActualRunning)).actual
	}
	holder := start("inst-holder", "hold")
	other := start("inst-other", "serve")

	limit, err := os.ReadFile("/proc/sys/fs/inotify/max_user_instances")
	if err != nil {
		t.Fatal(err)
	}
	get := func(a pando.ActualLRP) string { return httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", a.Port)) }
	if got, want := get(holder), "uid=2000 held="+strings.TrimSpace(string(limit))+" inotify=too many open files\n"; got != want {
		t.Fatalf("holder says %q, want %q", got, want)
	}
	if got, want := get(other), "uid=2000 held=-1 inotify=<nil>\n"; got != want {
		t.Fatalf("other app says %q, want %q", got, want)
	}

	u1, u2 := hostUIDOf(t, "inst-holder"+token), hostUIDOf(t, "inst-other"+token)
	if u1 == u2 || u1 < runc.DefaultHostIDBase || u2 < runc.DefaultHostIDBase {
		t.Fatalf("host uids %d and %d: want two distinct unprivileged ones", u1, u2)
	}
}
