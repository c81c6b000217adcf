package audio

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// sine returns seconds of a tone at freq with peak amp (a fraction of full scale).
func sine(rate int, freq, seconds, amp float64) []int16 {
	n := int(math.Round(seconds * float64(rate)))
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(math.Round(amp * 32767 * math.Sin(2*math.Pi*freq*float64(i)/float64(rate))))
	}
	return out
}

// toneFrequency estimates the frequency of a clean tone from its zero crossings, interpolated
// to sub-sample precision, over the middle 80% of s (edges hold filter and codec transients).
func toneFrequency(t *testing.T, s []int16, rate int) float64 {
	t.Helper()
	lo, hi := len(s)/10, len(s)*9/10
	var first, last float64
	crossings := 0
	for i := lo + 1; i < hi; i++ {
		a, b := float64(s[i-1]), float64(s[i])
		if a < 0 && b >= 0 { // rising crossings only: one per period, immune to DC-free noise pairs
			x := float64(i-1) + a/(a-b)
			if crossings == 0 {
				first = x
			}
			last = x
			crossings++
		}
	}
	if crossings < 3 {
		t.Fatalf("only %d rising zero crossings in %d samples: not a tone", crossings, hi-lo)
	}
	return float64(crossings-1) * float64(rate) / (last - first)
}

// amplitudeAt measures the amplitude (fraction of full scale) of the component of s at freq,
// with a Hann-windowed single-bin DFT over the middle 80% of s.
func amplitudeAt(s []int16, rate int, freq float64) float64 {
	lo, hi := len(s)/10, len(s)*9/10
	n := hi - lo
	var re, im, wsum float64
	for i := 0; i < n; i++ {
		w := 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(n-1))
		ph := 2 * math.Pi * freq * float64(i) / float64(rate)
		v := float64(s[lo+i]) / 32768
		re += w * v * math.Cos(ph)
		im -= w * v * math.Sin(ph)
		wsum += w
	}
	return 2 * math.Hypot(re, im) / wsum
}

// peak is the largest magnitude in s, as a fraction of full scale.
func peak(s []int16) float64 {
	m := 0
	for _, v := range s {
		a := int(v)
		if a < 0 {
			a = -a
		}
		m = max(m, a)
	}
	return float64(m) / 32768
}

func within(got, want, tol float64) bool { return math.Abs(got-want) <= tol*math.Abs(want) }

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("read testdata: %v (see testdata/README.md for how the files were made)", err)
	}
	return b
}
