package audio

import (
	"errors"
	"fmt"
	"math"
	"testing"
)

func TestResampleKeepsToneAndDuration(t *testing.T) {
	cases := []struct{ from, to int }{
		{48000, 16000}, {16000, 48000}, {22050, 16000}, {44100, 24000},
		{8000, 48000}, {48000, 8000}, {24000, 22050}, {16000, 8000}, {44100, 16000}, {8000, 44100},
	}
	for _, tc := range cases {
		for _, freq := range []float64{440, 1000, 3000} {
			t.Run(fmt.Sprintf("%d-%d/%gHz", tc.from, tc.to, freq), func(t *testing.T) {
				in := PCM{Samples: sine(tc.from, freq, 1, 0.9), Rate: tc.from}
				out := Resample(in, tc.to)
				if out.Rate != tc.to {
					t.Fatalf("rate %d, want %d", out.Rate, tc.to)
				}
				// ceil(n*to/from): exactly one second in, one second out.
				if want := (len(in.Samples)*tc.to + tc.from - 1) / tc.from; len(out.Samples) != want {
					t.Errorf("%d samples, want %d", len(out.Samples), want)
				}
				if in.Duration() != out.Duration() {
					t.Errorf("duration %v, want %v", out.Duration(), in.Duration())
				}
				if f := toneFrequency(t, out.Samples, tc.to); !within(f, freq, 0.002) {
					t.Errorf("tone at %.2f Hz, want %.0f", f, freq)
				}
				// Flat passband: the level is kept within 0.1 dB.
				if a := amplitudeAt(out.Samples, tc.to, freq); !within(a, 0.9, 0.012) {
					t.Errorf("amplitude %.4f, want 0.9", a)
				}
				// No overshoot in the steady state: a 0.9 tone stays a 0.9 tone. At the abrupt
				// start and end the band-limited output rings (Gibbs), but must not clip.
				if pk := peak(out.Samples[len(out.Samples)/10 : len(out.Samples)*9/10]); pk > 0.905 {
					t.Errorf("steady-state peak %.4f of full scale from a 0.9 tone", pk)
				}
				if pk := peak(out.Samples); pk >= 0.99 {
					t.Errorf("peak %.4f of full scale: clipped", pk)
				}
			})
		}
	}
}

// TestResampleRejectsAliasesAndImages checks the low-pass: tones above the output's Nyquist
// frequency must vanish when downsampling (not fold back), and upsampling must not create
// images above the input's Nyquist frequency.
func TestResampleRejectsAliasesAndImages(t *testing.T) {
	const floor = 0.9 * 0.001 // -60 dB relative to the 0.9 input tone
	cases := []struct {
		from, to int
		tone     float64
		probe    float64 // where an alias or image would appear
	}{
		{48000, 16000, 10000, 6000},  // 10 kHz would alias to 6 kHz
		{48000, 16000, 8500, 7500},   // just above the new Nyquist
		{44100, 8000, 5000, 3000},    // 5 kHz would alias to 3 kHz
		{22050, 16000, 9000, 7000},   // 9 kHz would alias to 7 kHz
		{44100, 24000, 13000, 11000}, // 13 kHz would alias to 11 kHz
		{48000, 22050, 20000, 2050},  // 20 kHz would alias to 2.05 kHz
		{48000, 8000, 7000, 1000},    // 7 kHz would alias to 1 kHz
		{44100, 7999, 5000, 2999},    // quantised-phase path
		{16000, 48000, 1000, 15000},  // first image of 1 kHz, at 16k-1k
		{16000, 48000, 1000, 17000},  // and at 16k+1k
		{8000, 48000, 3000, 5000},    // image at 8k-3k
		{22050, 48000, 10000, 12050}, // image at 22.05k-10k
		{24000, 44100, 10000, 14000}, // image at 24k-10k
		{16000, 22050, 7000, 9000},   // image at 16k-7k
	}
	for _, tc := range cases {
		name := fmt.Sprintf("%d-%d/%gHz", tc.from, tc.to, tc.tone)
		t.Run(name, func(t *testing.T) {
			out := Resample(PCM{Samples: sine(tc.from, tc.tone, 0.5, 0.9), Rate: tc.from}, tc.to)
			if a := amplitudeAt(out.Samples, tc.to, tc.probe); a > floor {
				t.Errorf("%.0f Hz tone left %.5f (%.1f dB) at %.0f Hz", tc.tone, a, 20*math.Log10(a/0.9), tc.probe)
			}
		})
	}
}

// TestResamplerStreamingMatchesWhole feeds a stream in uneven chunks, as transports deliver
// it, and checks the output is sample-for-sample what the whole-buffer Resample gives.
func TestResamplerStreamingMatchesWhole(t *testing.T) {
	for _, rates := range [][2]int{{48000, 16000}, {16000, 24000}, {44100, 16000}, {8000, 22050}, {44100, 7999}} {
		t.Run(fmt.Sprintf("%d-%d", rates[0], rates[1]), func(t *testing.T) {
			in := sine(rates[0], 700, 0.7, 0.6)
			whole := Resample(PCM{Samples: in, Rate: rates[0]}, rates[1]).Samples

			r, err := NewResampler(rates[0], rates[1])
			if err != nil {
				t.Fatal(err)
			}
			var got []int16
			sizes := []int{1, 7, 160, 320, 960, 3, 4096, 5000}
			for i, off := 0, 0; off < len(in); i++ {
				n := min(sizes[i%len(sizes)], len(in)-off)
				got = append(got, r.Process(in[off:off+n])...)
				off += n
			}
			got = append(got, r.Flush()...)
			if !slicesEqual(got, whole) {
				t.Fatalf("streamed %d samples differ from the whole-buffer %d", len(got), len(whole))
			}
			// After Flush the Resampler starts a fresh stream.
			again := append(r.Process(in), r.Flush()...)
			if !slicesEqual(again, whole) {
				t.Fatal("a reused Resampler gave different output")
			}
		})
	}
}

func TestResampleOddRatioAndEdges(t *testing.T) {
	// 44100 -> 7999 has no small common factor: the quantised-phase path.
	out := Resample(PCM{Samples: sine(44100, 1000, 1, 0.5), Rate: 44100}, 7999)
	if f := toneFrequency(t, out.Samples, 7999); !within(f, 1000, 0.002) {
		t.Errorf("44100->7999: tone at %.2f Hz", f)
	}
	if len(out.Samples) != 7999 {
		t.Errorf("44100->7999: %d samples, want 7999", len(out.Samples))
	}

	// DC stays DC (every phase has unity gain), away from the edges.
	dc := make([]int16, 4800)
	for i := range dc {
		dc[i] = 10000
	}
	for _, v := range Resample(PCM{Samples: dc, Rate: 48000}, 22050).Samples[200:1900] {
		if v < 9999 || v > 10001 {
			t.Fatalf("constant 10000 came out as %d", v)
		}
	}

	// Full-scale square-ish input clamps instead of wrapping around.
	loud := make([]int16, 1600)
	for i := range loud {
		loud[i] = 32767
		if (i/40)%2 == 1 {
			loud[i] = -32768
		}
	}
	for i, v := range Resample(PCM{Samples: loud, Rate: 16000}, 48000).Samples {
		prev := loud[min(i/3, len(loud)-1)]
		if (prev > 0 && v < -30000) || (prev < 0 && v > 30000) {
			t.Fatalf("sample %d wrapped around to %d", i, v)
		}
	}

	if got := Resample(PCM{Rate: 16000}, 48000); len(got.Samples) != 0 || got.Rate != 48000 {
		t.Errorf("empty input: %d samples at %d Hz", len(got.Samples), got.Rate)
	}
	same := PCM{Samples: []int16{1, 2, 3}, Rate: 16000}
	if got := Resample(same, 16000); !slicesEqual(got.Samples, same.Samples) || &got.Samples[0] == &same.Samples[0] {
		t.Error("same rate must return an equal copy")
	}
	if got := Resample(same, 0); got.Rate != 16000 || !slicesEqual(got.Samples, same.Samples) {
		t.Error("a bad target rate must return the input unchanged")
	}
	for _, rates := range [][2]int{{0, 16000}, {16000, -1}, {16000, 999}, {MaxRate + 1, 16000}} {
		if _, err := NewResampler(rates[0], rates[1]); !errors.Is(err, ErrUnsupportedFormat) {
			t.Errorf("NewResampler(%d, %d): err = %v, want ErrUnsupportedFormat", rates[0], rates[1], err)
		}
	}
}
