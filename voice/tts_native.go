package voice

import (
	"context"
	"fmt"
)

// NativeTTSConfig configures the native passthrough.
type NativeTTSConfig struct {
	// Name reported as the provider. Default "native".
	Name string
}

// NativeTTS is the native tier of speech synthesis: the client device speaks the reply text
// itself (a phone's speech engine, the browser's speechSynthesis), for $0. The server produces
// no audio, so the router sends such sessions text and never calls Synthesize; the type exists
// so the tier can be listed, priced and chosen like the others.
type NativeTTS struct {
	cfg NativeTTSConfig
}

var _ TTS = (*NativeTTS)(nil)

// NewNativeTTS builds the passthrough.
func NewNativeTTS(cfg NativeTTSConfig) *NativeTTS {
	if cfg.Name == "" {
		cfg.Name = "native"
	}
	return &NativeTTS{cfg: cfg}
}

// Name implements TTS.
func (n *NativeTTS) Name() string { return n.cfg.Name }

// Tier implements TTS.
func (n *NativeTTS) Tier() Tier { return TierNative }

// Synthesize implements TTS by always failing with an error that matches ErrUnsupported: the
// device speaks, so there is no server audio to return. A router that reaches this is asking
// the wrong tier for audio (a client that cannot speak for itself) and should move on to the
// next tier, which is what ErrUnsupported tells it.
func (n *NativeTTS) Synthesize(ctx context.Context, req SpeechRequest) (*Speech, error) {
	if err := providerContextErr(ctx, n.cfg.Name, "tts"); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%s tts: the client device speaks the text itself, the server makes no audio: %w", n.cfg.Name, ErrUnsupported)
}
