package testcluster

import (
	"context"
	"fmt"
	"sort"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics is one scrape of a node's /metrics, parsed.
type Metrics map[string]*dto.MetricFamily

// Scrape reads a node's /metrics and parses the Prometheus text format, so
// tests check exactly what Prometheus would ingest.
func (c *Cluster) Scrape(apiAddr string) (Metrics, error) {
	text, err := c.Client(apiAddr).Metrics(context.Background())
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", apiAddr, err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mf, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("parse metrics of %s: %w", apiAddr, err)
	}
	return Metrics(mf), nil
}

// matches reports whether a sample has every label of want.
func matches(m *dto.Metric, want map[string]string) bool {
	for k, v := range want {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == k && lp.GetValue() == v {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Value sums the samples of a counter or gauge whose labels include want
// (label pairs "k", "v", ...). ok is false when no sample matched.
func (ms Metrics) Value(name string, labels ...string) (v float64, ok bool) {
	want := pairs(labels)
	for _, m := range ms[name].GetMetric() {
		if !matches(m, want) {
			continue
		}
		ok = true
		switch {
		case m.Counter != nil:
			v += m.Counter.GetValue()
		case m.Gauge != nil:
			v += m.Gauge.GetValue()
		case m.Untyped != nil:
			v += m.Untyped.GetValue()
		}
	}
	return v, ok
}

// HistCount sums the observation counts and sums of a histogram's samples
// whose labels include want.
func (ms Metrics) HistCount(name string, labels ...string) (count uint64, sum float64) {
	want := pairs(labels)
	for _, m := range ms[name].GetMetric() {
		if m.Histogram != nil && matches(m, want) {
			count += m.Histogram.GetSampleCount()
			sum += m.Histogram.GetSampleSum()
		}
	}
	return count, sum
}

// Names lists the metric families, sorted.
func (ms Metrics) Names() []string {
	var out []string
	for k := range ms {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func pairs(labels []string) map[string]string {
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	return want
}

// String renders a family's samples briefly, for failure messages.
func (ms Metrics) String(name string) string {
	var b strings.Builder
	for _, m := range ms[name].GetMetric() {
		var ls []string
		for _, lp := range m.GetLabel() {
			ls = append(ls, lp.GetName()+"="+lp.GetValue())
		}
		v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
		if m.Histogram != nil {
			v = float64(m.Histogram.GetSampleCount())
		}
		fmt.Fprintf(&b, "%s{%s} %g\n", name, strings.Join(ls, ","), v)
	}
	return b.String()
}
