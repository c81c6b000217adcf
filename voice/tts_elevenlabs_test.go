package voice

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func ttsNewElevenLabs(t *testing.T, cfg ElevenLabsTTSConfig) *ElevenLabsTTS {
	t.Helper()
	e, err := NewElevenLabsTTS(cfg)
	if err != nil {
		t.Fatalf("NewElevenLabsTTS: %v", err)
	}
	return e
}

func TestTTSElevenLabsConfig(t *testing.T) {
	if _, err := NewElevenLabsTTS(ElevenLabsTTSConfig{}); err == nil || !strings.Contains(err.Error(), "API key") {
		t.Errorf("no API key: err = %v; want an error naming the API key", err)
	}
	if _, err := NewElevenLabsTTS(ElevenLabsTTSConfig{APIKey: "k", BaseURL: "ftp://x"}); err == nil {
		t.Error("an ftp base URL was accepted")
	}
	e := ttsNewElevenLabs(t, ElevenLabsTTSConfig{APIKey: "k"})
	if e.Name() != "elevenlabs" || e.Tier() != TierPremium {
		t.Errorf("Name, Tier = %q, %q", e.Name(), e.Tier())
	}
	c := e.cfg
	if c.BaseURL != "https://api.elevenlabs.io" || c.Model != "eleven_flash_v2_5" || c.Voice == "" ||
		*c.VoiceSettings != (ElevenLabsVoiceSettings{Stability: 0.5, SimilarityBoost: 0.75}) ||
		c.MaxSampleRate != 24000 || c.MaxChars != 5000 {
		t.Errorf("defaults = %+v", c)
	}
}

// TestTTSElevenLabsStream checks the exact request and that audio arrives chunk by chunk: the
// server writes its second chunk only after the test has read the first.
func TestTTSElevenLabsStream(t *testing.T) {
	first, second := ttsChunk(5, 2048), ttsChunk(7, 1500)
	gate := make(chan struct{})
	srv, reqs := ttsAudioServer(t, "audio/mpeg", [][]byte{first, second}, gate)
	e := ttsNewElevenLabs(t, ElevenLabsTTSConfig{BaseURL: srv.URL + "/", APIKey: "xi-secret", HTTPClient: srv.Client()})

	s, err := e.Synthesize(t.Context(), SpeechRequest{Text: "Premium words.", Voice: "voice123"})
	if err != nil {
		t.Fatalf("Synthesize: %v", err)
	}
	defer s.Audio.Close()
	r := ttsNextRequest(t, reqs)
	if r.Method != http.MethodPost || r.Path != "/v1/text-to-speech/voice123/stream" || r.RawQuery != "output_format=mp3_44100_128" {
		t.Errorf("request %s %s?%s", r.Method, r.Path, r.RawQuery)
	}
	if r.Header.Get("xi-api-key") != "xi-secret" || r.Header.Get("Authorization") != "" {
		t.Errorf("xi-api-key = %q, Authorization = %q", r.Header.Get("xi-api-key"), r.Header.Get("Authorization"))
	}
	if got := r.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	body := r.JSON(t)
	if body["text"] != "Premium words." || body["model_id"] != "eleven_flash_v2_5" || len(body) != 3 {
		t.Errorf("body = %v", body)
	}
	vs, _ := body["voice_settings"].(map[string]any)
	if vs["stability"] != 0.5 || vs["similarity_boost"] != 0.75 || len(vs) != 2 {
		t.Errorf("voice_settings = %v; want stability 0.5, similarity_boost 0.75 and no speed", vs)
	}
	if s.Format != FormatMP3 || s.ContentType != "audio/mpeg" || s.SampleRate != 0 ||
		s.Provider != "elevenlabs" || s.Model != "eleven_flash_v2_5" || s.Voice != "voice123" {
		t.Errorf("speech = %+v", s)
	}

	got := make([]byte, len(first))
	if _, err := io.ReadFull(s.Audio, got); err != nil || !bytes.Equal(got, first) {
		t.Fatalf("first chunk: %v", err)
	}
	close(gate)
	rest, err := io.ReadAll(s.Audio)
	if err != nil || !bytes.Equal(rest, second) {
		t.Fatalf("second chunk: %d bytes, %v", len(rest), err)
	}
}

func TestTTSElevenLabsFormats(t *testing.T) {
	tests := []struct {
		name   string
		max    int // MaxSampleRate; 0 for the default
		format string
		rate   int
		query  string // output_format sent
		got    string
		gotHz  int
		ctype  string
	}{
		{"default is mp3", 0, "", 0, "mp3_44100_128", FormatMP3, 0, "audio/mpeg"},
		{"mp3", 0, FormatMP3, 0, "mp3_44100_128", FormatMP3, 0, "audio/mpeg"},
		{"pcm16 16k", 0, FormatPCM16, 16000, "pcm_16000", FormatPCM16, 16000, "audio/pcm; rate=16000"},
		{"pcm16 22.05k", 0, FormatPCM16, 22050, "pcm_22050", FormatPCM16, 22050, "audio/pcm; rate=22050"},
		{"pcm16 24k", 0, FormatPCM16, 24000, "pcm_24000", FormatPCM16, 24000, "audio/pcm; rate=24000"},
		{"pcm16 no rate", 0, FormatPCM16, 0, "pcm_24000", FormatPCM16, 24000, "audio/pcm; rate=24000"},
		{"pcm16 odd rate rounds up", 0, FormatPCM16, 12000, "pcm_16000", FormatPCM16, 16000, "audio/pcm; rate=16000"},
		{"pcm16 44.1k capped by default", 0, FormatPCM16, 44100, "pcm_24000", FormatPCM16, 24000, "audio/pcm; rate=24000"},
		{"pcm16 44.1k on a Pro plan", 44100, FormatPCM16, 44100, "pcm_44100", FormatPCM16, 44100, "audio/pcm; rate=44100"},
		{"pcm16 48k on a Pro plan", 44100, FormatPCM16, 48000, "pcm_44100", FormatPCM16, 44100, "audio/pcm; rate=44100"},
		{"ulaw", 0, FormatULaw, 0, "ulaw_8000", FormatULaw, 8000, "audio/basic"},
		{"alaw", 0, FormatALaw, 8000, "alaw_8000", FormatALaw, 8000, "audio/x-alaw-basic"},
		{"wav gets pcm", 0, FormatWAV, 16000, "pcm_16000", FormatPCM16, 16000, "audio/pcm; rate=16000"},
		{"opus", 0, FormatOpus, 48000, "opus_48000_64", FormatOpus, 0, "audio/ogg; codecs=opus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, reqs := ttsAudioServer(t, "application/octet-stream", [][]byte{[]byte("pcm")}, nil)
			e := ttsNewElevenLabs(t, ElevenLabsTTSConfig{BaseURL: srv.URL, APIKey: "k", MaxSampleRate: tt.max, HTTPClient: srv.Client()})
			s, err := e.Synthesize(t.Context(), SpeechRequest{Text: "Hi.", Format: tt.format, SampleRate: tt.rate})
			if err != nil {
				t.Fatalf("Synthesize: %v", err)
			}
			ttsReadAll(t, s)
			r := ttsNextRequest(t, reqs)
			if r.RawQuery != "output_format="+tt.query {
				t.Errorf("query = %q; want output_format=%s", r.RawQuery, tt.query)
			}
			if s.Format != tt.got || s.SampleRate != tt.gotHz || s.ContentType != tt.ctype {
				t.Errorf("Format, SampleRate, ContentType = %q, %d, %q; want %q, %d, %q", s.Format, s.SampleRate, s.ContentType, tt.got, tt.gotHz, tt.ctype)
			}
		})
	}
}

func TestTTSElevenLabsRequestOptions(t *testing.T) {
	srv, reqs := ttsAudioServer(t, "audio/mpeg", [][]byte{[]byte("x")}, nil)
	e := ttsNewElevenLabs(t, ElevenLabsTTSConfig{
		BaseURL: srv.URL, APIKey: "k", HTTPClient: srv.Client(),
		VoiceSettings: &ElevenLabsVoiceSettings{Stability: 0.3, SimilarityBoost: 0.9},
	})
	tests := []struct {
		name    string
		req     SpeechRequest
		rawPath string
		model   string
		speed   any
	}{
		{"speed within range", SpeechRequest{Speed: 1.1, Model: "eleven_multilingual_v2", Voice: "v1"}, "/v1/text-to-speech/v1/stream", "eleven_multilingual_v2", 1.1},
		{"speed clamped", SpeechRequest{Speed: 2, Voice: "v1"}, "/v1/text-to-speech/v1/stream", "eleven_flash_v2_5", 1.2},
		{"voice id escaped", SpeechRequest{Voice: "a/b?c"}, "/v1/text-to-speech/a%2Fb%3Fc/stream", "eleven_flash_v2_5", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.Text = "Hi."
			s, err := e.Synthesize(t.Context(), tt.req)
			if err != nil {
				t.Fatalf("Synthesize: %v", err)
			}
			ttsReadAll(t, s)
			r := ttsNextRequest(t, reqs)
			if r.RawPath != tt.rawPath || r.RawQuery != "output_format=mp3_44100_128" {
				t.Errorf("path %q ?%q; want %q", r.RawPath, r.RawQuery, tt.rawPath)
			}
			body := r.JSON(t)
			vs, _ := body["voice_settings"].(map[string]any)
			if body["model_id"] != tt.model || vs["stability"] != 0.3 || vs["similarity_boost"] != 0.9 || vs["speed"] != tt.speed {
				t.Errorf("body = %v; want model %q, stability 0.3, similarity_boost 0.9, speed %v", body, tt.model, tt.speed)
			}
		})
	}
}

func TestTTSElevenLabsErrors(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		header    map[string]string
		body      string
		code      string
		message   string
		retry     time.Duration
		retryable bool
	}{
		{"bad key", 401, nil, `{"detail":{"status":"invalid_api_key","message":"Invalid API key"}}`,
			"invalid_api_key", "Invalid API key", 0, false},
		{"quota", 401, nil, `{"detail":{"status":"quota_exceeded","message":"This request exceeds your quota."}}`,
			"quota_exceeded", "This request exceeds your quota.", 0, false},
		{"too many requests", 429, map[string]string{"Retry-After": "3"},
			`{"detail":{"status":"too_many_concurrent_requests","message":"Too many concurrent requests."}}`,
			"too_many_concurrent_requests", "Too many concurrent requests.", 3 * time.Second, true},
		{"validation", 422, nil, `{"detail":[{"loc":["body","text"],"msg":"field required","type":"value_error.missing"}]}`,
			"", "field required", 0, false},
		{"voice not found", 404, nil, `{"detail":{"status":"voice_not_found","message":"A voice with the voice_id x was not found."}}`,
			"voice_not_found", "A voice with the voice_id x was not found.", 0, false},
		{"server error, text", 500, nil, "internal error", "", "internal error", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := ttsErrorServer(t, tt.status, tt.header, tt.body)
			e := ttsNewElevenLabs(t, ElevenLabsTTSConfig{BaseURL: srv.URL, APIKey: "k", HTTPClient: srv.Client()})
			_, err := e.Synthesize(t.Context(), SpeechRequest{Text: "Hi."})
			pe := ttsAsProviderError(t, err)
			if pe.Provider != "elevenlabs" || pe.Status != tt.status || pe.Code != tt.code || pe.Message != tt.message ||
				pe.RetryAfter != tt.retry || pe.Retryable() != tt.retryable {
				t.Errorf("error = %+v (retryable %v); want status %d code %q message %q retry %v retryable %v",
					pe, pe.Retryable(), tt.status, tt.code, tt.message, tt.retry, tt.retryable)
			}
		})
	}
}

func TestTTSElevenLabsCancel(t *testing.T) {
	first := ttsChunk(2, 512)
	srv, done := ttsStallServer(t, first)
	e := ttsNewElevenLabs(t, ElevenLabsTTSConfig{BaseURL: srv.URL, APIKey: "k", HTTPClient: srv.Client()})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	s, err := e.Synthesize(ctx, SpeechRequest{Text: "Hi."})
	if err != nil {
		t.Fatalf("Synthesize: %v", err)
	}
	defer s.Audio.Close()
	got := make([]byte, len(first))
	if _, err := io.ReadFull(s.Audio, got); err != nil || !bytes.Equal(got, first) {
		t.Fatalf("first chunk: %v", err)
	}
	cancel()
	if _, err := io.ReadAll(s.Audio); !errors.Is(err, context.Canceled) {
		t.Fatalf("reading after cancel: %v; want context.Canceled", err)
	}
	<-done
}

func TestTTSElevenLabsBadInput(t *testing.T) {
	e := ttsNewElevenLabs(t, ElevenLabsTTSConfig{BaseURL: "http://127.0.0.1:1", APIKey: "k", MaxChars: 5})
	for _, req := range []SpeechRequest{
		{Text: ""},
		{Text: "too long"},
		{Text: "hi", Format: "flac"},
		{Text: "hi", Speed: -2},
	} {
		_, err := e.Synthesize(t.Context(), req)
		var pe *ProviderError
		if err == nil || errors.As(err, &pe) {
			t.Errorf("%+v: err = %v; want a refusal before any request", req, err)
		}
	}
}
