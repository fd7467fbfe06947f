// Command report turns the JSON files the benchmark programs wrote into
// bench/RESULTS.md and one SVG plot per series next to it, with the machine
// description and the commands that reproduce every figure.
//
//	go run ./bench/cmd/report -results bench/results -out bench/RESULTS.md
package main

import (
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hostmesh/hostmesh/bench/benchkit"
)

// order lists the sections in the order of the list of benchmarks.
var order = []string{"lab-single.json", "lab-drain.json", "lab-convergence.json", "lab-tls.json", "lab-parallel.json", "ctlplane.json", "idle.json"}

func main() {
	results := flag.String("results", "bench/results", "directory of the programs' JSON files")
	out := flag.String("out", "bench/RESULTS.md", "markdown file; plots go to plots/ beside it")
	flag.Parse()
	var secs []benchkit.Section
	var missing []string
	for _, f := range order {
		s, err := benchkit.ReadSection(filepath.Join(*results, f))
		if err != nil {
			missing = append(missing, f)
			continue
		}
		secs = append(secs, s)
	}
	plotDir := filepath.Join(filepath.Dir(*out), "plots")
	if err := os.MkdirAll(plotDir, 0o755); err != nil {
		log.Fatalf("plots dir: %v", err)
	}
	md, err := render(secs, missing, plotDir)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, []byte(md), 0o644); err != nil {
		log.Fatalf("write %s: %v", *out, err)
	}
	log.Printf("wrote %s", *out)
}

func render(secs []benchkit.Section, missing []string, plotDir string) (string, error) {
	var b strings.Builder
	b.WriteString("# hostmesh benchmarks\n\n")
	fmt.Fprintf(&b, "Written %s by `make bench` (`scripts/bench.sh`). Every figure is the median of the runs listed; "+
		"comparisons alternate their two sides run by run. Goals are printed beside the figures, never asserted. "+
		"Each section says when it ran and how to reproduce it alone; the raw figures are in results/*.json.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"))
	b.WriteString("## Summary\n\n| benchmark | figure | value | goal | met |\n|---|---|---|---|---|\n")
	for _, s := range secs {
		for _, c := range s.Comparisons {
			fmt.Fprintf(&b, "| %s | %s: %s ÷ %s | ratio of medians %.3f | %s | %s |\n", s.Title, c.Name, c.Subject.Name, c.Baseline.Name, c.Ratio(), dash(c.Goal), met(c.Met))
		}
		for _, x := range s.Series {
			if x.Goal == "" {
				continue
			}
			v, what := x.Judged()
			fmt.Fprintf(&b, "| %s | %s | %s %s %s | %s | %s |\n", s.Title, x.Name, what, num(v), x.Unit, x.Goal, met(x.Met))
		}
	}
	for _, f := range missing {
		fmt.Fprintf(&b, "| %s | not measured in this run (no results file) | | | |\n", strings.TrimSuffix(f, ".json"))
	}
	b.WriteString("\n")
	for _, s := range secs {
		if err := section(&b, s, plotDir); err != nil {
			return "", err
		}
	}
	b.WriteString("## Machine\n\n```\n" + benchkit.Machine() + "```\n")
	return b.String(), nil
}

func section(b *strings.Builder, s benchkit.Section, plotDir string) error {
	fmt.Fprintf(b, "## %s\n\n%s\n\nReproduce: `%s` (started %s, took %s).\n\n", s.Title, s.Setup, s.Command, s.Started.Format(time.RFC3339), dash(s.Took))
	if len(s.Comparisons) > 0 {
		b.WriteString("| comparison | hostmesh (median) | baseline (median) | ratio | goal | met |\n|---|---|---|---|---|---|\n")
		for _, c := range s.Comparisons {
			fmt.Fprintf(b, "| %s | %s: %s %s | %s: %s %s | %.3f | %s | %s |\n", c.Name, c.Subject.Name, num(c.Subject.Median()), c.Subject.Unit,
				c.Baseline.Name, num(c.Baseline.Median()), c.Baseline.Unit, c.Ratio(), dash(c.Goal), met(c.Met))
		}
		b.WriteString("\n")
		for _, c := range s.Comparisons {
			fmt.Fprintf(b, "- *%s*", c.Name)
			if c.Note != "" {
				fmt.Fprintf(b, ": %s", c.Note)
			}
			fmt.Fprintf(b, "\n  - runs in order, hostmesh: %s; baseline: %s\n", runs(c.Subject.Values), runs(c.Baseline.Values))
			if c.Subject.Note != "" {
				fmt.Fprintf(b, "  - hostmesh side: %s\n", c.Subject.Note)
			}
			if c.Baseline.Note != "" {
				fmt.Fprintf(b, "  - baseline side: %s\n", c.Baseline.Note)
			}
		}
		b.WriteString("\n")
	}
	if len(s.Series) > 0 {
		b.WriteString("| figure | median | min | max | n | goal | met (judged on) | values meeting the goal |\n|---|---|---|---|---|---|---|---|\n")
		for _, x := range s.Series {
			lo, hi := benchkit.MinMax(x.Values)
			judged := ""
			if x.Goal != "" {
				_, w := x.Judged()
				judged = " (" + w + ")"
			}
			fmt.Fprintf(b, "| %s | %s %s | %s | %s | %d | %s | %s%s | %s |\n", x.Name, num(x.Median()), x.Unit, num(lo), num(hi), len(x.Values), dash(x.Goal), met(x.Met), judged, meeting(x))
		}
		b.WriteString("\n")
		for _, x := range s.Series {
			if x.Note != "" {
				fmt.Fprintf(b, "- *%s*: %s\n", x.Name, x.Note)
			}
		}
		b.WriteString("\n")
	}
	for _, n := range s.Notes {
		fmt.Fprintf(b, "- %s\n", n)
	}
	if len(s.Notes) > 0 {
		b.WriteString("\n")
	}
	return plots(b, s, plotDir)
}

// plots writes one SVG per comparison (both sides) and per series.
func plots(b *strings.Builder, s benchkit.Section, plotDir string) error {
	k := 0
	write := func(p benchkit.Plot) error {
		k++
		name := fmt.Sprintf("%s-%d.svg", slug(s.Title), k)
		if err := os.WriteFile(filepath.Join(plotDir, name), []byte(p.SVG()), 0o644); err != nil {
			return fmt.Errorf("plot %s: %w", name, err)
		}
		fmt.Fprintf(b, "![%s](plots/%s)\n", p.Title, name)
		return nil
	}
	for _, c := range s.Comparisons {
		if err := write(benchkit.Plot{Title: c.Name, XLabel: "run", YLabel: c.Subject.Unit, Goal: math.NaN(),
			Lines: []benchkit.Line{{Label: c.Subject.Name, Values: c.Subject.Values}, {Label: c.Baseline.Name, Values: c.Baseline.Values}}}); err != nil {
			return err
		}
	}
	for _, x := range s.Series {
		xl := "run"
		if strings.Contains(x.Note, "one value per") {
			xl = "host / guest"
		}
		if err := write(benchkit.Plot{Title: x.Name, XLabel: xl, YLabel: x.Unit, Goal: goalValue(x.Goal),
			Lines: []benchkit.Line{{Label: x.Name, Values: x.Values}}}); err != nil {
			return err
		}
	}
	b.WriteString("\n")
	return nil
}

var goalRe = regexp.MustCompile(`[0-9.]+`)

// meeting counts the values that meet an upper-bound goal ("< 3000 ms",
// "≤ 1.25"), so a median that meets it cannot hide runs that did not.
func meeting(x benchkit.Series) string {
	g := strings.TrimSpace(x.Goal)
	lim := goalValue(g)
	if math.IsNaN(lim) || !(strings.HasPrefix(g, "<") || strings.HasPrefix(g, "≤")) {
		return "–"
	}
	k := 0
	for _, v := range x.Values {
		if v < lim || (strings.HasPrefix(g, "≤") && v == lim) {
			k++
		}
	}
	return fmt.Sprintf("%d of %d", k, len(x.Values))
}

// goalValue is the number in a goal such as "< 3000 ms", for the plot's line.
func goalValue(g string) float64 {
	m := goalRe.FindString(g)
	v, err := strconv.ParseFloat(m, 64)
	if err != nil {
		return math.NaN()
	}
	return v
}

func slug(s string) string {
	s = strings.ToLower(s)
	s = regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(s, "-")
	return strings.Trim(s, "-")
}

func runs(xs []float64) string {
	var p []string
	for _, x := range xs {
		p = append(p, num(x))
	}
	return strings.Join(p, ", ")
}

func num(v float64) string {
	switch {
	case math.IsNaN(v):
		return "–"
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func met(m *bool) string {
	switch {
	case m == nil:
		return "–"
	case *m:
		return "yes"
	default:
		return "**no**"
	}
}

func dash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}
