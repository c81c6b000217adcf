package audio

import (
	"bytes"
	"fmt"
	"strings"
)

// Format names, the same strings the voice package and the wire protocol use.
const (
	FormatWAV   = "wav"       // RIFF/WAVE
	FormatMP3   = "mp3"       // MPEG-1/2/2.5 Layer III, with or without an ID3v2 tag
	FormatPCM16 = "pcm16"     // raw little-endian signed 16-bit mono; needs a rate
	FormatULaw  = "g711_ulaw" // raw G.711 µ-law, one byte per sample; 8 kHz unless told
	FormatALaw  = "g711_alaw" // raw G.711 A-law, one byte per sample; 8 kHz unless told
	FormatOpus  = "opus"      // Ogg Opus when given as a file (see DecodeOggOpus)
	FormatOgg   = "ogg"       // Ogg container; Decode reads Ogg Opus
	FormatWebM  = "webm"      // Matroska/WebM (EBML); detected, not decoded
	FormatFLAC  = "flac"      // detected, not decoded
)

// Detect names the container or codec of b from its magic bytes: "wav", "mp3" (an ID3v2 tag,
// or a Layer III frame header, confirmed by the next frame's header when b holds it), "ogg",
// "webm" (any EBML file, so Matroska too), "flac", or "" when it cannot tell. Raw formats
// (pcm16, G.711) have no magic and are never detected.
func Detect(b []byte) string {
	switch {
	case len(b) >= 4 && string(b[:4]) == "RIFF":
		if len(b) < 12 || string(b[8:12]) == "WAVE" {
			return FormatWAV // a cut-off RIFF header is most likely a WAV
		}
		return ""
	case bytes.HasPrefix(b, []byte("ID3")):
		return FormatMP3
	case bytes.HasPrefix(b, []byte("OggS")):
		return FormatOgg
	case bytes.HasPrefix(b, []byte{0x1A, 0x45, 0xDF, 0xA3}):
		return FormatWebM
	case bytes.HasPrefix(b, []byte("fLaC")):
		return FormatFLAC
	}
	if n, h, ok := mp3FrameLen(b); ok {
		if len(b) < n+4 {
			return FormatMP3 // too short to hold the next header; one good header will do
		}
		if n2, h2, ok := mp3FrameLen(b[n:]); ok && n2 > 0 && h2.sameStream(h) {
			return FormatMP3
		}
	}
	return ""
}

// strongMagic is Detect without the MP3 frame-sync guess: raw PCM can start with bytes that
// look like a frame header (the sample -1025 is FF FB), so raw formats are only called
// mislabelled when a real container signature is present.
func strongMagic(b []byte) string {
	if f := Detect(b); f != FormatMP3 || bytes.HasPrefix(b, []byte("ID3")) {
		if f == FormatWAV && len(b) < 12 {
			return ""
		}
		return f
	}
	return ""
}

// mp3Header is the part of an MPEG audio frame header that stays constant within a stream.
type mp3Header struct {
	version    byte // 3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5
	sampleRate int
}

func (h mp3Header) sameStream(o mp3Header) bool { return h == o }

// samplesPerFrame is 1152 for MPEG-1 Layer III and 576 for MPEG-2 and 2.5.
func (h mp3Header) samplesPerFrame() int {
	if h.version == 3 {
		return 1152
	}
	return 576
}

var (
	mp3BitratesV1 = [16]int{0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0}
	mp3BitratesV2 = [16]int{0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0}
	mp3Rates      = map[byte][3]int{3: {44100, 48000, 32000}, 2: {22050, 24000, 16000}, 0: {11025, 12000, 8000}}
)

// mp3FrameLen parses a Layer III frame header at the start of b and returns the frame's
// length in bytes. Free-format frames (bitrate index 0) are not accepted.
func mp3FrameLen(b []byte) (int, mp3Header, bool) {
	if len(b) < 4 || b[0] != 0xFF || b[1]&0xE0 != 0xE0 {
		return 0, mp3Header{}, false
	}
	version := (b[1] >> 3) & 3
	layer := (b[1] >> 1) & 3
	brIdx := b[2] >> 4
	srIdx := (b[2] >> 2) & 3
	pad := int((b[2] >> 1) & 1)
	if version == 1 || layer != 1 || brIdx == 0 || brIdx == 15 || srIdx == 3 {
		return 0, mp3Header{}, false
	}
	h := mp3Header{version: version, sampleRate: mp3Rates[version][srIdx]}
	if version == 3 {
		return 144000*mp3BitratesV1[brIdx]/h.sampleRate + pad, h, true
	}
	return 72000*mp3BitratesV2[brIdx]/h.sampleRate + pad, h, true
}

// normaliseFormat maps the accepted aliases to the canonical names.
func normaliseFormat(format string) string {
	f := strings.ToLower(strings.TrimSpace(format))
	switch f {
	case "pcm", "s16le", "pcm_s16le":
		return FormatPCM16
	case "ulaw", "mulaw", "pcmu", "g711u":
		return FormatULaw
	case "alaw", "pcma", "g711a":
		return FormatALaw
	case "wave":
		return FormatWAV
	case "mpeg", "mpga":
		return FormatMP3
	}
	return f
}

// Decode decodes b, labelled format, to mono PCM16. Formats: "wav", "mp3", "ogg"/"opus" (Ogg
// Opus files), "pcm16", "g711_ulaw", "g711_alaw" (aliases: "pcm", "ulaw", "mulaw", "alaw", ...);
// "" detects the format from the magic bytes. rate is the sample rate of the raw formats: it
// is required for pcm16 and defaults to 8000 for G.711; formats that carry their rate ignore
// it.
//
// The bytes must agree with the label: an MP3 labelled wav, or a WAV labelled pcm16, fails
// with ErrMislabelled naming what the bytes are, instead of being played as noise.
func Decode(b []byte, format string, rate int) (PCM, error) {
	if err := checkInput("decode", b); err != nil {
		return PCM{}, err
	}
	f := normaliseFormat(format)
	if f == "" {
		if f = Detect(b); f == "" {
			return PCM{}, fmt.Errorf("%w: cannot tell the format from the first bytes (% x); name it",
				ErrUnsupportedFormat, b[:min(len(b), 8)])
		}
	}
	switch f {
	case FormatWAV:
		return DecodeWAV(b)
	case FormatMP3:
		return DecodeMP3(b)
	case FormatOgg, FormatOpus:
		return DecodeOggOpus(b)
	case FormatWebM, FormatFLAC:
		if got := strongMagic(b); got != "" && got != f {
			return PCM{}, fmt.Errorf("%w: labelled %s but the bytes are %s", ErrMislabelled, f, got)
		}
		return PCM{}, fmt.Errorf("%w: %s decoding is not supported; send wav, mp3, ogg/opus, pcm16 or G.711",
			ErrUnsupportedFormat, f)
	case FormatPCM16, FormatULaw, FormatALaw:
		return decodeRaw(b, f, rate)
	}
	return PCM{}, fmt.Errorf("%w: unknown format %q", ErrUnsupportedFormat, format)
}

func decodeRaw(b []byte, f string, rate int) (PCM, error) {
	if got := strongMagic(b); got != "" {
		return PCM{}, fmt.Errorf("%w: labelled %s but the bytes are %s", ErrMislabelled, f, got)
	}
	if rate == 0 && f != FormatPCM16 {
		rate = 8000
	}
	if rate < MinRate || rate > MaxRate {
		return PCM{}, fmt.Errorf("%w: %s needs a sample rate within %d..%d Hz, got %d",
			ErrUnsupportedFormat, f, MinRate, MaxRate, rate)
	}
	frames := len(b)
	if f == FormatPCM16 {
		frames /= 2
	}
	if err := checkDuration(f, int64(frames), rate); err != nil {
		return PCM{}, err
	}
	switch f {
	case FormatULaw:
		return PCM{Samples: DecodeULaw(b), Rate: rate}, nil
	case FormatALaw:
		return PCM{Samples: DecodeALaw(b), Rate: rate}, nil
	}
	s, err := BytesToPCM16(b)
	if err != nil {
		return PCM{}, err
	}
	return PCM{Samples: s, Rate: rate}, nil
}

// Encode writes p in format: "wav" (PCM16 mono at p.Rate), "pcm16" (raw, at p.Rate),
// "g711_ulaw" and "g711_alaw" (resampled to 8 kHz first, as G.711 always is). There is no MP3
// encoder (pure Go has none) and Opus is packetised by OpusEncoder, so "mp3" and "opus" fail
// with ErrUnsupportedFormat, as does any other name.
func Encode(p PCM, format string) ([]byte, error) {
	f := normaliseFormat(format)
	switch f {
	case FormatWAV, FormatPCM16, FormatULaw, FormatALaw:
	case FormatMP3:
		return nil, fmt.Errorf("%w: no MP3 encoder is built in; encode to wav, pcm16 or G.711", ErrUnsupportedFormat)
	case FormatOpus, FormatOgg:
		return nil, fmt.Errorf("%w: Opus is sent as packets: use OpusEncoder (Ogg Opus files are not written)", ErrUnsupportedFormat)
	default:
		return nil, fmt.Errorf("%w: cannot encode to %q", ErrUnsupportedFormat, format)
	}
	if p.Rate < MinRate || p.Rate > MaxRate {
		return nil, fmt.Errorf("%w: encode %s: sample rate %d Hz is outside %d..%d Hz", ErrUnsupportedFormat, f, p.Rate, MinRate, MaxRate)
	}
	switch f {
	case FormatWAV:
		return EncodeWAV(p), nil
	case FormatPCM16:
		return PCM16ToBytes(p.Samples), nil
	case FormatULaw:
		return EncodeULaw(Resample(p, 8000).Samples), nil
	default:
		return EncodeALaw(Resample(p, 8000).Samples), nil
	}
}
