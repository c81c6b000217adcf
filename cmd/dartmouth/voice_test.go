package main

import (
	"io"
	"log/slog"
	"testing"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/session"
	"github.com/dartmouth-gw/dartmouth/voice"
)

// TestTTSWarmerFillsTheCacheThePipelineReads: a sentence warmed by the background job is a
// cache hit when the voice pipeline later speaks it in its default format.
func TestTTSWarmerFillsTheCacheThePipelineReads(t *testing.T) {
	blobs, err := session.NewLocalBlobStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := &Config{}
	router, err := voiceRouter(cfg, session.NewMemoryKV(nil), blobs, agents.DefaultPrices(), nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := (ttsWarmer{router}).Warm(t.Context(), "Glad to help."); err != nil {
		t.Fatalf("warm (make test installs the local TTS): %v", err)
	}
	res, err := router.SpeakTo(t.Context(), voice.SpeakRequest{Text: "Glad to help.", Format: voice.FormatPCM16, SampleRate: 24000}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Cached {
		t.Errorf("the warmed sentence was synthesized again by %s", res.Provider)
	}
}
