package main

import (
	"math"
	"slices"
	"time"
)

// quantile of sorted values by the nearest-rank method, q in [0, 1]; NaN for no values.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	rank := int(math.Ceil(q * float64(len(sorted))))
	return sorted[min(len(sorted)-1, max(0, rank-1))]
}

// median of values in any order (the mean of the middle two for an even count); NaN for none.
// Used across runs, where a handful of values must not be biased to the lower one.
func median(values []float64) float64 {
	v := slices.Clone(values)
	v = slices.DeleteFunc(v, math.IsNaN)
	if len(v) == 0 {
		return math.NaN()
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// millis turns durations into sorted milliseconds.
func millis(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = float64(d) / float64(time.Millisecond)
	}
	slices.Sort(out)
	return out
}
