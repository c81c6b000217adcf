package audio

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// The MP3s in testdata were made once with sox and lame (commands in testdata/README.md);
// there is no pure-Go MP3 encoder to make them at test time.
var mp3Fixtures = []struct {
	file     string
	rate     int
	freq     float64
	samples  int  // what was encoded
	gapless  bool // has a LAME tag, so the decode is sample-exact
	encoding string
}{
	{"sine1k_44100_stereo.mp3", 44100, 1000, 88200, true, "MPEG-1 Layer III, 80 kbps joint stereo, ID3v2 tag, LAME tag"},
	{"sine440_24000_mono.mp3", 24000, 440, 36000, true, "MPEG-2 Layer III, 64 kbps mono, LAME tag"},
	// lame leaves the LAME tag out when it does not fit a 32 kbps frame: the output then keeps
	// the encoder delay (~1100 samples) and ends on a frame boundary.
	{"sine440_24000_mono_notag.mp3", 24000, 440, 36000, false, "MPEG-2 Layer III, 32 kbps mono, no tag"},
}

func TestDecodeMP3ThenResampleTo16k(t *testing.T) {
	for _, fx := range mp3Fixtures {
		t.Run(fx.file, func(t *testing.T) {
			p, err := DecodeMP3(readTestdata(t, fx.file))
			if err != nil {
				t.Fatalf("DecodeMP3 (%s): %v", fx.encoding, err)
			}
			if p.Rate != fx.rate {
				t.Fatalf("rate %d, want %d", p.Rate, fx.rate)
			}
			// The LAME tag's delay and padding are trimmed, so the decode is sample-exact.
			if fx.gapless && len(p.Samples) != fx.samples {
				t.Errorf("decoded %d samples, want exactly the %d encoded (gapless trim)", len(p.Samples), fx.samples)
			}
			if extra := len(p.Samples) - fx.samples; !fx.gapless && (extra < 0 || extra > 2*576+mp3DecoderDelay+576) {
				t.Errorf("decoded %d samples for %d encoded: more than delay and padding apart", len(p.Samples), fx.samples)
			}
			if f := toneFrequency(t, p.Samples, p.Rate); !within(f, fx.freq, 0.005) {
				t.Errorf("decoded tone at %.1f Hz, want %.0f", f, fx.freq)
			}
			// sox wrote the tone at half scale; stereo channels are averaged, not summed.
			// (lame's psychoacoustic model shaves a few percent off a pure tone.)
			if a := amplitudeAt(p.Samples, p.Rate, fx.freq); !within(a, 0.5, 0.1) {
				t.Errorf("decoded amplitude %.3f, want 0.5", a)
			}

			r := Resample(p, 16000)
			want := time.Duration(len(p.Samples)) * time.Second / time.Duration(fx.rate)
			if fx.gapless {
				want = time.Duration(fx.samples) * time.Second / time.Duration(fx.rate)
			}
			if r.Rate != 16000 || !within(float64(r.Duration()), float64(want), 0.02) {
				t.Errorf("after resampling: %v at %d Hz, want %v (±2%%) at 16000", r.Duration(), r.Rate, want)
			}
			if f := toneFrequency(t, r.Samples, r.Rate); !within(f, fx.freq, 0.02) {
				t.Errorf("after resampling the tone is at %.1f Hz, want %.0f (±2%%)", f, fx.freq)
			}
			if pk := peak(r.Samples); pk > 0.6 {
				t.Errorf("after resampling the peak is %.2f of full scale; the tone was 0.5", pk)
			}
		})
	}
}

func TestDecodeMP3Truncated(t *testing.T) {
	b := readTestdata(t, "sine1k_44100_stereo.mp3")
	full, err := DecodeMP3(b)
	if err != nil {
		t.Fatal(err)
	}
	// Half a file decodes to about half the audio, as players do with a cut-off download.
	half, err := DecodeMP3(b[:len(b)/2])
	if err != nil {
		t.Fatalf("half an MP3: %v", err)
	}
	if ratio := float64(len(half.Samples)) / float64(len(full.Samples)); ratio < 0.4 || ratio > 0.6 {
		t.Errorf("half the bytes gave %.2f of the audio", ratio)
	}
	if f := toneFrequency(t, half.Samples, half.Rate); !within(f, 1000, 0.01) {
		t.Errorf("half an MP3: tone at %.1f Hz", f)
	}
}

func TestDecodeMP3BadInput(t *testing.T) {
	mp3 := readTestdata(t, "sine440_24000_mono.mp3") // no ID3 tag: starts with a frame header
	wav := EncodeWAV(PCM{Samples: sine(16000, 440, 0.1, 0.5), Rate: 16000})
	// The 24 kHz file with its headers rewritten to MPEG-2.5 at 12 kHz (version bits 00).
	mpeg25 := append([]byte(nil), mp3...)
	for off := 0; off+4 <= len(mpeg25); {
		n, _, ok := mp3FrameLen(mpeg25[off:])
		if !ok {
			break
		}
		mpeg25[off+1] &^= 0x18
		off += n
	}
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrEmpty},
		{"first frame cut", mp3[:50], ErrTruncated},
		{"ID3 tag alone", []byte("ID3\x03\x00\x00\x00\x00\x00\x10" + string(make([]byte, 16))), ErrTruncated},
		{"WAV labelled MP3", wav, ErrMislabelled},
		{"text", []byte("this is not an mp3 file at all, just some words"), ErrUnsupportedFormat},
		{"too large", make([]byte, MaxDecodeBytes+1), ErrTooLarge},
		// go-mp3 mis-sizes these frames; refusing beats returning noise (see DecodeMP3).
		{"22.05 kHz 32 kbps", readTestdata(t, "sine440_22050_mono_32k_gomp3bug.mp3"), ErrUnsupportedFormat},
		{"MPEG-2.5", mpeg25, ErrUnsupportedFormat},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeMP3(tc.in); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want one wrapping %v", err, tc.want)
			}
		})
	}
}

// TestDecodeMP3SurvivesDecoderPanic replays an input found by fuzzing on which go-mp3 v0.3.4
// indexes out of range: DecodeMP3 must turn the panic into an error.
func TestDecodeMP3SurvivesDecoderPanic(t *testing.T) {
	in := []byte("\xff\xf3" + "00000000" + "\xd3" + strings.Repeat("0", 109))
	for _, decode := range []func([]byte) (PCM, error){DecodeMP3, func(b []byte) (PCM, error) { return Decode(b, "mp3", 0) }} {
		_, err := decode(in)
		if !errors.Is(err, ErrUnsupportedFormat) || !strings.Contains(err.Error(), "malformed") {
			t.Errorf("err = %v, want ErrUnsupportedFormat for a malformed stream", err)
		}
	}
}

// BenchmarkMP3DecodeResample16k decodes the 2 s stereo 44.1 kHz MP3 and resamples it to
// 16 kHz, the STT input path, and reports how many times faster than real time that runs.
func BenchmarkMP3DecodeResample16k(b *testing.B) {
	data := readTestdata(b, "sine1k_44100_stereo.mp3")
	p, err := DecodeMP3(data)
	if err != nil {
		b.Fatal(err)
	}
	audioSeconds := p.Duration().Seconds()
	b.SetBytes(int64(len(data)))
	iterations := 0
	start := time.Now()
	for b.Loop() {
		iterations++
		p, err := DecodeMP3(data)
		if err != nil {
			b.Fatal(err)
		}
		if r := Resample(p, 16000); len(r.Samples) == 0 {
			b.Fatal("no output")
		}
	}
	elapsed := time.Since(start).Seconds()
	b.ReportMetric(audioSeconds*float64(iterations)/elapsed, "x-realtime")
}
