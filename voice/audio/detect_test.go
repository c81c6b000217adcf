package audio

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDetect(t *testing.T) {
	wav := EncodeWAV(PCM{Samples: sine(16000, 440, 0.05, 0.5), Rate: 16000})
	mp3ID3 := readTestdata(t, "sine1k_44100_stereo.mp3")
	mp3Sync := readTestdata(t, "sine440_24000_mono.mp3")
	ogg := readTestdata(t, "sine440_48000_mono.opus")
	// Raw PCM whose first sample is -1025 (bytes FF FB): looks like an MPEG-1 Layer III
	// header, but no second header follows where the first says the next frame starts.
	pcmLikeSync := PCM16ToBytes(append([]int16{-1025, 0x1090}, sine(16000, 440, 0.1, 0.3)...))
	cases := []struct {
		name string
		in   []byte
		want string
	}{
		{"wav", wav, FormatWAV},
		{"cut-off RIFF", wav[:6], FormatWAV},
		{"RIFF AVI", []byte("RIFF\x10\x00\x00\x00AVI LIST"), ""},
		{"mp3 with ID3", mp3ID3, FormatMP3},
		{"mp3 frame sync", mp3Sync, FormatMP3},
		{"mp3 single frame header", mp3Sync[:40], FormatMP3},
		{"ogg", ogg, FormatOgg},
		{"webm", []byte{0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x86, 0x81, 0x01}, FormatWebM},
		{"flac", []byte("fLaC\x00\x00\x00\x22"), FormatFLAC},
		{"AAC ADTS is not mp3", []byte{0xFF, 0xF1, 0x50, 0x80, 0x02, 0x1F, 0xFC}, ""},
		{"pcm that starts like a frame", pcmLikeSync, ""},
		{"text", []byte("hello world"), ""},
		{"empty", nil, ""},
		{"one byte", []byte{0xFF}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Detect(tc.in); got != tc.want {
				t.Errorf("Detect = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDecodeDispatch(t *testing.T) {
	tone := sine(16000, 440, 0.25, 0.5)
	wav := EncodeWAV(PCM{Samples: tone, Rate: 16000})
	mp3 := readTestdata(t, "sine1k_44100_stereo.mp3")
	ogg := readTestdata(t, "sine440_48000_mono.opus")

	ok := []struct {
		name   string
		in     []byte
		format string
		rate   int
		want   int // sample rate of the result
		freq   float64
	}{
		{"wav detected", wav, "", 0, 16000, 440},
		{"wav labelled", wav, "wav", 0, 16000, 440},
		{"wav, rate ignored", wav, "WAV", 8000, 16000, 440},
		{"mp3 detected", mp3, "", 0, 44100, 1000},
		{"mp3 labelled", mp3, "mp3", 0, 44100, 1000},
		{"ogg opus detected", ogg, "", 0, 48000, 440},
		{"ogg labelled opus", ogg, "opus", 0, 48000, 440},
		{"pcm16", PCM16ToBytes(tone), "pcm16", 16000, 16000, 440},
		{"pcm alias", PCM16ToBytes(tone), "pcm", 16000, 16000, 440},
		{"ulaw default 8k", EncodeULaw(sine(8000, 440, 0.25, 0.5)), "g711_ulaw", 0, 8000, 440},
		{"alaw", EncodeALaw(sine(8000, 440, 0.25, 0.5)), "g711_alaw", 8000, 8000, 440},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Decode(tc.in, tc.format, tc.rate)
			if err != nil {
				t.Fatal(err)
			}
			if p.Rate != tc.want {
				t.Errorf("rate %d, want %d", p.Rate, tc.want)
			}
			if f := toneFrequency(t, p.Samples, p.Rate); !within(f, tc.freq, 0.01) {
				t.Errorf("tone at %.1f Hz, want %.0f", f, tc.freq)
			}
		})
	}

	bad := []struct {
		name    string
		in      []byte
		format  string
		rate    int
		want    error
		message string
	}{
		{"empty", nil, "", 0, ErrEmpty, "no bytes"},
		{"mp3 labelled wav", mp3, "wav", 0, ErrMislabelled, "labelled wav but the bytes are mp3"},
		{"wav labelled mp3", wav, "mp3", 0, ErrMislabelled, "labelled mp3 but the bytes are wav"},
		{"wav labelled pcm16", wav, "pcm16", 16000, ErrMislabelled, "labelled pcm16 but the bytes are wav"},
		{"mp3 labelled ulaw", mp3, "g711_ulaw", 0, ErrMislabelled, "the bytes are mp3"},
		{"ogg labelled mp3", ogg, "mp3", 0, ErrMislabelled, "the bytes are ogg"},
		{"wav labelled opus", wav, "opus", 0, ErrMislabelled, "the bytes are wav"},
		{"ogg labelled webm", ogg, "webm", 0, ErrMislabelled, "the bytes are ogg"},
		{"undetectable", []byte("plain text, no magic"), "", 0, ErrUnsupportedFormat, "cannot tell the format"},
		{"unknown label", wav, "aiff", 0, ErrUnsupportedFormat, `unknown format "aiff"`},
		{"webm", []byte{0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x86, 0x81, 0x01}, "", 0, ErrUnsupportedFormat, "webm decoding is not supported"},
		{"pcm16 without a rate", PCM16ToBytes(tone), "pcm16", 0, ErrUnsupportedFormat, "needs a sample rate"},
		{"pcm16 odd length", PCM16ToBytes(tone)[:101], "pcm16", 16000, ErrTruncated, "not a whole number"},
		{"ogg cut short", ogg[:len(ogg)/2], "", 0, ErrTruncated, "ogg"},
		{"pcm16 too long", make([]byte, 2*1000*int(MaxDecodeDuration/time.Second)+2), "pcm16", 1000, ErrTooLarge, "MaxDecodeDuration"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.in, tc.format, tc.rate)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want one wrapping %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.message) {
				t.Errorf("error %q does not say %q", err, tc.message)
			}
		})
	}
}

func TestEncode(t *testing.T) {
	p := PCM{Samples: sine(16000, 440, 0.5, 0.5), Rate: 16000}
	for _, format := range []string{"wav", "pcm16", "g711_ulaw", "g711_alaw", "ulaw"} {
		t.Run(format, func(t *testing.T) {
			b, err := Encode(p, format)
			if err != nil {
				t.Fatal(err)
			}
			rate := 16000
			if strings.Contains(format, "law") {
				rate = 8000 // G.711 is always 8 kHz: Encode resampled
				if len(b) != len(p.Samples)/2 {
					t.Errorf("%d bytes for %d samples at 16 kHz, want %d", len(b), len(p.Samples), len(p.Samples)/2)
				}
			}
			back, err := Decode(b, format, rate)
			if err != nil {
				t.Fatal(err)
			}
			if back.Duration() != p.Duration() {
				t.Errorf("duration %v, want %v", back.Duration(), p.Duration())
			}
			if f := toneFrequency(t, back.Samples, back.Rate); !within(f, 440, 0.005) {
				t.Errorf("tone at %.1f Hz", f)
			}
		})
	}
	for _, format := range []string{"mp3", "opus", "flac", ""} {
		if _, err := Encode(p, format); !errors.Is(err, ErrUnsupportedFormat) {
			t.Errorf("Encode(%q): err = %v, want ErrUnsupportedFormat", format, err)
		}
	}
	if _, err := Encode(PCM{Samples: []int16{1}}, "wav"); !errors.Is(err, ErrUnsupportedFormat) {
		t.Errorf("Encode without a rate: err = %v, want ErrUnsupportedFormat", err)
	}
}

func TestPCM16BytesAndFloat(t *testing.T) {
	s := []int16{0, 1, -1, 32767, -32768, 0x1234}
	b := PCM16ToBytes(s)
	if len(b) != 12 || b[2] != 1 || b[3] != 0 || b[4] != 0xFF || b[10] != 0x34 || b[11] != 0x12 {
		t.Fatalf("not little-endian: % x", b)
	}
	back, err := BytesToPCM16(b)
	if err != nil || !slicesEqual(back, s) {
		t.Fatalf("round trip: %v, %v", back, err)
	}
	if _, err := BytesToPCM16(b[:5]); !errors.Is(err, ErrTruncated) {
		t.Errorf("odd length: err = %v, want ErrTruncated", err)
	}
	nan := float32(0)
	nan = nan / nan
	f := []float32{0, 0.5, -0.5, 1, -1, 1.5, -7, nan, 1.0 / 32768}
	want := []int16{0, 16384, -16384, 32767, -32768, 32767, -32768, 0, 1}
	if got := Float32ToPCM16(f); !slicesEqual(got, want) {
		t.Errorf("Float32ToPCM16 = %v, want %v", got, want)
	}
	if d := (PCM{Samples: make([]int16, 24000), Rate: 48000}).Duration(); d != 500*time.Millisecond {
		t.Errorf("Duration = %v", d)
	}
	if d := (PCM{Samples: make([]int16, 10)}).Duration(); d != 0 {
		t.Errorf("Duration without a rate = %v", d)
	}
}
