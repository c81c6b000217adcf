//go:build !libopus

package audio

import "fmt"

// OpusEncoder encodes mono PCM16 into Opus packets. This build has no encoder: Opus encoding
// needs libopus through cgo, which is compiled in only with the `libopus` build tag (and
// Debian's libopus-dev). NewOpusEncoder and NewOpusEncoderWithConfig say so with an error
// wrapping ErrUnsupportedFormat; callers fall back to G.711 or PCM.
type OpusEncoder struct{}

// OpusEncoderAvailable reports whether this build can encode Opus.
const OpusEncoderAvailable = false

var errNoOpusEncoder = fmt.Errorf("%w: opus encoding needs libopus: rebuild with -tags libopus (Debian libopus-dev)", ErrUnsupportedFormat)

// NewOpusEncoderWithConfig always fails in this build (no `libopus` tag).
func NewOpusEncoderWithConfig(cfg OpusEncoderConfig) (*OpusEncoder, error) {
	if _, err := cfg.validate(); err != nil {
		return nil, err
	}
	return nil, errNoOpusEncoder
}

// FrameSamples is 0 in this build.
func (e *OpusEncoder) FrameSamples() int { return 0 }

// Encode always fails in this build (no `libopus` tag).
func (e *OpusEncoder) Encode(pcm []int16) ([]byte, error) { return nil, errNoOpusEncoder }
