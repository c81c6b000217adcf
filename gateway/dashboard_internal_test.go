package gateway

import (
	"math"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// histogramQuantile agrees with Prometheus' histogram_quantile on a real histogram.
func TestHistogramQuantile(t *testing.T) {
	cases := []struct {
		name    string
		observe []float64
		q       float64
		want    float64
	}{
		{"empty", nil, 0.5, 0},
		{"one bucket, interpolated", repeat(0.003, 100), 0.5, 0.0025 + 0.0025*0.5},
		{"one bucket, top", repeat(0.003, 100), 1, 0.005},
		{"two buckets", append(repeat(0.02, 50), repeat(0.2, 50)...), 0.95, 0.1 + 0.15*0.9},
		{"beyond the last bucket", repeat(20, 10), 0.99, 10},
		{"first bucket from zero", repeat(0.0005, 4), 0.5, 0.0005},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h", Buckets: latencyBuckets})
			for _, v := range tc.observe {
				h.Observe(v)
			}
			var m dto.Metric
			if err := h.Write(&m); err != nil {
				t.Fatal(err)
			}
			if got := histogramQuantile(tc.q, m.GetHistogram()); math.Abs(got-tc.want) > 1e-9 {
				t.Fatalf("q%.2f = %v, want %v", tc.q, got, tc.want)
			}
		})
	}
}

func repeat(v float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// mergeHistograms adds up a family's histograms bucket by bucket.
func TestMergeHistograms(t *testing.T) {
	vec := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "h", Buckets: latencyBuckets}, []string{"agent"})
	for _, v := range repeat(0.003, 30) {
		vec.WithLabelValues("a").Observe(v)
	}
	for _, v := range repeat(0.2, 70) {
		vec.WithLabelValues("b").Observe(v)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(vec)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	h := mergeHistograms(families[0])
	if h.GetSampleCount() != 100 || math.Abs(h.GetSampleSum()-(0.09+14)) > 1e-9 {
		t.Fatalf("count %d, sum %v", h.GetSampleCount(), h.GetSampleSum())
	}
	// The 30th sample is the last of bucket (.0025, .005]; the 65th is in (.1, .25].
	if got := histogramQuantile(0.30, h); math.Abs(got-0.005) > 1e-9 {
		t.Fatalf("p30 %v", got)
	}
	if got, want := histogramQuantile(0.65, h), 0.1+0.15*(35.0/70); math.Abs(got-want) > 1e-9 {
		t.Fatalf("p65 %v, want %v", got, want)
	}
}
