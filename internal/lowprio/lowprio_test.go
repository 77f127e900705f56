package lowprio

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// niceOf reads a process's nice value (field 19 of /proc/PID/stat).
func niceOf(t *testing.T, stat string) int {
	t.Helper()
	f := strings.Fields(stat[strings.LastIndexByte(stat, ')')+2:])
	n, err := strconv.Atoi(f[16])
	if err != nil {
		t.Fatalf("nice in %q: %v", stat, err)
	}
	return n
}

func TestStart_childRunsAtTheLowestPriorityAndNoOtherThreadIsNiced(t *testing.T) {
	cmd := exec.Command("/bin/cat", "/proc/self/stat")
	var out strings.Builder
	cmd.Stdout = &out
	if err := Start(cmd); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if got := niceOf(t, out.String()); got != Nice {
		t.Fatalf("child's nice = %d, want %d", got, Nice)
	}
	if os.Geteuid() != 0 {
		return // the threads' nice values cannot be put back: they end
	}
	// Many starts at once: none of this process's threads is left niced.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := exec.Command("/bin/true")
			if err := Start(c); err != nil {
				t.Error(err)
				return
			}
			_ = c.Wait()
		}()
	}
	wg.Wait()
	if niced := nicedThreads(t); len(niced) > 0 {
		t.Fatalf("threads %v of this process run at a nice value other than 0", niced)
	}
}

// nicedThreads are this process's threads whose nice value is not 0.
func nicedThreads(t *testing.T) []string {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	var niced []string
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + task.Name() + "/stat")
		if err != nil {
			continue // ended meanwhile
		}
		if niceOf(t, string(b)) != 0 {
			niced = append(niced, task.Name())
		}
	}
	return niced
}

func TestMain(m *testing.M) {
	// The test's own process must start at nice 0 for the thread check.
	if n, err := unix.Getpriority(unix.PRIO_PROCESS, 0); err == nil && 20-n != 0 {
		os.Exit(0) // run under nice: nothing to compare against
	}
	os.Exit(m.Run())
}
