package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pandoplatform/pando/bench/internal/benchrun"
)

// appSource is an app whose answer names the instance, so the bench can
// tell that every index is routable.
const appSource = `package main

import (
	"net/http"
	"os"
)

func main() {
	body := []byte("index=" + os.Getenv("CF_INSTANCE_INDEX") + "\n")
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { w.Write(body) })
	http.ListenAndServe(":"+os.Getenv("PORT"), nil)
}
`

// buildApp builds the app into a directory of its own and returns it.
func buildApp(ctx context.Context, dir string) (string, error) {
	return benchrun.BuildApp(ctx, dir, "example.com/celllossapp", appSource)
}

// placement is where an app's instances are, from the cells view.
type placement struct {
	running  map[string]int // RUNNING instances per cell
	perIndex map[int]int    // instances (any state) per index, all cells
}

func placementOf(cs []cellView, app string) placement {
	p := placement{running: map[string]int{}, perIndex: map[int]int{}}
	for _, v := range cs {
		for _, in := range v.Instances {
			if in.AppName != app {
				continue
			}
			p.perIndex[in.Index]++
			if in.State == "RUNNING" {
				p.running[v.ID]++
			}
		}
	}
	return p
}

// oneEach reports whether each of the n indexes has exactly one instance.
func (p placement) oneEach(n int) bool {
	if len(p.perIndex) != n {
		return false
	}
	for i := range n {
		if p.perIndex[i] != 1 {
			return false
		}
	}
	return true
}

func (p placement) String() string {
	return fmt.Sprintf("running %v per index %v", p.running, p.perIndex)
}

// round pushes app name, kills the joined cell with the most of its
// instances, times the healing, restarts the cell, checks it adds no
// duplicates and deletes the app.
func (cl *cluster) round(ctx context.Context, app, name string, cfg config, stderr io.Writer) (roundResult, error) {
	n := cfg.instances
	fmt.Fprintf(stderr, "pushing %s (%d instances) ...\n", name, n)
	if out, err := cl.srv.CLI(ctx, nil, "push", name, "-p", app, "-b", "binary_buildpack", "-c", "./server",
		"-i", strconv.Itoa(n), "-m", fmt.Sprintf("%dM", cfg.memoryMB)); err != nil {
		return roundResult{}, fmt.Errorf("push: %w: %s", err, out)
	}
	var p placement
	err := cl.until(ctx, time.Minute, "instances on all three cells", func(cs []cellView) (bool, string) {
		p = placementOf(cs, name)
		return p.running["cell-0"] > 0 && p.running["cell-b"] > 0 && p.running["cell-c"] > 0 && p.oneEach(n) &&
			p.running["cell-0"]+p.running["cell-b"]+p.running["cell-c"] == n, p.String()
	})
	if err != nil {
		return roundResult{}, err
	}
	if err := cl.until(ctx, time.Minute, "every index routable", func([]cellView) (bool, string) { return cl.routable(ctx, name, n) }); err != nil {
		return roundResult{}, err
	}

	victim := cl.cells[0]
	if p.running["cell-c"] > p.running["cell-b"] {
		victim = cl.cells[1]
	}
	res := roundResult{victim: victim.id, moved: p.running[victim.id]}
	fmt.Fprintf(stderr, "placed %v; killing %s ...\n", p.running, victim.id)
	killed := time.Now()
	victim.kill()
	if err := victim.killContainers(ctx); err != nil {
		return res, err
	}
	err = cl.until(ctx, healTimeout, "all instances RUNNING elsewhere and routable", func(cs []cellView) (bool, string) {
		if res.lost == 0 && !listed(cs, victim.id) {
			res.lost = time.Since(killed)
		}
		p := placementOf(cs, name)
		if res.running == 0 {
			if p.running[victim.id] > 0 || !p.oneEach(n) || p.running["cell-0"]+p.running["cell-b"]+p.running["cell-c"] != n {
				return false, p.String()
			}
			res.running = time.Since(killed)
		}
		ok, seen := cl.routable(ctx, name, n)
		if ok {
			res.routable = time.Since(killed)
		}
		return ok, seen
	})
	if err != nil {
		return res, err
	}

	// The killed cell comes back on its data dir: what it ran was placed
	// elsewhere, so it must end with none of the app's instances and no
	// container, the app with one instance per index.
	if err := victim.start(); err != nil {
		return res, err
	}
	restarted := time.Now()
	if err := cl.waitHealthy(ctx, victim); err != nil {
		return res, err
	}
	err = cl.until(ctx, time.Minute, "no duplicates after the restart", func(cs []cellView) (bool, string) {
		p := placementOf(cs, name)
		ids, err := victim.containers(ctx)
		return err == nil && len(ids) == 0 && p.running[victim.id] == 0 && p.oneEach(n) &&
				p.running["cell-0"]+p.running["cell-b"]+p.running["cell-c"] == n,
			fmt.Sprintf("%v; containers on %s: %v %v", p, victim.id, ids, err)
	})
	if err != nil {
		return res, err
	}
	res.restart = fmt.Sprintf("no duplicates (%d instances, one per index, none on %s) %v after its start",
		n, victim.id, round(time.Since(restarted)))
	if cfg.keep {
		// The app's log (the cells' lines on each instance's start
		// included, with their times) shows where the time went.
		out, _ := cl.srv.CLI(ctx, nil, "logs", name, "--recent")
		_ = os.WriteFile(filepath.Join(cl.srv.Dir, "..", name+".log"), out, 0o644)
	}
	if out, err := cl.srv.CLI(ctx, nil, "delete", name, "-f"); err != nil {
		return res, fmt.Errorf("delete %s: %w: %s", name, err, out)
	}
	return res, nil
}

// listed reports whether the server still lists cell id (a cell that
// does not answer is listed lost until its presence expires).
func listed(cs []cellView, id string) bool {
	for _, v := range cs {
		if v.ID == id {
			return true
		}
	}
	return false
}

// until polls the cells view every 50 ms until cond holds, or fails after
// timeout with what cond saw last.
func (cl *cluster) until(ctx context.Context, timeout time.Duration, what string, cond func([]cellView) (bool, string)) error {
	deadline := time.Now().Add(timeout)
	var seen string
	for {
		cs, err := cl.cellsView(ctx)
		if err == nil {
			var ok bool
			if ok, seen = cond(cs); ok {
				return nil
			}
		} else {
			seen = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %v; last seen: %s", what, timeout, seen)
		}
		if err := pause(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// routable reports whether requests through the router reach every index
// of app (at most 8n requests).
func (cl *cluster) routable(ctx context.Context, app string, n int) (bool, string) {
	seen := map[string]int{}
	for range 8 * n {
		seen[cl.get(ctx, app)]++
		all := true
		for i := range n {
			if seen["index="+strconv.Itoa(i)] == 0 {
				all = false
				break
			}
		}
		if all {
			return true, ""
		}
	}
	return false, fmt.Sprint(seen)
}

// get is one GET / of app through the router: its body, or what failed.
func (cl *cluster) get(ctx context.Context, app string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+cl.srv.RouterAddr+"/", nil)
	if err != nil {
		return err.Error()
	}
	req.Host = app + ".localhost"
	resp, err := cl.router.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return resp.Status
	}
	return strings.TrimSpace(string(b))
}
