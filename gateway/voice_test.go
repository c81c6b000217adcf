package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/gateway"
	"github.com/dartmouth-gw/dartmouth/session"
	"github.com/dartmouth-gw/dartmouth/voice"
	"github.com/dartmouth-gw/dartmouth/voice/audio"
	"github.com/openai/openai-go/v3"
	oaioption "github.com/openai/openai-go/v3/option"
)

var toneWAVs sync.Map // ms -> []byte: load tests ask for the same lengths over and over

// toneWAV is a 440 Hz tone, 16 kHz mono, of the given length in ms.
func toneWAV(ms int) []byte {
	if b, ok := toneWAVs.Load(ms); ok {
		return b.([]byte)
	}
	b := makeToneWAV(ms)
	toneWAVs.Store(ms, b)
	return b
}

func makeToneWAV(ms int) []byte {
	n := 16 * ms
	pcm := audio.PCM{Rate: 16000, Samples: make([]int16, n)}
	for i := range pcm.Samples {
		pcm.Samples[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(i)/16000))
	}
	return audio.EncodeWAV(pcm)
}

// voiceFake is a TTS and STT provider that answers at once and counts its calls.
type voiceFake struct {
	tier  voice.Tier
	name  string
	fail  bool
	calls atomic.Int64
	// speechLen, when set, is the length of every synthesized sentence; else it grows with
	// the text.
	speechLen time.Duration
}

func (f *voiceFake) Name() string     { return f.name }
func (f *voiceFake) Tier() voice.Tier { return f.tier }

func (f *voiceFake) Synthesize(_ context.Context, req voice.SpeechRequest) (*voice.Speech, error) {
	f.calls.Add(1)
	if f.fail {
		return nil, errors.New("synthesizer down")
	}
	ms := 100 + 10*len(req.Text)
	if f.speechLen > 0 {
		ms = int(f.speechLen.Milliseconds())
	}
	return &voice.Speech{Audio: io.NopCloser(bytes.NewReader(toneWAV(ms))), Format: voice.FormatWAV,
		ContentType: "audio/wav", Provider: f.name, Model: "fake-1"}, nil
}

func (f *voiceFake) Transcribe(_ context.Context, req voice.TranscribeRequest) (*voice.Transcript, error) {
	f.calls.Add(1)
	if f.fail {
		return nil, errors.New("recognizer down")
	}
	pcm, err := audio.Decode(req.Audio, req.Format, req.SampleRate)
	if err != nil {
		return nil, err
	}
	return &voice.Transcript{Text: "heard " + pcm.Duration().String(), Duration: pcm.Duration(), Provider: f.name, Model: "fake-1"}, nil
}

type voiceSetup struct {
	g            *testGateway
	local, cloud *voiceFake
}

func startVoiceGateway(t *testing.T, localFails bool) *voiceSetup {
	t.Helper()
	local := &voiceFake{tier: voice.TierLocal, name: "local-fake", fail: localFails}
	cloud := &voiceFake{tier: voice.TierCloud, name: "cloud-fake"}
	blobs, err := session.NewLocalBlobStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cache, err := voice.NewTTSCache(voice.TTSCacheConfig{Blobs: blobs, KV: session.NewMemoryKV(nil)})
	if err != nil {
		t.Fatal(err)
	}
	router, err := voice.NewRouter(voice.RouterConfig{TTS: []voice.TTS{local, cloud}, STT: []voice.STT{local, cloud}, Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, nil, func(c *gateway.Config) { c.Voice = router })
	return &voiceSetup{g: g, local: local, cloud: cloud}
}

func TestVoiceTTSCachesAndFallsBack(t *testing.T) {
	v := startVoiceGateway(t, true)
	post := func() (*http.Response, []byte) {
		resp, err := http.Post(v.g.URL+"/api/v2/voice/tts", "application/json", strings.NewReader(`{"text":"Hello there.","format":"wav"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, first := post()
	if resp.StatusCode != 200 || resp.Header.Get("X-Voice-Provider") != "cloud-fake" || resp.Header.Get("X-Voice-Tier") != "cloud" {
		t.Fatalf("the failing local tier should fall through to cloud: %d %v %s", resp.StatusCode, resp.Header, first)
	}
	if _, err := audio.DecodeWAV(first); err != nil {
		t.Fatalf("not a WAV: %v", err)
	}
	resp, second := post()
	if resp.Header.Get("X-Voice-Cached") != "true" || !bytes.Equal(first, second) || v.cloud.calls.Load() != 1 {
		t.Fatalf("the second synthesis must come from the cache with identical bytes (cloud calls %d)", v.cloud.calls.Load())
	}
	resp, out := postJSON(t, v.g.URL+"/api/v2/voice/tts", `{"text":"Hi","tier":"premium"}`)
	if resp.StatusCode != http.StatusForbidden || errCode(out) != gateway.CodeTierNotAllowed {
		t.Fatalf("premium for a free caller: %d %v", resp.StatusCode, out)
	}
	resp, providers := getJSON(t, v.g.URL+"/api/v2/voice/providers")
	if resp.StatusCode != 200 || len(providers["providers"].([]any)) != 4 {
		t.Fatalf("providers %v", providers)
	}
}

func TestVoiceSTTBadAudio(t *testing.T) {
	v := startVoiceGateway(t, false)
	wav := toneWAV(500)
	mp3, err := os.ReadFile("../voice/audio/testdata/sine440_24000_mono.mp3")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, contentType string
		body              []byte
		status            int
		code              string
	}{
		{"good wav", "audio/wav", wav, 200, ""},
		{"good mp3", "audio/mpeg", mp3, 200, ""},
		{"truncated wav", "audio/wav", wav[:len(wav)/3], 400, gateway.CodeInvalidAudio},
		{"wrong header", "audio/wav", append([]byte("RIFX"), wav[4:]...), 400, gateway.CodeInvalidAudio},
		{"empty body", "audio/wav", nil, 400, gateway.CodeInvalidAudio},
		{"mp3 labelled as wav", "audio/wav", mp3, 400, gateway.CodeInvalidAudio},
		{"unknown bytes", "application/octet-stream", bytes.Repeat([]byte{7}, 2000), 415, gateway.CodeInvalidAudio},
		{"raw pcm without a rate", "audio/pcm", wav[44:], 400, gateway.CodeInvalidAudio},
		{"30 MB body", "audio/wav", make([]byte, 30<<20), 413, gateway.CodeBodyTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Post(v.g.URL+"/api/v2/voice/stt", tc.contentType, bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out map[string]any
			_ = jsonDecode(resp.Body, &out)
			if resp.StatusCode != tc.status || (tc.code != "" && errCode(out) != tc.code) {
				t.Fatalf("got %d %v, want %d %s", resp.StatusCode, out, tc.status, tc.code)
			}
			if tc.status == 200 && (out["provider"] != "local-fake" || out["text"] == "") {
				t.Fatalf("transcript %v", out)
			}
		})
	}
}

// The official OpenAI client can use the gateway's audio endpoints.
func TestOpenAIAudioThroughTheSDK(t *testing.T) {
	v := startVoiceGateway(t, false)
	client := openai.NewClient(oaioption.WithBaseURL(v.g.URL+"/v1/"), oaioption.WithAPIKey("x"), oaioption.WithMaxRetries(0))
	ctx := context.Background()
	alloy := openai.AudioSpeechNewParamsVoiceUnion{OfString: openai.String("alloy")}
	resp, err := client.Audio.Speech.New(ctx, openai.AudioSpeechNewParams{
		Model: openai.SpeechModelTTS1, Input: "Good morning.", Voice: alloy,
		ResponseFormat: openai.AudioSpeechNewParamsResponseFormatWAV,
	})
	if err != nil {
		t.Fatal(err)
	}
	speech, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	pcm, err := audio.DecodeWAV(speech)
	if err != nil || pcm.Duration() <= 0 {
		t.Fatalf("speech is not a WAV: %v", err)
	}
	tr, err := client.Audio.Transcriptions.New(ctx, openai.AudioTranscriptionNewParams{
		Model: openai.AudioModelWhisper1, File: openai.File(bytes.NewReader(speech), "speech.wav", "audio/wav"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tr.Text, "heard ") {
		t.Fatalf("transcript %q", tr.Text)
	}
	// Unsupported options come back as OpenAI-style errors the SDK surfaces.
	_, err = client.Audio.Speech.New(ctx, openai.AudioSpeechNewParams{Model: openai.SpeechModelTTS1, Input: "x", Voice: alloy,
		ResponseFormat: openai.AudioSpeechNewParamsResponseFormatAAC})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || !strings.Contains(apiErr.Message, "response_format") {
		t.Fatalf("want a 400 naming response_format, got %v", err)
	}
}

func TestVoiceDisabledWithoutARouter(t *testing.T) {
	g := startGateway(t, nil)
	resp, out := postJSON(t, g.URL+"/api/v2/voice/tts", `{"text":"hi"}`)
	if resp.StatusCode != http.StatusServiceUnavailable || errCode(out) != gateway.CodeVoiceDisabled {
		t.Fatalf("%d %v", resp.StatusCode, out)
	}
}
