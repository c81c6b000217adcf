package voice

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/voice/audio"
)

// sttUploaded is what the fake server received, parsed with the standard library.
type sttUploaded struct {
	method, path, auth, contentType string
	fileName, fileType              string
	file                            []byte
	fields                          map[string][]string
	err                             error
}

// sttWhisperServer is a Whisper-compatible server: it parses every request's multipart body,
// hands it to the test on a channel and answers with reply.
func sttWhisperServer(t *testing.T, reply func(w http.ResponseWriter, r *http.Request)) (*httptest.Server, <-chan sttUploaded) {
	t.Helper()
	got := make(chan sttUploaded, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := sttUploaded{method: r.Method, path: r.URL.Path, auth: r.Header.Get("Authorization"), contentType: r.Header.Get("Content-Type")}
		if err := r.ParseMultipartForm(32 << 20); err != nil {
			u.err = err
		} else {
			u.fields = r.MultipartForm.Value
			if fhs := r.MultipartForm.File["file"]; len(fhs) == 1 {
				u.fileName, u.fileType = fhs[0].Filename, fhs[0].Header.Get("Content-Type")
				f, err := fhs[0].Open()
				if err == nil {
					u.file, err = io.ReadAll(f)
					f.Close()
				}
				u.err = err
			} else {
				u.err = errors.New("want exactly one file part")
			}
		}
		got <- u
		reply(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func sttJSON(status int, body string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func TestSTTWhisperDefaults(t *testing.T) {
	cases := []struct {
		name     string
		cfg      WhisperSTTConfig
		wantTier Tier
		wantName string
		wantErr  string
	}{
		{name: "openai by default", cfg: WhisperSTTConfig{}, wantTier: TierCloud, wantName: "openai"},
		{name: "openai base url", cfg: WhisperSTTConfig{BaseURL: "https://API.openai.com/v1/"}, wantTier: TierCloud, wantName: "openai"},
		{name: "self-hosted", cfg: WhisperSTTConfig{BaseURL: "http://whisper.lan:8000/v1"}, wantTier: TierSelfHosted, wantName: "whisper"},
		{name: "explicit tier and name", cfg: WhisperSTTConfig{BaseURL: "http://gpu:9000/v1", Tier: TierCloud, Name: "groq"}, wantTier: TierCloud, wantName: "groq"},
		{name: "not a url", cfg: WhisperSTTConfig{BaseURL: "whisper.lan/v1"}, wantErr: "not an http(s) URL"},
		{name: "bad response format", cfg: WhisperSTTConfig{ResponseFormat: "srt"}, wantErr: "want json or verbose_json"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w, err := NewWhisperSTT(tc.cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if w.Tier() != tc.wantTier || w.Name() != tc.wantName {
				t.Fatalf("Tier, Name = %q, %q; want %q, %q", w.Tier(), w.Name(), tc.wantTier, tc.wantName)
			}
		})
	}
}

func TestSTTWhisperRequest(t *testing.T) {
	tone := sttTone(16000, 2*time.Second)
	wav := audio.EncodeWAV(tone)
	raw24 := sttTone(24000, 1250*time.Millisecond)
	// µ-law is lossy: the samples the server gets are the µ-law round trip of the tone.
	ulaw8k := audio.PCM{Samples: audio.DecodeULaw(audio.EncodeULaw(sttTone(8000, 750*time.Millisecond).Samples)), Rate: 8000}
	fakeMP3 := append([]byte("ID3\x04\x00\x00\x00\x00\x00\x00"), bytes.Repeat([]byte{0xff, 0xfb, 0x90, 0x00}, 16)...)
	fakeOgg := append([]byte("OggS"), make([]byte, 60)...)

	cases := []struct {
		name  string
		cfg   WhisperSTTConfig
		req   TranscribeRequest
		reply string

		wantAuth     string
		wantFileName string
		wantFileType string
		wantFile     []byte // nil: check wantSamples instead
		wantSamples  *audio.PCM
		wantFields   map[string]string // "" value: the field must be absent
		want         Transcript
	}{
		{
			name:         "cloud verbose_json",
			cfg:          WhisperSTTConfig{APIKey: "sk-test"},
			req:          TranscribeRequest{Audio: wav, Format: FormatWAV, Language: "en-US"},
			reply:        `{"task":"transcribe","language":"english","duration":2.5,"text":" Remind me to call mom at 5 p.m. ","segments":[],"usage":{"type":"duration","seconds":3}}`,
			wantAuth:     "Bearer sk-test",
			wantFileName: "audio.wav", wantFileType: "audio/wav", wantFile: wav,
			wantFields: map[string]string{"model": "whisper-1", "language": "en", "response_format": "verbose_json"},
			want:       Transcript{Text: "Remind me to call mom at 5 p.m.", Language: "en", Duration: 2500 * time.Millisecond, Model: "whisper-1"},
		},
		{
			name:         "gpt-4o json, duration measured locally",
			req:          TranscribeRequest{Audio: wav, Format: FormatWAV, Model: "gpt-4o-transcribe"},
			reply:        `{"text":"hello there","usage":{"type":"tokens","input_tokens":14,"output_tokens":3,"total_tokens":17}}`,
			wantFileName: "audio.wav", wantFileType: "audio/wav", wantFile: wav,
			wantFields: map[string]string{"model": "gpt-4o-transcribe", "language": "", "response_format": "json"},
			want:       Transcript{Text: "hello there", Duration: 2 * time.Second, Model: "gpt-4o-transcribe"},
		},
		{
			name:         "json with duration usage",
			cfg:          WhisperSTTConfig{ResponseFormat: "json", Model: "Systran/faster-whisper-small"},
			req:          TranscribeRequest{Audio: fakeMP3, Format: FormatMP3, Language: "de"},
			reply:        `{"text":"hallo","usage":{"type":"duration","seconds":4.2}}`,
			wantFileName: "audio.mp3", wantFileType: "audio/mpeg", wantFile: fakeMP3,
			wantFields: map[string]string{"model": "Systran/faster-whisper-small", "language": "de", "response_format": "json"},
			want:       Transcript{Text: "hallo", Language: "de", Duration: 4200 * time.Millisecond, Model: "Systran/faster-whisper-small"},
		},
		{
			name:         "raw pcm16 wrapped in wav, string duration, iso language",
			req:          TranscribeRequest{Audio: audio.PCM16ToBytes(raw24.Samples), Format: FormatPCM16, SampleRate: 24000},
			reply:        `{"text":"ok","language":"EN","duration":"1.25"}`,
			wantFileName: "audio.wav", wantFileType: "audio/wav", wantSamples: &raw24,
			wantFields: map[string]string{"model": "whisper-1", "response_format": "verbose_json"},
			want:       Transcript{Text: "ok", Language: "en", Duration: 1250 * time.Millisecond, Model: "whisper-1"},
		},
		{
			name:         "g711 wrapped in wav, duration measured locally",
			req:          TranscribeRequest{Audio: audio.EncodeULaw(ulaw8k.Samples), Format: FormatULaw},
			reply:        `{"text":"telephone"}`,
			wantFileName: "audio.wav", wantFileType: "audio/wav", wantSamples: &ulaw8k,
			wantFields: map[string]string{"model": "whisper-1", "response_format": "verbose_json"},
			want:       Transcript{Text: "telephone", Duration: 750 * time.Millisecond, Model: "whisper-1"},
		},
		{
			name:         "ogg opus passes through, undecodable duration is 0",
			req:          TranscribeRequest{Audio: fakeOgg, Format: FormatOpus},
			reply:        `{"text":""}`,
			wantFileName: "audio.ogg", wantFileType: "audio/ogg", wantFile: fakeOgg,
			wantFields: map[string]string{"model": "whisper-1", "response_format": "verbose_json"},
			want:       Transcript{Text: "", Model: "whisper-1"},
		},
		{
			name:         "format sniffed",
			req:          TranscribeRequest{Audio: wav},
			reply:        `{"text":"sniffed","language":"german","duration":2}`,
			wantFileName: "audio.wav", wantFileType: "audio/wav", wantFile: wav,
			wantFields: map[string]string{"model": "whisper-1", "response_format": "verbose_json"},
			want:       Transcript{Text: "sniffed", Language: "de", Duration: 2 * time.Second, Model: "whisper-1"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, uploads := sttWhisperServer(t, sttJSON(http.StatusOK, tc.reply))
			cfg := tc.cfg
			cfg.BaseURL = srv.URL + "/v1"
			cfg.Tier = TierCloud
			w, err := NewWhisperSTT(cfg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := w.Transcribe(context.Background(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			u := <-uploads
			if u.err != nil {
				t.Fatalf("server could not parse the upload: %v", u.err)
			}
			if u.method != http.MethodPost || u.path != "/v1/audio/transcriptions" {
				t.Errorf("request = %s %s, want POST /v1/audio/transcriptions", u.method, u.path)
			}
			if mt, _, _ := mime.ParseMediaType(u.contentType); mt != "multipart/form-data" {
				t.Errorf("Content-Type = %q, want multipart/form-data", u.contentType)
			}
			if u.auth != tc.wantAuth {
				t.Errorf("Authorization = %q, want %q", u.auth, tc.wantAuth)
			}
			if u.fileName != tc.wantFileName || u.fileType != tc.wantFileType {
				t.Errorf("file part = %q (%s), want %q (%s)", u.fileName, u.fileType, tc.wantFileName, tc.wantFileType)
			}
			if tc.wantFile != nil && !bytes.Equal(u.file, tc.wantFile) {
				t.Errorf("file bytes differ: got %d bytes, want %d", len(u.file), len(tc.wantFile))
			}
			if tc.wantSamples != nil {
				pcm, err := audio.Decode(u.file, FormatWAV, 0)
				if err != nil {
					t.Fatalf("uploaded file is not a WAV: %v", err)
				}
				if pcm.Rate != tc.wantSamples.Rate || !equalSTTSamples(pcm.Samples, tc.wantSamples.Samples) {
					t.Errorf("uploaded WAV: %d samples at %d Hz, want the %d sent at %d Hz", len(pcm.Samples), pcm.Rate, len(tc.wantSamples.Samples), tc.wantSamples.Rate)
				}
			}
			for k, want := range tc.wantFields {
				vals := u.fields[k]
				switch {
				case want == "" && len(vals) != 0:
					t.Errorf("field %s = %q, want it absent", k, vals)
				case want != "" && (len(vals) != 1 || vals[0] != want):
					t.Errorf("field %s = %q, want [%q]", k, vals, want)
				}
			}
			want := tc.want
			want.Provider = "whisper"
			if *got != want {
				t.Errorf("transcript = %+v\nwant         %+v", *got, want)
			}
		})
	}
}

func equalSTTSamples(a, b []int16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSTTWhisperErrors(t *testing.T) {
	wav := audio.EncodeWAV(sttTone(16000, 200*time.Millisecond))
	cases := []struct {
		name      string
		reply     func(http.ResponseWriter, *http.Request)
		status    int
		message   string
		code      string
		retry     time.Duration
		retryable bool
	}{
		{
			name:   "400 openai error",
			reply:  sttJSON(400, `{"error":{"message":"Invalid file format. Supported formats: ['flac', 'm4a']","type":"invalid_request_error","param":"file","code":"invalid_value"}}`),
			status: 400, message: "Invalid file format. Supported formats: ['flac', 'm4a']", code: "invalid_value",
		},
		{
			name:   "401 bad key",
			reply:  sttJSON(401, `{"error":{"message":"Incorrect API key provided: sk-test.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`),
			status: 401, message: "Incorrect API key provided: sk-test.", code: "invalid_api_key",
		},
		{
			name: "429 with Retry-After",
			reply: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "7")
				sttJSON(429, `{"error":{"message":"Rate limit reached for whisper-1","type":"requests","param":null,"code":"rate_limit_exceeded"}}`)(w, r)
			},
			status: 429, message: "Rate limit reached for whisper-1", code: "rate_limit_exceeded", retry: 7 * time.Second, retryable: true,
		},
		{
			name: "429 with retry-after-ms",
			reply: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After-Ms", "1500")
				w.Header().Set("Retry-After", "2")
				sttJSON(429, `{"error":{"message":"slow down","type":"rate_limit","code":429}}`)(w, r)
			},
			status: 429, message: "slow down", code: "429", retry: 1500 * time.Millisecond, retryable: true,
		},
		{
			name: "500 plain text",
			reply: func(w http.ResponseWriter, _ *http.Request) {
				http.Error(w, "upstream exploded", http.StatusInternalServerError)
			},
			status: 500, message: "upstream exploded", retryable: true,
		},
		{
			name:   "503 string error",
			reply:  sttJSON(503, `{"error":"model is loading"}`),
			status: 503, message: "model is loading", retryable: true,
		},
		{
			name:   "422 fastapi detail",
			reply:  sttJSON(422, `{"detail":[{"loc":["body","file"],"msg":"field required","type":"value_error.missing"}]}`),
			status: 422, message: "field required",
		},
		{
			name:   "200 that is not json",
			reply:  func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello as text") },
			status: 200, message: `unexpected response "hello as text"`,
		},
		{
			name:   "200 json without text",
			reply:  sttJSON(200, `{"transcript":"wrong field"}`),
			status: 200, message: `unexpected response "{\"transcript\":\"wrong field\"}"`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := sttWhisperServer(t, tc.reply)
			w, err := NewWhisperSTT(WhisperSTTConfig{BaseURL: srv.URL + "/v1", APIKey: "sk-test"})
			if err != nil {
				t.Fatal(err)
			}
			_, err = w.Transcribe(context.Background(), TranscribeRequest{Audio: wav, Format: FormatWAV})
			var pe *ProviderError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v (%T), want *ProviderError", err, err)
			}
			if pe.Status != tc.status || pe.Message != tc.message || pe.Code != tc.code || pe.RetryAfter != tc.retry ||
				pe.Retryable() != tc.retryable || pe.Provider != "whisper" || pe.Op != "stt" {
				t.Fatalf("error = %+v (retryable %v)\nwant status %d message %q code %q retry %v retryable %v",
					pe, pe.Retryable(), tc.status, tc.message, tc.code, tc.retry, tc.retryable)
			}
			t.Logf("error: %v", err)
			if !strings.Contains(err.Error(), tc.message) {
				t.Errorf("Error() = %q does not carry the message %q", err.Error(), tc.message)
			}
		})
	}
}

// sttBlockingServer accepts a request, says so on started, and answers only when the client
// goes away (or the test ends).
func sttBlockingServer(t *testing.T) (*httptest.Server, <-chan struct{}) {
	t.Helper()
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		started <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first: lets a stuck handler return
	return srv, started
}

func TestSTTWhisperContextCancel(t *testing.T) {
	srv, started := sttBlockingServer(t)
	w, err := NewWhisperSTT(WhisperSTTConfig{BaseURL: srv.URL + "/v1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := w.Transcribe(ctx, TranscribeRequest{Audio: audio.EncodeWAV(sttTone(16000, time.Second)), Format: FormatWAV})
		errc <- err
	}()
	<-started
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestSTTWhisperTimeout(t *testing.T) {
	srv, _ := sttBlockingServer(t)
	w, err := NewWhisperSTT(WhisperSTTConfig{BaseURL: srv.URL + "/v1", Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.Transcribe(context.Background(), TranscribeRequest{Audio: audio.EncodeWAV(sttTone(16000, time.Second)), Format: FormatWAV})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
}

func TestSTTWhisperTransportError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	w, err := NewWhisperSTT(WhisperSTTConfig{BaseURL: url + "/v1"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.Transcribe(context.Background(), TranscribeRequest{Audio: audio.EncodeWAV(sttTone(16000, time.Second)), Format: FormatWAV})
	var pe *ProviderError
	if !errors.As(err, &pe) || pe.Status != 0 || !pe.Retryable() {
		t.Fatalf("err = %v, want a retryable *ProviderError without status", err)
	}
}

// Bad input fails before anything is sent.
func TestSTTWhisperBadInput(t *testing.T) {
	srv, uploads := sttWhisperServer(t, sttJSON(200, `{"text":"should not be reached"}`))
	cases := []struct {
		name    string
		cfg     WhisperSTTConfig
		req     TranscribeRequest
		wantIs  error
		wantMsg string
	}{
		{name: "no audio", req: TranscribeRequest{Format: FormatWAV}, wantMsg: "no audio"},
		{name: "unknown bytes, no format", req: TranscribeRequest{Audio: []byte("definitely not audio")}, wantMsg: "not recognised"},
		{name: "unknown format name", req: TranscribeRequest{Audio: []byte{1, 2, 3, 4}, Format: "aiff"}, wantIs: ErrUnsupported, wantMsg: `unknown format "aiff"`},
		{name: "half a pcm16 sample", req: TranscribeRequest{Audio: []byte{1, 2, 3}, Format: FormatPCM16, SampleRate: 16000}, wantIs: audio.ErrTruncated},
		{name: "over the upload limit", cfg: WhisperSTTConfig{MaxUploadBytes: 100}, req: TranscribeRequest{Audio: audio.EncodeWAV(sttTone(16000, time.Second)), Format: FormatWAV}, wantIs: ErrUnsupported},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.BaseURL = srv.URL + "/v1"
			w, err := NewWhisperSTT(cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = w.Transcribe(context.Background(), tc.req)
			if err == nil {
				t.Fatal("no error")
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("err = %v, want one wrapping %v", err, tc.wantIs)
			}
			if tc.wantMsg != "" && !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("err = %v, want one saying %q", err, tc.wantMsg)
			}
		})
	}
	select {
	case u := <-uploads:
		t.Fatalf("bad input reached the server: %s %s", u.method, u.path)
	default:
	}
}
