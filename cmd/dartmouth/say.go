package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/session"
	"github.com/dartmouth-gw/dartmouth/voice"
)

// formatsByExtension maps an output file's extension to the audio format written.
var formatsByExtension = map[string]string{
	".wav": voice.FormatWAV, ".mp3": voice.FormatMP3, ".pcm": voice.FormatPCM16, ".raw": voice.FormatPCM16,
	".ulaw": voice.FormatULaw, ".alaw": voice.FormatALaw, ".opus": voice.FormatOpus, ".ogg": voice.FormatOpus,
}

// say speaks text through the same router the gateway uses (cache included) into a file.
func say(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var out, tier, voiceName, plan string
	cfg, rest, err := parseConfigArgs("dartmouth say", args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&out, "o", "say.wav", "output file; its extension picks the format")
		fs.StringVar(&tier, "tier", "auto", "voice tier: auto, local, self-hosted, cloud or premium")
		fs.StringVar(&voiceName, "voice-name", "", "provider voice; empty is the provider's default")
		fs.StringVar(&plan, "plan", "premium", "plan the request is made under (the premium tier needs premium)")
	})
	if err != nil {
		return err
	}
	text := strings.TrimSpace(strings.Join(rest, " "))
	if text == "" {
		return errors.New("say: nothing to say (dartmouth say [flags] TEXT)")
	}
	format, ok := formatsByExtension[strings.ToLower(filepath.Ext(out))]
	if !ok {
		return fmt.Errorf("say: unknown extension %q (use .wav, .mp3, .pcm, .ulaw, .alaw or .opus)", filepath.Ext(out))
	}
	logger := newLogger(cfg, stderr)
	blobs, err := blobStore(cfg)
	if err != nil {
		return err
	}
	prices, err := agents.LoadPrices(cfg.PricesFile)
	if err != nil {
		return err
	}
	router, err := voiceRouter(cfg, session.NewMemoryKV(nil), blobs, prices, nil, logger)
	if err != nil {
		return err
	}
	res, err := router.Speak(ctx, voice.SpeakRequest{Text: text, Format: format, Tier: tier, Voice: voiceName, Plan: plan})
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, res.Audio, 0o644); err != nil {
		return fmt.Errorf("say: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s: %d bytes of %s from %s (%s tier), cost $%.6f\n", out, len(res.Audio), res.Format, res.Provider, res.Tier, res.Cost)
	return nil
}
