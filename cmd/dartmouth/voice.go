package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/session"
	"github.com/dartmouth-gw/dartmouth/session/jobs"
	"github.com/dartmouth-gw/dartmouth/voice"
)

// blobStore is the S3/R2 bucket when one is configured, else the local folder.
func blobStore(cfg *Config) (session.BlobStore, error) {
	if cfg.S3Bucket == "" {
		return session.NewLocalBlobStore(filepath.Join(cfg.DataDir, "blobs"))
	}
	return session.NewS3BlobStore(session.S3BlobConfig{
		Endpoint: cfg.S3Endpoint, Region: cfg.S3Region, Bucket: cfg.S3Bucket,
		AccessKey: cfg.S3AccessKey, SecretKey: cfg.S3SecretKey, Prefix: cfg.S3Prefix,
	})
}

// voiceRouter builds the speech providers that are configured or installed, cheapest tier
// first, with the TTS cache in the blob store. Local engines that are not installed are left
// out with a note, so the router never tries them.
func voiceRouter(cfg *Config, kv session.KV, blobs session.BlobStore, prices *agents.Prices, budget *agents.Budget, logger *slog.Logger) (*voice.Router, error) {
	var tts []voice.TTS
	var stt []voice.STT
	tts = append(tts, voice.NewNativeTTS(voice.NativeTTSConfig{}))
	stt = append(stt, voice.NewNativeSTT(voice.NativeSTTConfig{}))

	if localTTS, err := voice.NewLocalTTS(voice.LocalTTSConfig{Engine: cfg.LocalTTSEngine}); err != nil {
		return nil, fmt.Errorf("local tts: %w", err)
	} else if err := localTTS.Check(); err != nil {
		logger.Info("local TTS tier off", "reason", err)
	} else {
		tts = append(tts, localTTS)
	}
	if localSTT, err := voice.NewLocalSTT(voice.LocalSTTConfig{}); err != nil {
		return nil, fmt.Errorf("local stt: %w", err)
	} else if err := localSTT.Check(); err != nil {
		logger.Info("local STT tier off", "reason", err)
	} else {
		stt = append(stt, localSTT)
	}

	if cfg.F5URL != "" || cfg.F5Addr != "" {
		f5, err := voice.NewF5TTS(voice.F5TTSConfig{BaseURL: cfg.F5URL, Addr: cfg.F5Addr})
		if err != nil {
			return nil, fmt.Errorf("f5-tts: %w", err)
		}
		tts = append(tts, f5)
	}
	if cfg.WhisperURL != "" {
		w, err := voice.NewWhisperSTT(voice.WhisperSTTConfig{BaseURL: cfg.WhisperURL, APIKey: cfg.WhisperAPIKey, Tier: voice.TierSelfHosted})
		if err != nil {
			return nil, fmt.Errorf("whisper: %w", err)
		}
		stt = append(stt, w)
	}
	if cfg.OpenAIAPIKey != "" && openAIHostsAudio(cfg.OpenAIBaseURL) {
		o, err := voice.NewOpenAITTS(voice.OpenAITTSConfig{APIKey: cfg.OpenAIAPIKey, BaseURL: cfg.OpenAIBaseURL})
		if err != nil {
			return nil, fmt.Errorf("openai tts: %w", err)
		}
		tts = append(tts, o)
		w, err := voice.NewWhisperSTT(voice.WhisperSTTConfig{BaseURL: cfg.OpenAIBaseURL, APIKey: cfg.OpenAIAPIKey, Tier: voice.TierCloud, Name: "openai"})
		if err != nil {
			return nil, fmt.Errorf("openai stt: %w", err)
		}
		stt = append(stt, w)
	}
	if cfg.ElevenLabsAPIKey != "" {
		e, err := voice.NewElevenLabsTTS(voice.ElevenLabsTTSConfig{APIKey: cfg.ElevenLabsAPIKey, Voice: cfg.ElevenLabsVoice})
		if err != nil {
			return nil, fmt.Errorf("elevenlabs: %w", err)
		}
		tts = append(tts, e)
	}
	cache, err := voice.NewTTSCache(voice.TTSCacheConfig{Blobs: blobs, KV: kv, Logger: logger})
	if err != nil {
		return nil, err
	}
	rc := voice.RouterConfig{TTS: tts, STT: stt, Cache: cache, Pricer: prices, Logger: logger}
	if budget != nil {
		rc.Budget = budget
	}
	return voice.NewRouter(rc)
}

// openAIHostsAudio: the speech endpoints exist on OpenAI itself; a compatible server set with
// OPENAI_BASE_URL (Ollama, vLLM) usually serves chat only.
func openAIHostsAudio(base string) bool {
	if base == "" {
		return true
	}
	u, err := url.Parse(base)
	return err == nil && u.Hostname() == "api.openai.com"
}

var _ voice.BudgetState = (*agents.Budget)(nil)
var _ voice.Pricer = (*agents.Prices)(nil)

// ttsWarmer speaks a sentence into nothing so the TTS cache holds it, in the format the voice
// pipeline asks for by default (pcm16 at 24 kHz, the provider's default voice).
type ttsWarmer struct{ router *voice.Router }

var _ jobs.Speaker = ttsWarmer{}

func (w ttsWarmer) Warm(ctx context.Context, text string) error {
	_, err := w.router.SpeakTo(ctx, voice.SpeakRequest{Text: text, Format: voice.FormatPCM16, SampleRate: 24000}, io.Discard)
	return err
}

// sentenceWarmer warms the TTS cache with the most frequent reply sentences; nil without voice.
func sentenceWarmer(router *voice.Router, store *session.SQLStore, logger *slog.Logger) ([]jobs.Warmer, error) {
	if router == nil {
		return nil, nil
	}
	w, err := jobs.NewSentenceWarmer(jobs.SentenceWarmerConfig{Replies: store, Speaker: ttsWarmer{router}, Split: voice.SplitSentences, Logger: logger})
	if err != nil {
		return nil, err
	}
	return []jobs.Warmer{w}, nil
}
