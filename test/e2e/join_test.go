package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// A cell on another address joins with the server's token, stages and
// runs instances, ships their logs, and the router reaches them; a cell
// with a wrong token is refused.
func TestJoinedCell_stagesRunsAndLogsBesideTheLocalCell(t *testing.T) {
	t.Parallel()
	// The local cell is smaller than a staging (1024 MB): every staging
	// runs on the joined cell; app instances (128 MB) fit on both.
	s := ownServer(t, "--cell-memory-mb", "900")

	tok := s.cellToken(t)
	bad := s.newCell(t, "cell-bad", "127.0.0.3")
	bad.token = "pando1." + strings.Repeat("0", 64) + tok[strings.LastIndex(tok, "."):]
	if err := bad.start(); err != nil {
		t.Fatal(err)
	}
	if err := bad.wait(startTimeout); err == nil {
		t.Fatal("a cell with a wrong token exited 0")
	}
	if log := bad.logTail(maxLogShown); !strings.Contains(log, "wrong token secret") {
		t.Fatalf("the refused cell does not say why:\n%s", log)
	}

	c := s.joinCell(t, "cell-b", "127.0.0.2", "--memory", "4G", "--zone", "z2")

	const name = "joined"
	host := name + ".localhost"
	logFrom := s.logSize()
	r := s.mustPando(t, "push", name, "-p", binaryApp(t), "-b", "binary_buildpack", "-c", "./server", "-i", "2", "-m", "128M")
	// The staging's output, streamed from the joined cell.
	requireOutput(t, r, `Exit status 0`, `Uploading droplet`, `web: 2 of 2 instances running`)
	if log := s.logTail(logFrom, 1<<20); strings.Contains(log, "blob refused") {
		t.Fatalf("the joined cell was refused a blob of its own work; server log:\n%s", log)
	} else if !regexp.MustCompile(`blob stored from cell.*cell_id=cell-b.*key=droplets/`).MatchString(log) {
		t.Fatalf("the droplet was not uploaded by the joined cell; server log:\n%s", log)
	}

	// One instance on each cell, both cells with their usage.
	var onJoined int
	eventually(t, "an instance on each cell", waitTimeout, func() (bool, string) {
		cs := s.cells(t)
		got := map[string][]int{}
		used := map[string]int{}
		for _, v := range cs {
			used[v.ID] = v.MemoryMB.Used
			for _, i := range v.Instances {
				if i.AppName == name && i.State == "RUNNING" {
					got[v.ID] = append(got[v.ID], i.Index)
				}
			}
		}
		if len(got["cell-0"]) != 1 || len(got["cell-b"]) != 1 || used["cell-0"] < 128 || used["cell-b"] < 128 {
			return false, fmt.Sprintf("instances %v, memory used %v", got, used)
		}
		onJoined = got["cell-b"][0]
		return true, ""
	})
	// The joined instance's stats come from its cell.
	eventually(t, "the joined instance's memory in pando app", waitTimeout, func() (bool, string) {
		app := s.pando(t, "app", name)
		re := regexp.MustCompile(fmt.Sprintf(`(?m)^#%d\s+running\s+\S+\s+[\d.]+%%\s+[1-9][\d.]*[KMG] of 128M`, onJoined))
		return re.MatchString(app.out()), app.out()
	})
	// A staging that fails on the joined cell: its output first, then the
	// API's word on it, last.
	nothing := writeFiles(t, t.TempDir(), map[string]string{"notes.txt": "no app here\n"})
	failed := s.pandoWithin(t, pushTimeout, "push", "undetected", "-p", nothing, "-m", "128M")
	s.deleteAppOnCleanup(t, "undetected")
	if failed.code == 0 {
		t.Fatalf("push of an app no buildpack detects: want a non-zero exit\n%s", failed)
	}
	requireLastStagingLine(t, failed, "Staging failed: NoAppDetectedError - An app was not successfully detected by any available buildpack",
		"None of the buildpacks detected", "Exit status 222")

	cells := s.mustPando(t, "cells")
	requireOutput(t, cells, `(?m)^cell-0\s+healthy\s+-\s`, `(?m)^cell-b\s+healthy\s+z2\s+host\s+\d+M of 4096M`, `instances on cell-b:`)

	// Both answer through the router: the joined one at its host port on
	// 127.0.0.2.
	eventually(t, "both instances answer through the router", waitTimeout, func() (bool, string) {
		seen := map[string]int{}
		for range 4 {
			_, body, _ := s.get(host, "/")
			seen[body]++
		}
		return seen["binary app index=0 greeting=\n"] > 0 && seen["binary app index=1 greeting=\n"] > 0, fmt.Sprint(seen)
	})

	// The joined instance's output reaches `pando logs`.
	want := fmt.Sprintf("as instance %d", onJoined)
	eventually(t, "the joined cell's instance in pando logs", waitTimeout, func() (bool, string) {
		logs := s.pando(t, "logs", name, "--recent")
		return strings.Contains(logs.out(), want), logs.out()
	})

	// A task of 1 GB fits only on the joined cell: its output comes back
	// from there.
	task := s.mustPando(t, "run-task", name, "--command", "echo task ran $((6*7))", "--name", "remote", "-m", "1G", "--wait")
	requireOutput(t, task, `\[APP/TASK/remote/0\] OUT task ran 42`, `completed successfully`)

	s.mustPando(t, "delete", name, "-f")
	if err := c.stop(); err != nil {
		t.Fatalf("stop the joined cell: %v\n%s", err, c.logTail(maxLogShown))
	}
	if ids, err := c.containers(); err != nil || len(ids) > 0 {
		t.Fatalf("containers left on the joined cell after SIGTERM: %v %v", ids, err)
	}
	// A cell that stops leaves: the server lists it no more.
	for _, v := range s.cells(t) {
		if v.ID == "cell-b" {
			t.Fatalf("the stopped cell is still listed: %+v", v)
		}
	}
}
