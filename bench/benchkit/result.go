package benchkit

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Series is one measured quantity over repeated runs, in run order, so the
// report can plot every run and not only the median.
type Series struct {
	Name   string    `json:"name"`
	Unit   string    `json:"unit"`
	Values []float64 `json:"values"`
	// Goal, when set, is printed beside the median (e.g. "< 3 s").
	Goal string `json:"goal,omitempty"`
	// Met says whether the figure meets Goal; nil when there is no goal.
	Met *bool `json:"met,omitempty"`
	// JudgedOn is "max" when the goal is about every value (each host's
	// memory, every run), not the median.
	JudgedOn string `json:"judged_on,omitempty"`
	// Note says how it was measured, or what limits the figure.
	Note string `json:"note,omitempty"`
}

// Median of the series' values.
func (s Series) Median() float64 { return Median(s.Values) }

// Judged is the value the goal is judged on, and what it is ("median" or "max").
func (s Series) Judged() (float64, string) {
	if s.JudgedOn == "max" {
		_, hi := MinMax(s.Values)
		return hi, "max"
	}
	return s.Median(), "median"
}

// Comparison is a benchmark with two sides measured alternately in one run
// (hostmesh against a baseline), reported as medians and their ratio.
type Comparison struct {
	Name     string `json:"name"`
	Subject  Series `json:"subject"`
	Baseline Series `json:"baseline"`
	// Ratio is median(subject)/median(baseline); the goal is about it.
	Goal string `json:"goal,omitempty"`
	Met  *bool  `json:"met,omitempty"`
	Note string `json:"note,omitempty"`
}

// Ratio is median(subject)/median(baseline).
func (c Comparison) Ratio() float64 { return c.Subject.Median() / c.Baseline.Median() }

// Section is what one benchmark program writes: its series, comparisons,
// the command that reproduces it and free-form notes.
type Section struct {
	Title       string       `json:"title"`
	Command     string       `json:"command"`
	Setup       string       `json:"setup"`
	Series      []Series     `json:"series,omitempty"`
	Comparisons []Comparison `json:"comparisons,omitempty"`
	Notes       []string     `json:"notes,omitempty"`
	Started     time.Time    `json:"started"`
	Took        string       `json:"took"`
}

// Bool returns a pointer to b, for Met fields.
func Bool(b bool) *bool { return &b }

// Write stores a section as JSON at path, creating its directory.
func (s Section) Write(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("results dir for %s: %w", path, err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode section %q: %w", s.Title, err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write section %q: %w", s.Title, err)
	}
	return nil
}

// ReadSection loads a section a benchmark program wrote.
func ReadSection(path string) (Section, error) {
	var s Section
	b, err := os.ReadFile(path)
	if err != nil {
		return s, fmt.Errorf("read results %s: %w", path, err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("decode results %s: %w", path, err)
	}
	return s, nil
}
