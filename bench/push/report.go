package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// The target for push-to-first-200 on a 2-core machine.
const (
	targetSeconds = 2.0
	targetRatio   = 3.0
	// nodeRepushTargetRatio is the Node.js re-push's target.
	nodeRepushTargetRatio = 1.5
)

const (
	variantFresh  = "fresh"
	variantRepeat = "repeat"
	variantEdit   = "edit"
	variantCLI    = "cli"
)

var variantTitle = map[string]string{
	variantFresh:  "new app",
	variantRepeat: "re-push same app",
	variantEdit:   "re-push, 1 file changed",
	variantCLI:    "pando push (CLI)",
}

type results struct {
	Date          string      `json:"date"`
	Host          host        `json:"host"`
	Runs          int         `json:"runs"`
	PandoBin      string      `json:"pando_bin"`
	TargetSeconds float64     `json:"target_seconds"`
	TargetRatio   float64     `json:"target_ratio"`
	Apps          []appResult `json:"apps"`
}

type host struct {
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpu_model,omitempty"`
	Kernel   string `json:"kernel,omitempty"`
	Runc     string `json:"runc,omitempty"`
	Go       string `json:"go"`
	// LoadAvg is /proc/loadavg when the bench started: other work on the
	// machine shows up in every figure.
	LoadAvg string `json:"loadavg,omitempty"`
}

type appResult struct {
	App          *appSpec        `json:"app"`
	DropletBytes int64           `json:"droplet_bytes"`
	Floor        floorSummary    `json:"floor"`
	Variants     []variantResult `json:"variants"`
}

// floorSummary holds the medians of the floor's parts; Total is their sum.
type floorSummary struct {
	UploadMS float64 `json:"zip_upload_ms"`
	RuncMS   float64 `json:"two_runc_runs_ms"`
	UntarMS  float64 `json:"untar_droplet_ms"`
	TotalMS  float64 `json:"total_ms"`
	// InstallMS is the Node.js app's `npm ci` of its lock file into an
	// empty dir (not in TotalMS): a first push cannot avoid it, a re-push
	// with the same lock file can.
	InstallMS float64 `json:"npm_install_ms,omitempty"`
}

// floorFor is the floor a variant's pushes are held to: a new app's
// includes the dependency install, a re-push's does not.
func (f floorSummary) floorFor(variant string) float64 {
	if variant == variantFresh {
		return f.TotalMS + f.InstallMS
	}
	return f.TotalMS
}

// ratioTarget is the ratio a row must meet: the Node.js re-pushes (the
// droplet reused, or node_modules reused from the build cache) within
// 1.5x of the floor without the install, every other row within
// targetRatio.
func ratioTarget(kind, variant string) float64 {
	if kind == appNode && (variant == variantRepeat || variant == variantEdit) {
		return nodeRepushTargetRatio
	}
	return targetRatio
}

func summarizeFloor(up, rc, untar []time.Duration) floorSummary {
	f := floorSummary{UploadMS: ms(median(up)), RuncMS: ms(median(rc)), UntarMS: ms(median(untar))}
	f.TotalMS = f.UploadMS + f.RuncMS + f.UntarMS
	return f
}

type variantResult struct {
	Variant string     `json:"variant"`
	Runs    []*runJSON `json:"runs"`
	Summary summary    `json:"summary"`
}

// runJSON is a run with its derived figures, as printed in -json.
type runJSON struct {
	*pushRun
	TotalMS float64            `json:"total_ms"`
	StepsMS map[string]float64 `json:"steps_ms"`
	// MarksMS are the marks as offsets from the push's start.
	MarksMS map[string]float64 `json:"marks_ms"`
}

type summary struct {
	FirstMS  float64    `json:"first_ms"`
	MedianMS float64    `json:"median_ms"`
	P90MS    float64    `json:"p90_ms"`
	Ratio    float64    `json:"ratio_median_to_floor"`
	Steps    []stepStat `json:"steps"`
	Detail   []stepStat `json:"detail,omitempty"`
}

// stepStat is a step's median over the runs that have both its marks.
type stepStat struct {
	Name     string  `json:"name"`
	MedianMS float64 `json:"median_ms"`
	Runs     int     `json:"runs"`
}

// newVariant wraps runs for the report.
func newVariant(name string, runs []*pushRun) variantResult {
	v := variantResult{Variant: name}
	for _, r := range runs {
		v.Runs = append(v.Runs, &runJSON{pushRun: r})
	}
	return v
}

// stepsFor returns the breakdown that applies to a variant.
func stepsFor(variant string) (main, detail []step) {
	if variant == variantCLI {
		return cliSteps, nil
	}
	return mainSteps, detailSteps
}

func (v *variantResult) summarize(floor floorSummary) {
	mainS, detailS := stepsFor(v.Variant)
	var totals []time.Duration
	for _, r := range v.Runs {
		r.TotalMS = ms(r.total())
		r.StepsMS = map[string]float64{}
		r.MarksMS = map[string]float64{}
		for name, at := range r.marks {
			r.MarksMS[name] = ms(at.Sub(r.marks[mStart]))
		}
		for _, s := range slices.Concat(mainS, detailS) {
			if d, ok := r.marks.between(s); ok {
				r.StepsMS[s.Name] = ms(d)
			}
		}
		totals = append(totals, r.total())
	}
	s := summary{MedianMS: ms(median(totals)), P90MS: ms(percentile(totals, 0.9))}
	if len(totals) > 0 {
		s.FirstMS = ms(totals[0])
	}
	if f := floor.floorFor(v.Variant); f > 0 {
		s.Ratio = s.MedianMS / f
	}
	s.Steps = stepStats(v.Runs, mainS)
	s.Detail = stepStats(v.Runs, detailS)
	v.Summary = s
}

func stepStats(runs []*runJSON, steps []step) []stepStat {
	var out []stepStat
	for _, s := range steps {
		var ds []time.Duration
		for _, r := range runs {
			if d, ok := r.marks.between(s); ok {
				ds = append(ds, d)
			}
		}
		out = append(out, stepStat{Name: s.Name, MedianMS: ms(median(ds)), Runs: len(ds)})
	}
	return out
}

// median is the middle value (the mean of the two middle ones for an even
// count); 0 for none.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// percentile is the nearest-rank p-th percentile (p in (0,1]); 0 for none.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(math.Ceil(p * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Microsecond)) / 1000 }

func fmtMS(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%.2fs", v/1000)
	}
	return fmt.Sprintf("%.0fms", v)
}

func fmtBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// printReport writes the human-readable tables.
func printReport(w io.Writer, res *results, verbose bool) {
	fmt.Fprintf(w, "Pando push-to-first-200, %s\n", res.Date)
	fmt.Fprintf(w, "host: %d CPUs (%s), kernel %s, %s, %s; %d runs per row\n",
		res.Host.CPUs, res.Host.CPUModel, res.Host.Kernel, res.Host.Runc, res.Host.Go, res.Runs)
	if res.Host.LoadAvg != "" {
		fmt.Fprintf(w, "load average at start: %s", res.Host.LoadAvg)
		var load1 float64
		if _, err := fmt.Sscan(res.Host.LoadAvg, &load1); err == nil && load1 > 0.5*float64(res.Host.CPUs) {
			fmt.Fprint(w, " (busy: other work on the machine inflates every figure)")
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "target: median under %.0fs and within %.0fx the floor\n\n", res.TargetSeconds, res.TargetRatio)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{"app", "push", "first", "median", "p90"}
	for _, s := range mainSteps {
		head = append(head, s.Name)
	}
	head = append(head, "floor", "ratio", "target", "")
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, a := range res.Apps {
		for _, v := range a.Variants {
			row := []string{a.App.Kind, variantTitle[v.Variant], fmtMS(v.Summary.FirstMS), fmtMS(v.Summary.MedianMS), fmtMS(v.Summary.P90MS)}
			if v.Variant == variantCLI {
				for range mainSteps {
					row = append(row, "")
				}
			} else {
				for _, s := range v.Summary.Steps {
					row = append(row, stepCell(s))
				}
			}
			ok := v.Summary.MedianMS < res.TargetSeconds*1000 && v.Summary.Ratio <= ratioTarget(a.App.Kind, v.Variant)
			verdict := "missed"
			if ok {
				verdict = "met"
			}
			row = append(row, fmtMS(a.Floor.floorFor(v.Variant)), fmt.Sprintf("%.1fx", v.Summary.Ratio), verdict, "")
			fmt.Fprintln(tw, strings.Join(row, "\t"))
		}
	}
	tw.Flush()
	fmt.Fprintln(w, "\n(first = the first run of the row; the new-app row's first run is the only one whose files are not yet in the resource cache.)")

	fmt.Fprintln(w, "\nfloor (median of each part, same run):")
	for _, a := range res.Apps {
		fmt.Fprintf(w, "  %-6s %s = zip+upload %s (%d files, %s) + 2x runc run %s + untar droplet %s (%s)\n",
			a.App.Kind, fmtMS(a.Floor.TotalMS), fmtMS(a.Floor.UploadMS), a.App.Files, fmtBytes(a.App.Bytes),
			fmtMS(a.Floor.RuncMS), fmtMS(a.Floor.UntarMS), fmtBytes(a.DropletBytes))
		if a.Floor.InstallMS > 0 {
			fmt.Fprintf(w, "  %-6s new app: + npm ci of the same lock file into an empty dir, empty cache %s = %s (target of its re-push: %.1fx the floor without it)\n",
				"", fmtMS(a.Floor.InstallMS), fmtMS(a.Floor.floorFor(variantFresh)), nodeRepushTargetRatio)
		}
	}

	fmt.Fprintln(w, "\nwhere the time goes (medians; from the cell's STG/CELL log timestamps):")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head = []string{"step"}
	type col struct{ a, v int }
	var cols []col
	for ai, a := range res.Apps {
		for vi, v := range a.Variants {
			if v.Variant == variantCLI {
				continue
			}
			cols = append(cols, col{ai, vi})
			head = append(head, a.App.Kind+" "+v.Variant)
		}
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for k, s := range detailSteps {
		row := []string{s.Name}
		for _, c := range cols {
			row = append(row, stepCell(res.Apps[c.a].Variants[c.v].Summary.Detail[k]))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	tw.Flush()

	for _, a := range res.Apps {
		for _, v := range a.Variants {
			if v.Variant != variantCLI {
				continue
			}
			fmt.Fprintf(w, "\n%s via the CLI: pando push %s, then first 200 after %s (medians)\n",
				a.App.Kind, fmtMS(v.Summary.Steps[0].MedianMS), fmtMS(v.Summary.Steps[1].MedianMS))
		}
	}

	if verbose {
		fmt.Fprintln(w, "\nruns:")
		for _, a := range res.Apps {
			for _, v := range a.Variants {
				mainS, detailS := stepsFor(v.Variant)
				for i, r := range v.Runs {
					var parts []string
					for _, s := range slices.Concat(mainS, detailS) {
						if d, ok := r.StepsMS[s.Name]; ok {
							parts = append(parts, fmt.Sprintf("%s=%s", s.Name, fmtMS(d)))
						}
					}
					fmt.Fprintf(w, "  %s %s #%d %s: total %s, uploaded %d files (%s), %d matched, %d non-200 before the 200; %s\n",
						a.App.Kind, v.Variant, i+1, r.Name, fmtMS(r.TotalMS), r.UploadedFiles, fmtBytes(r.UploadedBytes),
						r.MatchedFiles, r.Not200, strings.Join(parts, ", "))
				}
			}
		}
	}
}

func stepCell(s stepStat) string {
	if s.Runs == 0 {
		return "-"
	}
	return fmtMS(s.MedianMS)
}
