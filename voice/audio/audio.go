// Package audio holds the gateway's audio plumbing: the PCM type every other voice package
// exchanges, WAV/MP3/Ogg Opus decoding, WAV and G.711 encoding, a windowed-sinc resampler,
// format detection by magic bytes, and a per-stream Opus packet decoder (pure Go) and encoder
// (libopus, only when built with the `libopus` tag).
//
// Everything here works on whole buffers or on one stream per value and starts no goroutines.
// Decoders treat their input as untrusted: they never panic, refuse input larger than
// MaxDecodeBytes and output longer than MaxDecodeDuration, and return errors that wrap one of
// the sentinel errors below so callers can map them to a client error with errors.Is.
package audio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// PCM is mono signed 16-bit audio.
type PCM struct {
	Samples []int16
	// Rate is the sample rate in Hz.
	Rate int
}

// Duration is how long the samples play at Rate; 0 when Rate is not positive.
func (p PCM) Duration() time.Duration {
	if p.Rate <= 0 {
		return 0
	}
	return time.Duration(int64(len(p.Samples)) * int64(time.Second) / int64(p.Rate))
}

// Sentinel errors. Every error this package returns for bad input wraps one of them (and says
// what exactly was wrong), so callers test with errors.Is and show the message.
var (
	// ErrTruncated: the bytes end before the format says they should (a cut-off upload, a
	// header that promises more data than is present, an odd number of PCM16 bytes).
	ErrTruncated = errors.New("audio: truncated input")
	// ErrUnsupportedFormat: the bytes are not in a format or codec variant this package can
	// decode or encode (unknown magic, a non-PCM WAV codec, MP3 encoding, ...).
	ErrUnsupportedFormat = errors.New("audio: unsupported format")
	// ErrMislabelled: the bytes are plainly another known format than the one the caller
	// named (an MP3 sent as "wav"); the message names the format detected.
	ErrMislabelled = errors.New("audio: format does not match its label")
	// ErrEmpty: no bytes at all.
	ErrEmpty = errors.New("audio: empty input")
	// ErrTooLarge: the input is over MaxDecodeBytes or would decode to more than
	// MaxDecodeDuration of audio.
	ErrTooLarge = errors.New("audio: input too large")
)

const (
	// MaxDecodeBytes is the largest encoded input the decoders accept: 25 MiB, the same order
	// as the speech APIs' upload limit (OpenAI's 25 MB). Larger input is refused with
	// ErrTooLarge before anything is allocated for it.
	MaxDecodeBytes = 25 << 20

	// MaxDecodeDuration caps the decoded length. Compressed formats expand (25 MiB of 32 kbps
	// MP3 is almost two hours, ~600 MB of PCM at 48 kHz), so the cap bounds memory: 30 minutes
	// of mono PCM16 is at most ~173 MB at 48 kHz and ~29 MB at 8 kHz. Longer audio is refused
	// with ErrTooLarge, before decoding when the header tells the length.
	MaxDecodeDuration = 30 * time.Minute
)

// checkInput applies the checks every decoder starts with.
func checkInput(what string, b []byte) error {
	if len(b) == 0 {
		return fmt.Errorf("%w: %s: no bytes", ErrEmpty, what)
	}
	if len(b) > MaxDecodeBytes {
		return fmt.Errorf("%w: %s: %d bytes is over the %d-byte limit (MaxDecodeBytes)",
			ErrTooLarge, what, len(b), MaxDecodeBytes)
	}
	return nil
}

// checkDuration refuses audio of frames samples at rate that would exceed MaxDecodeDuration.
func checkDuration(what string, frames int64, rate int) error {
	if rate <= 0 {
		return nil
	}
	limit := int64(MaxDecodeDuration/time.Second) * int64(rate)
	if frames > limit {
		return fmt.Errorf("%w: %s: %s of audio is over the %s limit (MaxDecodeDuration)",
			ErrTooLarge, what, (time.Duration(frames/int64(rate)) * time.Second).String(), MaxDecodeDuration)
	}
	return nil
}

// Float32ToPCM16 converts float samples in [-1, 1] to PCM16, scaling by 32768 and rounding.
// Values outside the range are clamped (1.0 becomes 32767), and NaN becomes 0, so a
// provider's slightly hot float output never wraps around.
func Float32ToPCM16(f []float32) []int16 {
	out := make([]int16, len(f))
	for i, v := range f {
		out[i] = floatToPCM16(float64(v))
	}
	return out
}

// floatToPCM16 is the one float-to-int16 rule of the package: x*32768, rounded, clamped.
// It is exact for values that came from an int16 divided by 32768.
func floatToPCM16(x float64) int16 {
	if x != x { // NaN
		return 0
	}
	v := math.Round(x * 32768)
	if v > math.MaxInt16 {
		return math.MaxInt16
	}
	if v < math.MinInt16 {
		return math.MinInt16
	}
	return int16(v)
}

// PCM16ToBytes encodes samples as little-endian 16-bit, the "pcm16" wire format.
func PCM16ToBytes(s []int16) []byte {
	out := make([]byte, 2*len(s))
	for i, v := range s {
		binary.LittleEndian.PutUint16(out[2*i:], uint16(v))
	}
	return out
}

// BytesToPCM16 decodes little-endian 16-bit samples. An odd length means a sample was cut in
// half, which is an error wrapping ErrTruncated rather than a silently dropped byte.
func BytesToPCM16(b []byte) ([]int16, error) {
	if len(b)%2 != 0 {
		return nil, fmt.Errorf("%w: pcm16: %d bytes is not a whole number of 2-byte samples", ErrTruncated, len(b))
	}
	out := make([]int16, len(b)/2)
	for i := range out {
		out[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return out, nil
}
