package stackprobe

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// HostPath is where the host stack's runtimes are looked for: the PATH of
// containers on it, plus the Go toolchain the go buildpack uses.
const HostPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/go/bin"

// hostTimeout bounds each host runtime's answer.
const hostTimeout = 10 * time.Second

// incompleteRetry is how soon a host answer some runtime's timeout cut
// short is looked at again (the probes run at the lowest CPU priority, so
// a busy machine can hold one past hostTimeout), doubled at each answer
// cut short in a row up to the host's TTL (a runtime that always hangs
// costs a caller hostTimeout only so often): the runtimes that did answer
// are not asked again.
const incompleteRetry = 30 * time.Second

// Cache probes each stack once and keeps the answer until the stack's
// package database changes, or, for the host, for at most HostTTL; then
// it looks again, asking only the host runtimes that changed (each
// answer is kept under what identifies the files the command runs, see
// probeKey). With File set, those answers outlive the process: a
// restart asks only what changed since.
type Cache struct {
	// Stacks maps a stack name to its root filesystem; "" is the host.
	Stacks  map[string]string
	HostTTL time.Duration // default 10 minutes
	// HostPath is where host runtimes are looked for; default HostPath.
	HostPath string
	// File keeps the host runtimes' answers across restarts (in the data
	// dir); "" keeps them in memory only.
	File   string
	Logger *slog.Logger
	Now    func() time.Time
	// timeout bounds each host runtime's answer; default hostTimeout.
	timeout time.Duration
	// firstRetry is the first wait before a host answer cut short is
	// asked again; default incompleteRetry.
	firstRetry time.Duration

	probing sync.Mutex // one probe at a time: a burst of requests waits for the first

	mu      sync.Mutex // guards what follows
	entries map[string]entry
	answers map[string]string // probe key -> version, the host commands' last answers
	retry   time.Duration     // how soon a host answer cut short is asked again
	loaded  bool              // answers were read from File
}

type entry struct {
	stamp    string // the package database's size and mtime
	at       time.Time
	runtimes []Runtime
}

// Runtimes returns the runtimes of the named stack (nil for an unknown one).
func (c *Cache) Runtimes(ctx context.Context, stack string) ([]Runtime, error) {
	dir, ok := c.Stacks[stack]
	if !ok {
		return nil, nil
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	root := dir
	if root == "" {
		root = "/"
	}
	stamp := ""
	if fi, err := os.Stat(filepath.Join(root, "var", "lib", "dpkg", "status")); err == nil {
		stamp = fmt.Sprintf("%d/%d", fi.Size(), fi.ModTime().UnixNano())
	}
	ttl := c.HostTTL
	if ttl <= 0 {
		ttl = 10 * time.Minute
	}
	c.probing.Lock()
	defer c.probing.Unlock()
	c.mu.Lock()
	e, ok := c.entries[stack]
	c.mu.Unlock()
	if ok && e.stamp == stamp && (dir != "" || now().Sub(e.at) < ttl) {
		return e.runtimes, nil
	}
	var rts []Runtime
	at := now()
	if dir == "" {
		path := c.HostPath
		if path == "" {
			path = HostPath
		}
		var complete bool
		var err error
		if rts, complete, err = c.host(ctx, path); err != nil {
			return nil, err
		}
		c.mu.Lock()
		if complete {
			c.retry = 0
		} else {
			first := c.firstRetry
			if first <= 0 {
				first = incompleteRetry
			}
			c.retry = min(max(2*c.retry, first), ttl)
			at = at.Add(c.retry - ttl) // expires c.retry from now
		}
		c.mu.Unlock()
	} else {
		var err error
		if rts, err = RootFS(dir); err != nil {
			return nil, fmt.Errorf("stack %s: %w", stack, err)
		}
	}
	c.mu.Lock()
	if c.entries == nil {
		c.entries = map[string]entry{}
	}
	c.entries[stack] = entry{stamp: stamp, at: at, runtimes: rts}
	c.mu.Unlock()
	return rts, nil
}

// Keep probes the stacks now and every interval until ctx ends, and
// sooner while a host answer cut short is due to be asked again, so that
// Known (what a joined cell's state reports) follows it too. warn, when
// set, is told of a probe that failed.
func (c *Cache) Keep(ctx context.Context, interval time.Duration, warn func(stack string, err error)) {
	for {
		for name := range c.Stacks {
			if _, err := c.Runtimes(ctx, name); err != nil && ctx.Err() == nil && warn != nil {
				warn(name, err)
			}
		}
		wait := interval
		c.mu.Lock()
		if c.retry > 0 {
			wait = min(wait, c.retry)
		}
		c.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Known returns the stack's last answer without probing: ok is false
// until a probe of it has ended.
func (c *Cache) Known(stack string) (rts []Runtime, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[stack]
	return e.runtimes, ok
}

// host asks the host runtimes on path whose answer is not kept under
// their current key, and keeps the versions they answered (c.probing
// held). A command that failed (a python3 without pip, a JVM that could
// not start on a machine short of memory) is asked again at the next
// look: its failure may not last.
func (c *Cache) host(ctx context.Context, path string) (_ []Runtime, complete bool, _ error) {
	c.mu.Lock()
	if !c.loaded {
		c.answers, c.loaded = c.load(), true
	}
	known := c.answers
	c.mu.Unlock()

	timeout := c.timeout
	if timeout <= 0 {
		timeout = hostTimeout
	}
	versions := make([]string, len(hostCommands))
	kept := map[string]string{} // the answers of the commands on path now
	complete = true
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, hc := range hostCommands {
		bin := lookPath(hc.args[0], path)
		if bin == "" {
			continue
		}
		key := probeKey(path, bin, hc.name, hc.args)
		if v, ok := known[key]; ok && key != "" {
			versions[i] = v
			mu.Lock()
			kept[key] = v
			mu.Unlock()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := runHost(ctx, path, bin, hc.args[1:], timeout)
			versions[i] = a.version
			mu.Lock()
			defer mu.Unlock()
			switch {
			case !a.final:
				complete = false
			case key != "" && a.version != "":
				kept[key] = a.version
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, false, err // cut short: not an answer to keep
	}
	if !maps.Equal(kept, known) {
		c.mu.Lock()
		c.answers = kept
		c.mu.Unlock()
		c.save(kept)
	}
	return hostRuntimes(versions), complete, nil
}

func (c *Cache) log() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}
