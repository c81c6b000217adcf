package audio

import (
	"errors"
	"slices"
	"testing"
)

// MP3 fuzz targets. DecodeMP3 turns a panic of go-mp3 into an error, and that recover would
// also hide a panic of our own header parsing behind it; FuzzMP3Headers therefore calls the
// header parsers directly, where a crash is a crash. The seeds are real LAME frames from
// testdata (see its README), cut where the parsers look: the ID3v2 tag, the Xing/Info frame
// and its LAME tag, mid-stream frames, and the padded 22.05 kHz frames go-mp3 mis-sizes.

func mp3Seeds(f *testing.F) [][]byte {
	lame24 := readTestdata(f, "sine440_24000_mono.mp3")
	id3 := readTestdata(f, "sine1k_44100_stereo.mp3")
	notag := readTestdata(f, "sine440_24000_mono_notag.mp3")
	bug := readTestdata(f, "sine440_22050_mono_32k_gomp3bug.mp3")
	tagEnd := id3v2Size(id3)
	return [][]byte{
		lame24[:1536],                              // Info frame with LAME tag, then audio frames
		id3[:min(len(id3), tagEnd+1600)],           // ID3v2, Info frame, MPEG-1 stereo frames
		id3[tagEnd : tagEnd+1200],                  // the same without the tag
		notag[:1200],                               // MPEG-2 frames too small for an Info frame
		lame24[len(lame24)/2 : len(lame24)/2+1000], // mid-stream: no frame sync at byte 0
		bug,                                  // padded 22.05 kHz MPEG-2: refused
		lame24[:200],                         // one frame and a cut one
		id3[:tagEnd],                         // a tag and nothing else
		{0xFF, 0xF3, 0x00, 0xC4},             // free-format header (bitrate index 0)
		{0xFF, 0xE3, 0x18, 0xC4, 0, 0, 0, 0}, // MPEG-2.5
		{0xFF, 0xFA, 0x92, 0x64},             // MPEG-1 with CRC
		{'I', 'D', '3', 4, 0, 0x10, 0x7F, 0x7F, 0x7F, 0x7F}, // largest tag size, with footer
	}
}

// FuzzMP3Headers: frame headers, the ID3v2 size, the Xing/Info and LAME tags and the gapless
// trim stay within what the format allows, whatever the bytes.
func FuzzMP3Headers(f *testing.F) {
	for _, s := range mp3Seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if n, h, ok := mp3FrameLen(b); ok {
			// From MPEG-2 at 8 kbps and 24 kHz (24 bytes) to MPEG-1 at 320 kbps and 32 kHz (1441).
			if n < 24 || n > 1441 || h.sampleRate < 8000 || h.sampleRate > 48000 {
				t.Fatalf("frame of %d bytes at %d Hz from header % x", n, h.sampleRate, b[:4])
			}
		}
		if n := id3v2Size(b); n != 0 && (n < 10 || n > 10+(1<<28)+10) {
			t.Fatalf("ID3v2 size %d", n)
		}
		if err := checkGoMP3FrameSizes(b); err != nil && !errors.Is(err, ErrUnsupportedFormat) {
			t.Fatalf("frame size check: %v", err)
		}
		g := parseGapless(b)
		if g.infoFrame && g.samplesPerFrame != 576 && g.samplesPerFrame != 1152 {
			t.Fatalf("info frame with %d samples per frame", g.samplesPerFrame)
		}
		if g.delay < 0 || g.delay > 4095 || g.padding < 0 || g.padding > 4095 || g.frames < 0 {
			t.Fatalf("LAME tag read as delay %d, padding %d, frames %d", g.delay, g.padding, g.frames)
		}
		// Whatever the tag says, trimming keeps one contiguous run of the decoded samples.
		decoded := make([]int16, len(b)*97%20000)
		for i := range decoded {
			decoded[i] = int16(i)
		}
		out := trimGapless(decoded, g)
		if len(out) > 0 {
			start := int(out[0])
			if start+len(out) > len(decoded) || !slices.Equal(out, decoded[start:start+len(out)]) {
				t.Fatalf("trim is not a run of the input: %d samples from %d", len(out), len(decoded))
			}
		}
	})
}

// FuzzDecodeMP3: DecodeMP3 decodes or refuses with a sentinel error, and the same bytes in a
// WAV (format tag 0x55) decode to the same samples or are refused as well.
func FuzzDecodeMP3(f *testing.F) {
	for _, s := range mp3Seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodeMP3(b)
		if err != nil && !sentinel(err) {
			t.Fatalf("error wraps no sentinel: %v", err)
		}
		if err == nil {
			if !slices.Contains([]int{8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000}, p.Rate) {
				t.Fatalf("decoded at %d Hz", p.Rate)
			}
			if int64(len(p.Samples)) > int64(MaxDecodeDuration.Seconds())*int64(p.Rate) {
				t.Fatalf("%d samples at %d Hz is over MaxDecodeDuration", len(p.Samples), p.Rate)
			}
		}
		w, werr := DecodeWAV(makeWAV(wavSpec{tag: wavFormatMP3, channels: 1, rate: 24000}, b))
		if (err == nil) != (werr == nil) {
			t.Fatalf("DecodeMP3: %v; in a WAV: %v", err, werr)
		}
		if err == nil && (w.Rate != p.Rate || !slices.Equal(w.Samples, p.Samples)) {
			t.Fatalf("in a WAV: %d samples at %d Hz, alone: %d at %d", len(w.Samples), w.Rate, len(p.Samples), p.Rate)
		}
	})
}
