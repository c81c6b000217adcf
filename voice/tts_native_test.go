package voice

import (
	"context"
	"errors"
	"testing"
)

func TestTTSNative(t *testing.T) {
	n := NewNativeTTS(NativeTTSConfig{})
	if n.Name() != "native" || n.Tier() != TierNative {
		t.Errorf("Name, Tier = %q, %q; want native, native", n.Name(), n.Tier())
	}
	s, err := n.Synthesize(t.Context(), SpeechRequest{Text: "The device says this."})
	if s != nil || !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Synthesize = %v, %v; want no speech and ErrUnsupported", s, err)
	}
	if want := "native tts: the client device speaks the text itself, the server makes no audio: " + ErrUnsupported.Error(); err.Error() != want {
		t.Errorf("error %q; want %q", err, want)
	}
	if got := NewNativeTTS(NativeTTSConfig{Name: "device"}).Name(); got != "device" {
		t.Errorf("configured Name = %q", got)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := n.Synthesize(ctx, SpeechRequest{Text: "x"}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v; want context.Canceled", err)
	}
}
