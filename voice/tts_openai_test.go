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

func ttsNewOpenAI(t *testing.T, cfg OpenAITTSConfig) *OpenAITTS {
	t.Helper()
	o, err := NewOpenAITTS(cfg)
	if err != nil {
		t.Fatalf("NewOpenAITTS: %v", err)
	}
	return o
}

func TestTTSOpenAIDefaults(t *testing.T) {
	o := ttsNewOpenAI(t, OpenAITTSConfig{})
	if o.Name() != "openai" || o.Tier() != TierCloud {
		t.Errorf("Name, Tier = %q, %q; want openai, cloud", o.Name(), o.Tier())
	}
	if o.api.endpoint != "https://api.openai.com/v1/audio/speech" {
		t.Errorf("endpoint = %q", o.api.endpoint)
	}
	if o.api.model != "tts-1" || o.api.voice != "alloy" || o.api.maxChars != 4096 {
		t.Errorf("model, voice, maxChars = %q, %q, %d; want tts-1, alloy, 4096", o.api.model, o.api.voice, o.api.maxChars)
	}
	if _, err := NewOpenAITTS(OpenAITTSConfig{BaseURL: "api.openai.com/v1"}); err == nil {
		t.Error("a base URL without a scheme was accepted")
	}
}

// TestTTSOpenAIStream checks the exact request and that audio arrives chunk by chunk: the
// server writes its second chunk only after the test has read the first through Speech.Audio.
func TestTTSOpenAIStream(t *testing.T) {
	first, second := ttsChunk(1, 4000), ttsChunk(9, 3000)
	gate := make(chan struct{})
	srv, reqs := ttsAudioServer(t, "audio/mpeg", [][]byte{first, second}, gate)
	o := ttsNewOpenAI(t, OpenAITTSConfig{BaseURL: srv.URL + "/v1/", APIKey: "sk-test", HTTPClient: srv.Client()})

	s, err := o.Synthesize(t.Context(), SpeechRequest{Text: "Hello there."})
	if err != nil {
		t.Fatalf("Synthesize: %v", err)
	}
	defer s.Audio.Close()
	r := ttsNextRequest(t, reqs)
	if r.Method != http.MethodPost || r.Path != "/v1/audio/speech" || r.RawQuery != "" {
		t.Errorf("request %s %s?%s; want POST /v1/audio/speech", r.Method, r.Path, r.RawQuery)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer sk-test" {
		t.Errorf("Authorization = %q", got)
	}
	if got := r.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	body := r.JSON(t)
	want := map[string]any{"model": "tts-1", "input": "Hello there.", "voice": "alloy", "response_format": "mp3"}
	for k, v := range want {
		if body[k] != v {
			t.Errorf("body[%q] = %v; want %v", k, body[k], v)
		}
	}
	if _, ok := body["speed"]; ok || len(body) != len(want) {
		t.Errorf("body = %v; want exactly %v", body, want)
	}
	if s.Format != FormatMP3 || s.ContentType != "audio/mpeg" || s.SampleRate != 0 ||
		s.Provider != "openai" || s.Model != "tts-1" || s.Voice != "alloy" {
		t.Errorf("speech = %+v", s)
	}

	got := make([]byte, len(first))
	if _, err := io.ReadFull(s.Audio, got); err != nil {
		t.Fatalf("reading the first chunk: %v", err)
	}
	if !bytes.Equal(got, first) {
		t.Fatal("first chunk differs")
	}
	close(gate) // only now may the server write the second chunk
	rest, err := io.ReadAll(s.Audio)
	if err != nil {
		t.Fatalf("reading the rest: %v", err)
	}
	if !bytes.Equal(rest, second) {
		t.Fatalf("second chunk differs: %d bytes, want %d", len(rest), len(second))
	}
}

func TestTTSOpenAIRequestFields(t *testing.T) {
	tests := []struct {
		name       string
		req        SpeechRequest
		wantFormat string // response_format sent
		wantSpeed  any    // nil when absent
		wantModel  string
		wantVoice  string
		format     string
		rate       int
		ctype      string
	}{
		{"mp3 default", SpeechRequest{Format: FormatMP3}, "mp3", nil, "tts-1", "alloy", FormatMP3, 0, "audio/mpeg"},
		{"wav", SpeechRequest{Format: FormatWAV}, "wav", nil, "tts-1", "alloy", FormatWAV, 0, "audio/wav"},
		{"pcm16 is 24 kHz whatever was asked", SpeechRequest{Format: FormatPCM16, SampleRate: 16000}, "pcm", nil, "tts-1", "alloy", FormatPCM16, 24000, "audio/pcm; rate=24000"},
		{"opus", SpeechRequest{Format: FormatOpus}, "opus", nil, "tts-1", "alloy", FormatOpus, 0, "audio/ogg; codecs=opus"},
		{"ulaw falls back to pcm", SpeechRequest{Format: FormatULaw}, "pcm", nil, "tts-1", "alloy", FormatPCM16, 24000, "audio/pcm; rate=24000"},
		{"alaw falls back to pcm", SpeechRequest{Format: FormatALaw}, "pcm", nil, "tts-1", "alloy", FormatPCM16, 24000, "audio/pcm; rate=24000"},
		{"speed, model and voice", SpeechRequest{Speed: 1.5, Model: "gpt-4o-mini-tts", Voice: "coral"}, "mp3", 1.5, "gpt-4o-mini-tts", "coral", FormatMP3, 0, "audio/mpeg"},
		{"speed 1 is left out", SpeechRequest{Speed: 1}, "mp3", nil, "tts-1", "alloy", FormatMP3, 0, "audio/mpeg"},
		{"speed clamped high", SpeechRequest{Speed: 10}, "mp3", 4.0, "tts-1", "alloy", FormatMP3, 0, "audio/mpeg"},
		{"speed clamped low", SpeechRequest{Speed: 0.1}, "mp3", 0.25, "tts-1", "alloy", FormatMP3, 0, "audio/mpeg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, reqs := ttsAudioServer(t, "application/octet-stream", [][]byte{[]byte("audio")}, nil)
			o := ttsNewOpenAI(t, OpenAITTSConfig{BaseURL: srv.URL + "/v1", HTTPClient: srv.Client()})
			tt.req.Text = "Speak."
			s, err := o.Synthesize(t.Context(), tt.req)
			if err != nil {
				t.Fatalf("Synthesize: %v", err)
			}
			if got := ttsReadAll(t, s); string(got) != "audio" {
				t.Errorf("audio = %q", got)
			}
			r := ttsNextRequest(t, reqs)
			if got := r.Header.Get("Authorization"); got != "" {
				t.Errorf("Authorization = %q without an API key; want none", got)
			}
			body := r.JSON(t)
			if body["response_format"] != tt.wantFormat || body["model"] != tt.wantModel || body["voice"] != tt.wantVoice {
				t.Errorf("body = %v; want response_format %q model %q voice %q", body, tt.wantFormat, tt.wantModel, tt.wantVoice)
			}
			if speed, ok := body["speed"]; ok != (tt.wantSpeed != nil) || (ok && speed != tt.wantSpeed) {
				t.Errorf("speed = %v (present %v); want %v", speed, ok, tt.wantSpeed)
			}
			if s.Format != tt.format || s.SampleRate != tt.rate || s.ContentType != tt.ctype {
				t.Errorf("Format, SampleRate, ContentType = %q, %d, %q; want %q, %d, %q", s.Format, s.SampleRate, s.ContentType, tt.format, tt.rate, tt.ctype)
			}
			if s.Model != tt.wantModel || s.Voice != tt.wantVoice {
				t.Errorf("speech Model, Voice = %q, %q", s.Model, s.Voice)
			}
		})
	}
}

func TestTTSOpenAIErrors(t *testing.T) {
	date := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		name      string
		status    int
		header    map[string]string
		body      string
		code      string
		message   string
		retry     time.Duration // exact, or a lower bound when retryMin
		retryMin  bool
		retryable bool
	}{
		{"bad key", 401, nil,
			`{"error":{"message":"Incorrect API key provided: sk-x.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`,
			"invalid_api_key", "Incorrect API key provided: sk-x.", 0, false, false},
		{"rate limited, seconds", 429, map[string]string{"Retry-After": "7"},
			`{"error":{"message":"Rate limit reached for requests","type":"requests","code":"rate_limit_exceeded"}}`,
			"rate_limit_exceeded", "Rate limit reached for requests", 7 * time.Second, false, true},
		{"rate limited, milliseconds win", 429, map[string]string{"Retry-After": "2", "Retry-After-Ms": "1500"},
			`{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}`,
			"rate_limit_exceeded", "slow down", 1500 * time.Millisecond, false, true},
		{"rate limited, HTTP date", 429, map[string]string{"Retry-After": date},
			`{"error":{"message":"slow down","type":"requests","code":null}}`,
			"requests", "slow down", 80 * time.Second, true, true},
		{"server error", 500, nil,
			`{"error":{"message":"The server had an error while processing your request.","type":"server_error","code":null}}`,
			"server_error", "The server had an error while processing your request.", 0, false, true},
		{"bad gateway, HTML", 502, map[string]string{"Content-Type": "text/html"}, "<html>Bad gateway</html>",
			"", "<html>Bad gateway</html>", 0, false, true},
		{"empty body", 503, nil, "", "", "Service Unavailable", 0, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := ttsErrorServer(t, tt.status, tt.header, tt.body)
			o := ttsNewOpenAI(t, OpenAITTSConfig{BaseURL: srv.URL + "/v1", APIKey: "sk-x", HTTPClient: srv.Client()})
			s, err := o.Synthesize(t.Context(), SpeechRequest{Text: "Hello."})
			if err == nil {
				s.Audio.Close()
				t.Fatal("Synthesize succeeded")
			}
			pe := ttsAsProviderError(t, err)
			if pe.Provider != "openai" || pe.Op != "tts" || pe.Status != tt.status || pe.Code != tt.code || pe.Message != tt.message {
				t.Errorf("error = %+v; want status %d code %q message %q", pe, tt.status, tt.code, tt.message)
			}
			if tt.retryMin {
				// The date has whole seconds and the test takes a moment: 80 to 90 s.
				if pe.RetryAfter < tt.retry || pe.RetryAfter > tt.retry+10*time.Second {
					t.Errorf("RetryAfter = %v; want %v to %v", pe.RetryAfter, tt.retry, tt.retry+10*time.Second)
				}
			} else if pe.RetryAfter != tt.retry {
				t.Errorf("RetryAfter = %v; want %v", pe.RetryAfter, tt.retry)
			}
			if pe.Retryable() != tt.retryable {
				t.Errorf("Retryable = %v; want %v", pe.Retryable(), tt.retryable)
			}
			if !strings.Contains(err.Error(), "openai tts: HTTP ") {
				t.Errorf("error text %q does not name the provider and status", err)
			}
		})
	}
}

// TestTTSOpenAIJSONWith200 checks that a JSON body with status 200 (how some compatible
// servers report failures) is an error, not audio.
func TestTTSOpenAIJSONWith200(t *testing.T) {
	srv := ttsErrorServer(t, 200, map[string]string{"Content-Type": "application/json"}, `{"error":"Failed to generate speech"}`)
	o := ttsNewOpenAI(t, OpenAITTSConfig{BaseURL: srv.URL + "/v1", HTTPClient: srv.Client()})
	_, err := o.Synthesize(t.Context(), SpeechRequest{Text: "Hello."})
	pe := ttsAsProviderError(t, err)
	if pe.Status != 200 || !strings.Contains(pe.Message, "Failed to generate speech") || !strings.Contains(pe.Message, "instead of audio") {
		t.Errorf("error = %+v", pe)
	}
}

// TestTTSOpenAICancel checks that cancelling the context stops a stream in the middle.
func TestTTSOpenAICancel(t *testing.T) {
	first := ttsChunk(3, 1000)
	srv, done := ttsStallServer(t, first)
	o := ttsNewOpenAI(t, OpenAITTSConfig{BaseURL: srv.URL + "/v1", HTTPClient: srv.Client()})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	s, err := o.Synthesize(ctx, SpeechRequest{Text: "A long answer."})
	if err != nil {
		t.Fatalf("Synthesize: %v", err)
	}
	defer s.Audio.Close()
	got := make([]byte, len(first))
	if _, err := io.ReadFull(s.Audio, got); err != nil || !bytes.Equal(got, first) {
		t.Fatalf("first chunk: %v", err)
	}
	cancel()
	n, err := s.Audio.Read(make([]byte, 100))
	if n != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("Read after cancel = %d, %v; want context.Canceled", n, err)
	}
	if !strings.Contains(err.Error(), "openai tts") {
		t.Errorf("error %q does not name the provider", err)
	}
	<-done // the server saw the client go away
}

func TestTTSOpenAIBadInput(t *testing.T) {
	// No server: every case must fail before any request is made.
	o := ttsNewOpenAI(t, OpenAITTSConfig{BaseURL: "http://127.0.0.1:1/v1", MaxChars: 10})
	tests := []struct {
		name string
		req  SpeechRequest
		want error
	}{
		{"empty", SpeechRequest{Text: ""}, ErrEmptyText},
		{"blank", SpeechRequest{Text: " \n\t"}, ErrEmptyText},
		{"too long", SpeechRequest{Text: "eleven char"}, ErrTextTooLong},
		{"too long is unsupported too", SpeechRequest{Text: "eleven char"}, ErrUnsupported},
		{"unknown format", SpeechRequest{Text: "hi", Format: "aiff"}, ErrUnsupported},
		{"negative speed", SpeechRequest{Text: "hi", Speed: -1}, nil},
		{"invalid UTF-8", SpeechRequest{Text: "hi \xff"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := o.Synthesize(t.Context(), tt.req)
			if err == nil {
				t.Fatal("Synthesize succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %v; want %v", err, tt.want)
			}
			var pe *ProviderError
			if errors.As(err, &pe) {
				t.Errorf("bad input reached the network: %v", err)
			}
		})
	}
	// Ten characters, not ten bytes: "héllo wörl" is 12 bytes.
	srv, _ := ttsAudioServer(t, "audio/mpeg", [][]byte{[]byte("x")}, nil)
	o = ttsNewOpenAI(t, OpenAITTSConfig{BaseURL: srv.URL + "/v1", MaxChars: 10, HTTPClient: srv.Client()})
	s, err := o.Synthesize(t.Context(), SpeechRequest{Text: "héllo wörl"})
	if err != nil {
		t.Fatalf("ten characters refused: %v", err)
	}
	ttsReadAll(t, s)
}

func TestTTSOpenAIUnreachable(t *testing.T) {
	srv := ttsErrorServer(t, 200, nil, "")
	url := srv.URL
	srv.Close() // nothing listens there any more
	o := ttsNewOpenAI(t, OpenAITTSConfig{BaseURL: url + "/v1"})
	_, err := o.Synthesize(t.Context(), SpeechRequest{Text: "Hello."})
	pe := ttsAsProviderError(t, err)
	if pe.Status != 0 || !pe.Retryable() || pe.Err == nil {
		t.Errorf("error = %+v; want a retryable transport failure", pe)
	}
}
