package stackprobe

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pandoplatform/pando"
)

// countedHost is a prefix dir with bin/ of scripts posing as runtimes,
// each of which appends its name and arguments to a log before it
// answers: runs counts those lines. All of it is readable (the log
// writable) by all, since as root the probes run as nobody.
type countedHost struct {
	prefix, bin, log string
}

func newCountedHost(t *testing.T, scripts map[string]string) *countedHost {
	t.Helper()
	prefix := t.TempDir()
	h := &countedHost{prefix: prefix, bin: filepath.Join(prefix, "bin"), log: filepath.Join(prefix, "runs.log")}
	if err := os.Mkdir(h.bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{prefix, filepath.Dir(prefix)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, h.log, "", 0o666)
	if err := os.Chmod(h.log, 0o666); err != nil {
		t.Fatal(err)
	}
	for name, body := range scripts {
		h.replace(t, name, body)
	}
	return h
}

// replace installs the script name anew (a new file renamed over the
// old one, as a package upgrade does).
func (h *countedHost) replace(t *testing.T, name, body string) {
	t.Helper()
	tmp := filepath.Join(h.bin, "."+name+".new")
	writeFile(t, tmp, "#!/bin/sh\necho \"${0##*/} $*\" >> "+h.log+"\n"+body+"\n", 0o755)
	if err := os.Rename(tmp, filepath.Join(h.bin, name)); err != nil {
		t.Fatal(err)
	}
}

// runs counts the logged runs of "name args".
func (h *countedHost) runs(t *testing.T, cmd string) int {
	t.Helper()
	b, err := os.ReadFile(h.log)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if line == cmd {
			n++
		}
	}
	return n
}

func (h *countedHost) total(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(h.log)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

// A restart (a new Cache on the same file) asks no runtime whose files
// are unchanged; it asks again a replaced binary and a runtime whose
// package directory changed.
func TestCache_restartAsksOnlyWhatChanged(t *testing.T) {
	h := newCountedHost(t, map[string]string{
		"node": "echo v20.1.2",
		"java": `echo 'openjdk version "17.0.9" 2023-10-17' >&2`,
	})
	// pip answers the version its dist-info dir names.
	site := filepath.Join(h.prefix, "lib", "python3.11", "site-packages")
	if err := os.MkdirAll(filepath.Join(site, "pip-23.0.1.dist-info"), 0o755); err != nil {
		t.Fatal(err)
	}
	h.replace(t, "python3", `if [ "$2" != -m ]; then echo "Python 3.11.2"; exit; fi
for d in `+site+`/pip-*.dist-info; do v=${d##*/pip-}; echo "pip ${v%.dist-info} from /x (python 3.11)"; done`)
	file := filepath.Join(t.TempDir(), "stack-runtimes.json")
	start := func(want []Runtime) {
		t.Helper()
		c := &Cache{Stacks: map[string]string{"host": ""}, HostPath: h.bin, File: file}
		got, err := c.Runtimes(context.Background(), "host")
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("Runtimes = %v %v\nwant      %v", got, err, want)
		}
		if known, ok := c.Known("host"); !ok || !reflect.DeepEqual(known, want) {
			t.Fatalf("Known = %v %v, want %v", known, ok, want)
		}
	}
	counts := map[string]int{"node --version": 1, "python3 -I --version": 1, "python3 -I -m pip --version": 1, "java -version": 1}
	check := func(when string) {
		t.Helper()
		for cmd, n := range counts {
			if got := h.runs(t, cmd); got != n {
				t.Errorf("%s: %q ran %d times, want %d", when, cmd, got, n)
			}
		}
		all := 0
		for _, n := range counts {
			all += n
		}
		if got := h.total(t); got != all {
			t.Errorf("%s: %d runs in all, want %d", when, got, all)
		}
	}
	start([]Runtime{{"node", "20.1.2"}, {"python3", "3.11.2"}, {"pip", "23.0.1"}, {"java", "17.0.9"}})
	check("first start")

	// Nothing changed: nothing is asked.
	start([]Runtime{{"node", "20.1.2"}, {"python3", "3.11.2"}, {"pip", "23.0.1"}, {"java", "17.0.9"}})
	check("restart")

	// node replaced, ruby new: those alone are asked.
	h.replace(t, "node", "echo v22.11.0")
	h.replace(t, "ruby", "echo ruby 3.1.2p20")
	start([]Runtime{{"node", "22.11.0"}, {"python3", "3.11.2"}, {"pip", "23.0.1"}, {"ruby", "3.1.2"}, {"java", "17.0.9"}})
	counts["node --version"]++
	counts["ruby --version"]++
	check("node replaced, ruby new")

	// pip upgraded (its dist-info renamed): pip alone, not python3.
	if err := os.Rename(filepath.Join(site, "pip-23.0.1.dist-info"), filepath.Join(site, "pip-24.0.dist-info")); err != nil {
		t.Fatal(err)
	}
	start([]Runtime{{"node", "22.11.0"}, {"python3", "3.11.2"}, {"pip", "24.0"}, {"ruby", "3.1.2"}, {"java", "17.0.9"}})
	counts["python3 -I -m pip --version"]++
	check("pip upgraded")
}

// An answer the timeout cut short is not kept: the next start asks again.
func TestCache_cutShortAnswersAreAskedAgain(t *testing.T) {
	// ruby hangs until the marker is there (the marker is no file the
	// probe key covers).
	h := newCountedHost(t, nil)
	marker := filepath.Join(h.prefix, "answer")
	h.replace(t, "ruby", "[ -e "+marker+" ] && echo ruby 3.1.2p20 || exec /bin/sleep 30")
	file := filepath.Join(t.TempDir(), "stack-runtimes.json")
	c := &Cache{Stacks: map[string]string{"host": ""}, HostPath: h.bin, File: file, timeout: 300 * time.Millisecond}
	if got, err := c.Runtimes(context.Background(), "host"); err != nil || len(got) != 0 {
		t.Fatalf("Runtimes = %v %v, want none", got, err)
	}
	writeFile(t, marker, "", 0o644)
	c = &Cache{Stacks: map[string]string{"host": ""}, HostPath: h.bin, File: file}
	if got, err := c.Runtimes(context.Background(), "host"); err != nil || !reflect.DeepEqual(got, []Runtime{{"ruby", "3.1.2"}}) {
		t.Fatalf("Runtimes after a restart = %v %v, want ruby 3.1.2 (asked again)", got, err)
	}
}

// A corrupt or foreign answers file is not believed: every runtime is
// asked again, and the file rewritten.
func TestCache_corruptOrForeignFileIsAskedAgain(t *testing.T) {
	h := newCountedHost(t, map[string]string{"node": "echo v20.1.2", "go": "echo go version go1.22.5 linux/amd64"})
	file := filepath.Join(t.TempDir(), "stack-runtimes.json")
	want := []Runtime{{"node", "20.1.2"}, {"go", "1.22.5"}}
	start := func() {
		t.Helper()
		c := &Cache{Stacks: map[string]string{"host": ""}, HostPath: h.bin, File: file}
		if got, err := c.Runtimes(context.Background(), "host"); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("Runtimes = %v %v, want %v", got, err, want)
		}
	}
	start()
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	runs := h.total(t)
	if runs != 2 {
		t.Fatalf("first start ran %d probes, want 2", runs)
	}
	for name, content := range map[string]string{
		"truncated":        string(good[:len(good)/2]),
		"another machine":  strings.Replace(string(good), `"machine":"`, `"machine":"elsewhere`, 1),
		"another format":   strings.Replace(string(good), storeFormat, "pando-stack-runtimes/0", 1),
		"a bad version":    strings.Replace(string(good), `"20.1.2"`, `"20.1.2\u001b[31m"`, 1),
		"not an object":    `[1, 2]`,
		"over its maximum": `{"format":"` + storeFormat + `","answers":{"` + strings.Repeat("x", maxStoreBytes) + `":""}}`,
	} {
		writeFile(t, file, content, 0o644)
		start()
		if n := h.total(t) - runs; n != 2 {
			t.Errorf("%s: %d probes ran, want 2 (all)", name, n)
		}
		runs = h.total(t)
		if b, err := os.ReadFile(file); err != nil || string(b) != string(good) {
			t.Errorf("%s: file not rewritten: %q %v", name, b, err)
		}
	}
	// And a good file is believed again.
	start()
	if n := h.total(t) - runs; n != 0 {
		t.Errorf("%d probes ran with a good file, want none", n)
	}
}

// Reported tells the stacks probed so far, without probing: nothing
// before, an empty list for a stack probed with none found.
func TestCache_reportsTheStacksProbedSoFar(t *testing.T) {
	h := newCountedHost(t, map[string]string{"node": "echo v20.1.2"})
	c := &Cache{Stacks: map[string]string{"host": "", "bare": t.TempDir()}, HostPath: h.bin}
	if got := c.Reported(); got != nil {
		t.Fatalf("Reported before any probe = %v, want nil", got)
	}
	if _, err := c.Runtimes(context.Background(), "host"); err != nil {
		t.Fatal(err)
	}
	want := map[string][]pando.StackRuntime{"host": {{Name: "node", Version: "20.1.2"}}}
	if got := c.Reported(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Reported = %v, want %v", got, want)
	}
	if _, err := c.Runtimes(context.Background(), "bare"); err != nil {
		t.Fatal(err)
	}
	if got, ok := c.Reported()["bare"]; !ok || got == nil || len(got) != 0 {
		t.Fatalf("Reported[bare] = %#v %v, want an empty list", got, ok)
	}
	if n := h.total(t); n != 1 {
		t.Fatalf("%d probes ran, want 1 (Reported asks none)", n)
	}
}

// An answer the timeout cut short is looked at again incompleteRetry
// later (not only after the host's TTL), asking only what did not answer.
func TestCache_cutShortAnswersAreAskedAgainSoon(t *testing.T) {
	h := newCountedHost(t, map[string]string{"node": "echo v20.1.2"})
	marker := filepath.Join(h.prefix, "answer")
	h.replace(t, "ruby", "[ -e "+marker+" ] && echo ruby 3.1.2p20 || exec /bin/sleep 30")
	now := time.Unix(1_800_000_000, 0)
	c := &Cache{Stacks: map[string]string{"host": ""}, HostPath: h.bin, timeout: 300 * time.Millisecond,
		Now: func() time.Time { return now }}
	runtimes := func(want []Runtime) {
		t.Helper()
		if got, err := c.Runtimes(context.Background(), "host"); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("Runtimes = %v %v, want %v", got, err, want)
		}
	}
	runtimes([]Runtime{{"node", "20.1.2"}})
	writeFile(t, marker, "", 0o644)
	now = now.Add(incompleteRetry - time.Second)
	runtimes([]Runtime{{"node", "20.1.2"}}) // kept until incompleteRetry
	runs := h.total(t)
	now = now.Add(2 * time.Second)
	runtimes([]Runtime{{"node", "20.1.2"}, {"ruby", "3.1.2"}})
	if n := h.total(t) - runs; n != 1 {
		t.Errorf("%d probes ran after the retry interval, want 1 (ruby alone)", n)
	}
}

// A runtime cut short again and again is asked at doubling intervals.
func TestCache_aRuntimeThatAlwaysHangsIsAskedLessAndLessOften(t *testing.T) {
	h := newCountedHost(t, nil)
	h.replace(t, "ruby", "exec /bin/sleep 30")
	now := time.Unix(1_800_000_000, 0)
	c := &Cache{Stacks: map[string]string{"host": ""}, HostPath: h.bin, timeout: 100 * time.Millisecond,
		Now: func() time.Time { return now }}
	// Asked again: the stack's entry was made anew (the runs log cannot
	// tell: a probe killed at its timeout may not have written it yet).
	entryAt := func() time.Time {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.entries["host"].at
	}
	var askedAt []time.Duration
	start := now
	for range 200 { // 200 calls 5 s apart: 1000 s, over the 10 min TTL
		before := entryAt()
		if _, err := c.Runtimes(context.Background(), "host"); err != nil {
			t.Fatal(err)
		}
		if !entryAt().Equal(before) {
			askedAt = append(askedAt, now.Sub(start))
		}
		now = now.Add(5 * time.Second)
	}
	want := []time.Duration{0, 30 * time.Second, 90 * time.Second, 210 * time.Second, 450 * time.Second, 930 * time.Second}
	if !reflect.DeepEqual(askedAt, want) {
		t.Errorf("ruby asked at %v, want %v (30 s, then doubling up to the TTL)", askedAt, want)
	}
}

// Keep (a joined cell's loop: its state reports Known) asks an answer cut
// short again when it is due, not only at its interval.
func TestCache_keepAsksACutShortAnswerAgainBeforeItsInterval(t *testing.T) {
	h := newCountedHost(t, map[string]string{"node": "echo v20.1.2"})
	marker := filepath.Join(h.prefix, "answer")
	h.replace(t, "ruby", "[ -e "+marker+" ] && echo ruby 3.1.2p20 || exec /bin/sleep 30")
	c := &Cache{Stacks: map[string]string{"host": ""}, HostPath: h.bin, timeout: 300 * time.Millisecond,
		firstRetry: 200 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Keep(ctx, time.Hour, func(stack string, err error) { t.Errorf("probe %s: %v", stack, err) })
	}()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if rts, ok := c.Known("host"); ok {
			if !reflect.DeepEqual(rts, []Runtime{{"node", "20.1.2"}}) {
				t.Fatalf("first answer %v, want node alone (ruby cut short)", rts)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no first answer")
		}
		time.Sleep(10 * time.Millisecond)
	}
	writeFile(t, marker, "", 0o644)
	want := []Runtime{{"node", "20.1.2"}, {"ruby", "3.1.2"}}
	for {
		if rts, _ := c.Known("host"); reflect.DeepEqual(rts, want) {
			return
		}
		if time.Now().After(deadline) {
			rts, _ := c.Known("host")
			t.Fatalf("Known = %v, want %v well before Keep's hour", rts, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A runtime that failed to answer (a JVM that could not start on a
// machine short of memory) is asked again at the next look and at the
// next start: its failure is not kept as its answer.
func TestCache_aFailedAnswerIsAskedAgain(t *testing.T) {
	h := newCountedHost(t, map[string]string{"node": "echo v20.1.2"})
	marker := filepath.Join(h.prefix, "answer")
	h.replace(t, "java", `[ -e `+marker+` ] || { echo "Error occurred during initialization of VM" >&2; exit 1; }
echo 'openjdk version "17.0.9" 2023-10-17' >&2`)
	file := filepath.Join(t.TempDir(), "stack-runtimes.json")
	now := time.Unix(1_800_000_000, 0)
	newCache := func() *Cache {
		return &Cache{Stacks: map[string]string{"host": ""}, HostPath: h.bin, File: file, Now: func() time.Time { return now }}
	}
	runtimes := func(c *Cache, want []Runtime) {
		t.Helper()
		if got, err := c.Runtimes(context.Background(), "host"); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("Runtimes = %v %v, want %v", got, err, want)
		}
	}
	c := newCache()
	runtimes(c, []Runtime{{"node", "20.1.2"}})
	// The next start asks it again (and node not).
	runtimes(newCache(), []Runtime{{"node", "20.1.2"}})
	if n := h.runs(t, "java -version"); n != 2 {
		t.Errorf("java asked %d times by two starts, want 2", n)
	}
	if n := h.runs(t, "node --version"); n != 1 {
		t.Errorf("node asked %d times, want 1", n)
	}
	// Once it works, the next look (the TTL's) finds it.
	writeFile(t, marker, "", 0o644)
	now = now.Add(11 * time.Minute)
	runtimes(c, []Runtime{{"node", "20.1.2"}, {"java", "17.0.9"}})
}
