package main

import (
	"os"
	"testing"
	"time"
)

func TestParseStat_readsFaultsAndReapedChildrenPastAnOddCommandName(t *testing.T) {
	// pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt
	// majflt cmajflt utime stime cutime cstime ...
	line := "4242 (a) b (c) S 1 4242 4242 0 -1 4194560 7321 99 0 0 150 40 12 3 20 0 9 0\n"
	minflt, children, err := parseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if minflt != 7321 || children != 150*time.Millisecond {
		t.Fatalf("minflt %d, children %v; want 7321 and 150ms (cutime 12 + cstime 3 ticks)", minflt, children)
	}
	if _, _, err := parseStat("4242 (x) S 1 2"); err == nil {
		t.Fatal("a short stat line parsed; want an error")
	}
}

func TestProcessUsage_countsThisProcesssCPU(t *testing.T) {
	before, err := processUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Millisecond)
	for n := 0; time.Now().Before(deadline); n++ {
		_ = n * n // spin on the CPU
	}
	after, err := processUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if d := after.sub(before); d.run <= 0 {
		t.Fatalf("run time grew by %v over 20 ms of spinning; want more than 0", d.run)
	}
}
