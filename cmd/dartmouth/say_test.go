package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/session"
	"github.com/dartmouth-gw/dartmouth/voice"
	"github.com/dartmouth-gw/dartmouth/voice/audio"
)

// The local tier end to end: `dartmouth say` speaks a phrase with the local engine into a WAV,
// and the local recognizer, through the same router, hears the same words.
func TestSayAndHearLocally(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "phrase.wav")
	const phrase = "remind me to call mom at five pm"
	var stdout bytes.Buffer
	env := func(k string) string {
		return map[string]string{"DARTMOUTH_DATA_DIR": dir, "DARTMOUTH_LOG_LEVEL": "error"}[k]
	}
	if err := run(context.Background(), []string{"say", "-o", out, "--tier", "local", phrase}, env, &stdout, io.Discard); err != nil {
		t.Fatalf("say: %v (are flite and pocketsphinx installed? make test-deps installs them)", err)
	}
	if !strings.Contains(stdout.String(), "local tier") {
		t.Fatalf("say output: %s", stdout.String())
	}
	wav, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	pcm, err := audio.DecodeWAV(wav)
	if err != nil || pcm.Duration().Seconds() < 1 {
		t.Fatalf("not a spoken WAV: %v %v", pcm.Duration(), err)
	}
	cfg, err := parseConfig("t", []string{"--data-dir", dir}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	blobs, _ := blobStore(cfg)
	router, err := voiceRouter(cfg, session.NewMemoryKV(nil), blobs, agents.DefaultPrices(), nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	heard, err := router.Transcribe(context.Background(), voice.TranscribeReq{Audio: wav, Format: voice.FormatWAV, Tier: "local"})
	if err != nil {
		t.Fatal(err)
	}
	if heard.Text != phrase || heard.Tier != voice.TierLocal || heard.Cost != 0 {
		t.Fatalf("heard %q via %s (%s), want %q", heard.Text, heard.Provider, heard.Tier, phrase)
	}
}

func TestSayRefusesBadInput(t *testing.T) {
	env := func(k string) string { return map[string]string{"DARTMOUTH_DATA_DIR": t.TempDir()}[k] }
	for name, args := range map[string][]string{
		"no text":       {"say", "-o", filepath.Join(t.TempDir(), "x.wav")},
		"bad extension": {"say", "-o", filepath.Join(t.TempDir(), "x.docx"), "hello"},
		"bad tier":      {"say", "-o", filepath.Join(t.TempDir(), "x.wav"), "--tier", "gold", "hello"},
	} {
		if err := run(context.Background(), args, env, io.Discard, io.Discard); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}
