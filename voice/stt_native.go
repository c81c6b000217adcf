package voice

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dartmouth-gw/dartmouth/voice/audio"
)

// ErrNoTranscript is returned by the native tier when the client sent no transcript of its own:
// the device did not (or could not) transcribe, so the router should try the next tier with the
// audio.
var ErrNoTranscript = errors.New("voice: the client sent no transcript")

// NativeSTTConfig configures the native passthrough.
type NativeSTTConfig struct {
	// Name reported as the provider. Default "native".
	Name string
}

// NativeSTT is the native tier: the device (a phone's recognizer, the browser's Web Speech API)
// has already transcribed the user, and the gateway only passes its transcript on, for $0.
type NativeSTT struct {
	cfg NativeSTTConfig
}

var _ STT = (*NativeSTT)(nil)

// NewNativeSTT builds the passthrough.
func NewNativeSTT(cfg NativeSTTConfig) *NativeSTT {
	if cfg.Name == "" {
		cfg.Name = "native"
	}
	return &NativeSTT{cfg: cfg}
}

// Name implements STT.
func (n *NativeSTT) Name() string { return n.cfg.Name }

// Tier implements STT.
func (n *NativeSTT) Tier() Tier { return TierNative }

// Transcribe implements STT: it returns req.Transcript, trimmed. Audio, when the client sent it
// too, is only measured so the turn's analytics have a duration; audio the gateway cannot decode
// is no reason to drop a transcript the client already made, so it counts as 0.
func (n *NativeSTT) Transcribe(ctx context.Context, req TranscribeRequest) (*Transcript, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s stt: %w", n.cfg.Name, err)
	}
	text := strings.TrimSpace(req.Transcript)
	if text == "" {
		return nil, fmt.Errorf("%s stt: %w", n.cfg.Name, ErrNoTranscript)
	}
	t := &Transcript{Text: text, Language: req.Language, Provider: n.cfg.Name, Model: "device"}
	if len(req.Audio) > 0 {
		if pcm, err := audio.Decode(req.Audio, req.Format, req.SampleRate); err == nil {
			t.Duration = pcm.Duration()
		}
	}
	return t, nil
}
