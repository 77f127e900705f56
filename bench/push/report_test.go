package main

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func msd(v ...int) []time.Duration {
	var out []time.Duration
	for _, x := range v {
		out = append(out, time.Duration(x)*time.Millisecond)
	}
	return out
}

func TestMedianAndPercentile(t *testing.T) {
	cases := []struct {
		in          []time.Duration
		median, p90 time.Duration
	}{
		{nil, 0, 0},
		{msd(5), 5 * time.Millisecond, 5 * time.Millisecond},
		{msd(9, 1, 5), 5 * time.Millisecond, 9 * time.Millisecond},
		{msd(4, 1, 3, 2), 2500 * time.Microsecond, 4 * time.Millisecond},
		{msd(10, 1, 2, 3, 4, 5, 6, 7, 8, 9), 5500 * time.Microsecond, 9 * time.Millisecond},
	}
	for _, c := range cases {
		if got := median(c.in); got != c.median {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.median)
		}
		if got := percentile(c.in, 0.9); got != c.p90 {
			t.Errorf("p90(%v) = %v, want %v", c.in, got, c.p90)
		}
	}
}

func fakeRun(name string, total time.Duration) *pushRun {
	t0 := time.Unix(1000, 0)
	m := marks{mStart: t0, mFirst200: t0.Add(total)}
	// Spread the main steps evenly so every one has both ends.
	for k, s := range mainSteps[1:] {
		m[s.From] = t0.Add(total * time.Duration(k+1) / time.Duration(len(mainSteps)))
	}
	return &pushRun{Name: name, marks: m}
}

func TestSummarize_ratioAndSteps(t *testing.T) {
	v := newVariant(variantFresh, []*pushRun{
		fakeRun("a", 600*time.Millisecond), fakeRun("b", 300*time.Millisecond), fakeRun("c", 900*time.Millisecond),
	})
	v.summarize(summarizeFloor(msd(10), msd(80), msd(10)))
	s := v.Summary
	if s.FirstMS != 600 || s.MedianMS != 600 || s.P90MS != 900 {
		t.Errorf("first/median/p90 = %v/%v/%v, want 600/600/900", s.FirstMS, s.MedianMS, s.P90MS)
	}
	if s.Ratio != 6 {
		t.Errorf("ratio = %v, want 6 (600ms over a 100ms floor)", s.Ratio)
	}
	if len(s.Steps) != len(mainSteps) || s.Steps[0].Runs != 3 || s.Steps[0].MedianMS != 100 {
		t.Errorf("steps = %+v", s.Steps)
	}
	if got := v.Runs[0].StepsMS["route"]; got != 100 {
		t.Errorf("run a route = %v, want 100", got)
	}
}

func TestPrintReport_showsEveryRowAndTheFloor(t *testing.T) {
	v := newVariant(variantFresh, []*pushRun{fakeRun("a", 400*time.Millisecond)})
	floor := summarizeFloor(msd(5), msd(120), msd(5))
	v.summarize(floor)
	res := &results{Runs: 1, TargetSeconds: targetSeconds, TargetRatio: targetRatio,
		Apps: []appResult{{App: &appSpec{Kind: appStatic, Files: 2, Bytes: 77}, Floor: floor, Variants: []variantResult{v}}}}
	var out bytes.Buffer
	printReport(&out, res, true)
	for _, want := range []string{"new app", "400ms", "130ms", "3.1x", "missed", "2x runc run 120ms", "healthy -> RUNNING seen"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
