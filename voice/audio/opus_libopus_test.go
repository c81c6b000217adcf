//go:build libopus

package audio

import (
	"errors"
	"fmt"
	"math"
	"testing"

	hopus "gopkg.in/hraban/opus.v2"
)

// vowel synthesises a speech-like signal: a glottal pulse train with a gliding pitch through
// three formant resonators, so the SILK path sees pitch and formants as it does with speech.
func vowel(rate int, seconds float64) []int16 {
	n := int(seconds * float64(rate))
	out := make([]int16, n)
	type res struct{ y1, y2, a1, a2, g float64 }
	var formants []*res
	for _, f := range [][2]float64{{700, 110}, {1220, 120}, {2600, 160}} {
		if f[0] >= float64(rate)/2 {
			continue
		}
		r := math.Exp(-math.Pi * f[1] / float64(rate))
		formants = append(formants, &res{a1: 2 * r * math.Cos(2*math.Pi*f[0]/float64(rate)), a2: -r * r, g: 1 - r})
	}
	phase := 0.0
	for i := range out {
		f0 := 120 + 20*math.Sin(2*math.Pi*1.5*float64(i)/float64(rate))
		phase += f0 / float64(rate)
		x := 0.0
		if phase >= 1 {
			phase--
			x = 1
		}
		y := 0.0
		for _, r := range formants {
			v := r.g*x + r.a1*r.y1 + r.a2*r.y2
			r.y2, r.y1 = r.y1, v
			y += v
		}
		out[i] = int16(math.Max(-32768, math.Min(32767, y*6000)))
	}
	return out
}

func snrDB(ref, got []int16) float64 {
	var s, e float64
	for i := range ref {
		d := float64(ref[i]) - float64(got[i])
		s += float64(ref[i]) * float64(ref[i])
		e += d * d
	}
	return 10 * math.Log10(s/math.Max(e, 1e-9))
}

// TestOpusRoundTrip encodes with libopus, decodes every packet with the pure-Go OpusDecoder
// and with libopus's own decoder, and checks (1) the tone survives, (2) the pure-Go output
// matches libopus's within the documented bounds for each mode.
func TestOpusRoundTrip(t *testing.T) {
	cases := []struct {
		app    string
		signal string
		minSNR float64 // pure-Go vs libopus decoder
	}{
		{OpusApplicationLowDelay, "tone", 70}, // CELT: pion reproduces libopus
		{OpusApplicationLowDelay, "vowel", 70},
		{OpusApplicationVoIP, "tone", 35}, // SILK/hybrid: close, not bit-exact
		{OpusApplicationVoIP, "vowel", 35},
		{OpusApplicationAudio, "vowel", 35},
	}
	for _, tc := range cases {
		for _, rate := range []int{8000, 16000, 24000, 48000} {
			t.Run(fmt.Sprintf("%s/%s/%d", tc.app, tc.signal, rate), func(t *testing.T) {
				enc, err := NewOpusEncoderWithConfig(OpusEncoderConfig{Rate: rate, Application: tc.app})
				if err != nil {
					t.Fatal(err)
				}
				dec, err := NewOpusDecoder(rate)
				if err != nil {
					t.Fatal(err)
				}
				ref, err := hopus.NewDecoder(rate, 1)
				if err != nil {
					t.Fatal(err)
				}
				in := sine(rate, 440, 1, 0.5)
				if tc.signal == "vowel" {
					in = vowel(rate, 1)
				}
				frame := enc.FrameSamples()
				if frame != rate/50 {
					t.Fatalf("FrameSamples = %d, want %d", frame, rate/50)
				}
				var got, want []int16
				buf := make([]int16, 5760)
				for off := 0; off+frame <= len(in); off += frame {
					pkt, err := enc.Encode(in[off : off+frame])
					if err != nil {
						t.Fatal(err)
					}
					if len(pkt) == 0 || len(pkt) > 1275 {
						t.Fatalf("packet of %d bytes", len(pkt))
					}
					s, err := dec.Decode(pkt)
					if err != nil {
						t.Fatalf("pure-Go decode of a libopus packet (TOC 0x%02x): %v", pkt[0], err)
					}
					if len(s) != frame {
						t.Fatalf("decoded %d samples, want %d", len(s), frame)
					}
					n, err := ref.Decode(pkt, buf)
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, s...)
					want = append(want, buf[:n]...)
				}
				if len(got) != len(in) {
					t.Errorf("%d samples out for %d in", len(got), len(in))
				}
				snr := snrDB(want, got)
				t.Logf("pure-Go vs libopus decoder: %.1f dB", snr)
				if snr < tc.minSNR {
					t.Errorf("pure-Go decoder vs libopus: %.1f dB, want >= %.0f", snr, tc.minSNR)
				}
				if tc.signal == "tone" {
					if f := toneFrequency(t, got, rate); !within(f, 440, 0.005) {
						t.Errorf("tone at %.1f Hz after the round trip", f)
					}
				}
			})
		}
	}
}

func TestOpusEncoderErrors(t *testing.T) {
	if !OpusEncoderAvailable {
		t.Fatal("OpusEncoderAvailable is false in a libopus build")
	}
	enc, err := NewOpusEncoder(16000)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := enc.Encode(make([]int16, 319)); err == nil {
		t.Error("a frame of 319 samples at 16 kHz was accepted")
	}
	for _, cfg := range []OpusEncoderConfig{
		{Rate: 44100}, {Rate: 16000, Application: "music"}, {Rate: 16000, Bitrate: 100}, {Rate: 16000, Complexity: 11},
	} {
		if _, err := NewOpusEncoderWithConfig(cfg); !errors.Is(err, ErrUnsupportedFormat) {
			t.Errorf("%+v: err = %v, want ErrUnsupportedFormat", cfg, err)
		}
	}
}
