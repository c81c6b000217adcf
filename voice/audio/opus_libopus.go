//go:build libopus

package audio

import (
	"fmt"

	hopus "gopkg.in/hraban/opus.v2"
)

// OpusEncoder encodes mono PCM16 into Opus packets with libopus (cgo). It is built only with
// the `libopus` tag, which needs Debian's libopus-dev, plus either libopusfile-dev or the
// extra tag `nolibopusfile` (the binding's Ogg file reader, unused here, otherwise links
// libopusfile). One encoder per stream, used from one goroutine at a time.
type OpusEncoder struct {
	enc   *hopus.Encoder
	cfg   OpusEncoderConfig
	frame int
	buf   []byte
}

// OpusEncoderAvailable reports whether this build can encode Opus.
const OpusEncoderAvailable = true

// NewOpusEncoderWithConfig returns an encoder configured by cfg (see OpusEncoderConfig).
func NewOpusEncoderWithConfig(cfg OpusEncoderConfig) (*OpusEncoder, error) {
	cfg, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	app := map[string]hopus.Application{
		OpusApplicationLowDelay: hopus.AppRestrictedLowdelay,
		OpusApplicationVoIP:     hopus.AppVoIP,
		OpusApplicationAudio:    hopus.AppAudio,
	}[cfg.Application]
	enc, err := hopus.NewEncoder(cfg.Rate, 1, app)
	if err != nil {
		return nil, fmt.Errorf("opus encoder: libopus: %w", err)
	}
	if err := enc.SetBitrate(cfg.Bitrate); err != nil {
		return nil, fmt.Errorf("opus encoder: set bitrate %d: %w", cfg.Bitrate, err)
	}
	if cfg.Complexity > 0 {
		if err := enc.SetComplexity(cfg.Complexity); err != nil {
			return nil, fmt.Errorf("opus encoder: set complexity %d: %w", cfg.Complexity, err)
		}
	}
	// 1275 bytes is the largest single Opus frame (RFC 6716 section 3.4).
	return &OpusEncoder{enc: enc, cfg: cfg, frame: cfg.Rate / 50, buf: make([]byte, 1275)}, nil
}

// FrameSamples is the number of samples Encode takes: 20 ms at the encoder's rate.
func (e *OpusEncoder) FrameSamples() int { return e.frame }

// Encode encodes exactly one 20 ms frame (FrameSamples samples) and returns the packet, in a
// new slice.
func (e *OpusEncoder) Encode(pcm []int16) ([]byte, error) {
	if len(pcm) != e.frame {
		return nil, fmt.Errorf("opus encoder: got %d samples, want %d (20 ms at %d Hz)", len(pcm), e.frame, e.cfg.Rate)
	}
	n, err := e.enc.Encode(pcm, e.buf)
	if err != nil {
		return nil, fmt.Errorf("opus encoder: libopus: %w", err)
	}
	return append([]byte(nil), e.buf[:n]...), nil
}
