package benchkit

import (
	"fmt"
	"math"
	"strings"
)

// Line is one set of points of a plot, in run order.
type Line struct {
	Label  string
	Values []float64
}

// Plot is a small dot-and-line chart of one or two series over runs, with
// each series' median dashed and an optional goal line: enough to see the
// spread and the drift of repeated runs without a plotting library.
type Plot struct {
	Title, XLabel, YLabel string
	Lines                 []Line
	// Goal draws a red horizontal line at this value when not NaN.
	Goal float64
}

var palette = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"}

// SVG renders the plot.
func (p Plot) SVG() string {
	const w, h, left, right, top, bottom = 640.0, 360.0, 70.0, 20.0, 40.0, 60.0
	ymax, n := 0.0, 0
	for _, l := range p.Lines {
		for _, v := range l.Values {
			if !math.IsNaN(v) {
				ymax = math.Max(ymax, v)
			}
		}
		n = max(n, len(l.Values))
	}
	if !math.IsNaN(p.Goal) {
		ymax = math.Max(ymax, p.Goal)
	}
	step := niceStep(ymax / 5)
	if step <= 0 {
		step = 1
	}
	ymax = math.Ceil(ymax/step) * step
	if ymax == 0 {
		ymax = 1
	}
	x := func(i int) float64 {
		if n <= 1 {
			return left + (w-left-right)/2
		}
		return left + float64(i)*(w-left-right)/float64(n-1)
	}
	y := func(v float64) float64 { return top + (h-top-bottom)*(1-v/ymax) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="20" font-size="14" text-anchor="middle">%s</text>`+"\n", w/2, esc(p.Title))
	for v := 0.0; v <= ymax+step/2; v += step {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`, left, y(v), w-right, y(v))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, y(v)+4, fmtNum(v))
	}
	every := max(1, (n+9)/10)
	for i := 0; i < n; i++ {
		if i%every == 0 || i == n-1 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%d</text>`, x(i), h-bottom+16, i+1)
		}
	}
	fmt.Fprintf(&b, "\n"+`<text x="%.0f" y="%.0f" text-anchor="middle">%s</text>`+"\n", (left+w-right)/2, h-bottom+34, esc(p.XLabel))
	fmt.Fprintf(&b, `<text x="16" y="%.0f" text-anchor="middle" transform="rotate(-90 16 %.0f)">%s</text>`+"\n", (top+h-bottom)/2, (top+h-bottom)/2, esc(p.YLabel))
	if !math.IsNaN(p.Goal) {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#d62728" stroke-width="2"/>`, left, y(p.Goal), w-right, y(p.Goal))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end" fill="#d62728">goal %s</text>`+"\n", w-right, y(p.Goal)-4, fmtNum(p.Goal))
	}
	for k, l := range p.Lines {
		c := palette[k%len(palette)]
		var pts []string
		for i, v := range l.Values {
			if math.IsNaN(v) {
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(i), y(v)))
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="%.1f" fill="%s"/>`, x(i), y(v), dot(n), c)
		}
		fmt.Fprintf(&b, "\n"+`<polyline points="%s" fill="none" stroke="%s" stroke-opacity="0.5"/>`+"\n", strings.Join(pts, " "), c)
		med := Median(l.Values)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="6 4"/>`+"\n", left, y(med), w-right, y(med), c)
		ly := h - 8 - float64(len(p.Lines)-1-k)*0
		lx := left + float64(k)*(w-left-right)/float64(max(len(p.Lines), 1))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="10" height="10" fill="%s"/><text x="%.1f" y="%.1f">%s (median %s, dashed)</text>`+"\n",
			lx, ly-10, c, lx+14, ly, esc(shorten(l.Label, 40)), fmtNum(med))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func niceStep(raw float64) float64 {
	if raw <= 0 || math.IsNaN(raw) {
		return 0
	}
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if raw <= m*mag {
			return m * mag
		}
	}
	return 10 * mag
}

func fmtNum(v float64) string {
	switch {
	case v == math.Trunc(v) && math.Abs(v) < 1e7:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

// dot is the radius of a point: smaller when there are many.
func dot(n int) float64 {
	if n > 30 {
		return 2
	}
	return 3.5
}
