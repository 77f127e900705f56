package main

import (
	"strings"
	"testing"
	"time"
)

func TestReport_medianBesideTheTarget(t *testing.T) {
	cfg := config{instances: 6, memoryMB: 64}
	for _, tc := range []struct {
		routable []time.Duration
		want     []string
	}{
		{[]time.Duration{7 * time.Second, 12 * time.Second, 6 * time.Second}, []string{"median 7s (best 6s, worst 12s)", "meets it (0.70x"}},
		{[]time.Duration{11 * time.Second, 10 * time.Second}, []string{"median 11s", "MISSES it"}},
	} {
		var rounds []roundResult
		for _, d := range tc.routable {
			rounds = append(rounds, roundResult{victim: "cell-b", moved: 2, lost: 5 * time.Second, running: d - time.Second, routable: d, restart: "no duplicates"})
		}
		var b strings.Builder
		report(&b, cfg, rounds)
		for _, w := range tc.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("report of %v lacks %q:\n%s", tc.routable, w, b.String())
			}
		}
	}
}

func TestPlacement_oneEachSeesDuplicatesAndGaps(t *testing.T) {
	view := func(idx ...int) []cellView {
		v := cellView{ID: "cell-0"}
		for _, i := range idx {
			v.Instances = append(v.Instances, cellInstance{"app", i, "RUNNING"})
		}
		other := cellView{ID: "cell-b", Instances: []cellInstance{{"other", 0, "RUNNING"}}}
		return []cellView{v, other}
	}
	for _, tc := range []struct {
		idx  []int
		want bool
	}{
		{[]int{0, 1, 2}, true},
		{[]int{0, 1, 1}, false},
		{[]int{0, 1}, false},
		{[]int{0, 1, 2, 2}, false},
	} {
		p := placementOf(view(tc.idx...), "app")
		if got := p.oneEach(3); got != tc.want {
			t.Errorf("indexes %v: oneEach(3) = %v, want %v (%v)", tc.idx, got, tc.want, p)
		}
		if p.running["cell-b"] != 0 {
			t.Errorf("another app's instance counted: %v", p)
		}
	}
}
