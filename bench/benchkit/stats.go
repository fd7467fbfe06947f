package benchkit

import (
	"math"
	"slices"
)

// Median of xs; NaN when empty. Benchmarks report medians because the
// machines they run on are noisy (2 shared cores): one slow run must not
// move the figure.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// MinMax returns the smallest and largest of xs (NaN, NaN when empty).
func MinMax(xs []float64) (float64, float64) {
	if len(xs) == 0 {
		return math.NaN(), math.NaN()
	}
	return slices.Min(xs), slices.Max(xs)
}
