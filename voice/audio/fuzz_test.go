package audio

import (
	"bytes"
	"errors"
	"testing"
)

// Fuzz targets. Seeds are added in code, plus real MP3s for FuzzDecode in testdata/fuzz (and
// mp3_fuzz_test.go for the MP3 parsers); run one with e.g.
//   go test -run '^$' -fuzz '^FuzzDecodeWAV$' -fuzztime 20s ./voice/audio
// Every decoder must return, never panic, and wrap one of the package's sentinel errors.

func sentinel(err error) bool {
	for _, s := range []error{ErrTruncated, ErrUnsupportedFormat, ErrMislabelled, ErrEmpty, ErrTooLarge} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

func fuzzSeeds(f *testing.F) [][]byte {
	tone := sine(8000, 440, 0.02, 0.5)
	stereo := makeWAV(wavSpec{tag: wavFormatPCM, channels: 2, rate: 8000, bits: 16}, PCM16ToBytes(append(tone, tone...)))
	float := makeWAV(wavSpec{tag: wavFormatFloat, channels: 1, rate: 8000, bits: 32}, make([]byte, 64))
	ext := makeWAV(wavSpec{tag: wavFormatPCM, channels: 2, rate: 8000, bits: 24, extensible: true}, make([]byte, 60))
	mp3 := readTestdata(f, "sine440_24000_mono.mp3")
	id3 := readTestdata(f, "sine1k_44100_stereo.mp3")
	ogg := readTestdata(f, "sine440_48000_mono.opus")
	return [][]byte{
		EncodeWAV(PCM{Samples: tone, Rate: 8000}), stereo, float, ext,
		[]byte("RIFF\x00\x00\x00\x00WAVEfmt "), []byte("RIFF"),
		mp3[:min(len(mp3), 2000)], id3[:min(len(id3), 3000)], ogg[:min(len(ogg), 2000)],
		{0x1A, 0x45, 0xDF, 0xA3}, []byte("fLaC"), {0xFF, 0xFB, 0x90, 0x64}, {},
	}
}

func FuzzDecodeWAV(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodeWAV(b)
		if err != nil {
			if !sentinel(err) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		if p.Rate < MinRate || p.Rate > MaxRate {
			t.Fatalf("decoded with rate %d", p.Rate)
		}
		// PCM and G.711 WAVs never expand past one sample per input byte; MP3-in-WAV is
		// bounded by MaxDecodeDuration.
		if len(p.Samples) > len(b) && int64(len(p.Samples)) > int64(MaxDecodeDuration.Seconds())*int64(p.Rate) {
			t.Fatalf("%d samples from %d bytes", len(p.Samples), len(b))
		}
	})
}

func FuzzDetect(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got := Detect(b)
		switch got {
		case "", FormatMP3:
		case FormatWAV:
			if !bytes.HasPrefix(b, []byte("RIFF")) {
				t.Fatalf("wav without RIFF: % x", b[:min(len(b), 12)])
			}
		case FormatOgg, FormatWebM, FormatFLAC:
			if len(b) < 4 {
				t.Fatalf("%s from %d bytes", got, len(b))
			}
		default:
			t.Fatalf("Detect returned %q", got)
		}
		if again := Detect(b); again != got {
			t.Fatalf("Detect is not deterministic: %q then %q", got, again)
		}
	})
}

// FuzzDecode drives every decoder through Decode; the first byte picks the label.
func FuzzDecode(f *testing.F) {
	for i, s := range fuzzSeeds(f) {
		f.Add(byte(i), s)
	}
	labels := []string{"", FormatWAV, FormatMP3, FormatOgg, FormatOpus, FormatPCM16, FormatULaw, FormatALaw, FormatWebM, "bogus"}
	f.Fuzz(func(t *testing.T, pick byte, b []byte) {
		label := labels[int(pick)%len(labels)]
		p, err := Decode(b, label, 16000)
		if err != nil {
			if !sentinel(err) {
				t.Fatalf("Decode(%q): error wraps no sentinel: %v", label, err)
			}
			return
		}
		if p.Rate < MinRate || p.Rate > MaxRate {
			t.Fatalf("Decode(%q): rate %d", label, p.Rate)
		}
	})
}

// FuzzOpusDecoder feeds arbitrary packets to one decoder, as a hostile WebRTC peer could.
func FuzzOpusDecoder(f *testing.F) {
	f.Add([]byte{0xF8, 0xFF, 0xFE})
	f.Add([]byte{0x0B, 0x41, 0x02, 0x03})
	f.Add([]byte{0x4B, 0x83, 0x01, 0x02, 0x03, 0x04})
	f.Add([]byte{0x7B, 0xC1, 0x10})
	d, err := NewOpusDecoder(16000)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		s, err := d.Decode(pkt)
		if err != nil {
			if !sentinel(err) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		if len(s) > 16000*120/1000 {
			t.Fatalf("%d samples from one packet (max 120 ms)", len(s))
		}
	})
}
