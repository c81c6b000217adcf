package voice

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// OpenAI's speech endpoint takes at most 4096 characters of input and speeds 0.25 to 4; raw
// "pcm" output is 24 kHz signed 16-bit little-endian mono without a header.
const (
	ttsOpenAIMaxChars   = 4096
	ttsOpenAIMinSpeed   = 0.25
	ttsOpenAIMaxSpeed   = 4.0
	ttsOpenAIPCMRate    = 24000
	ttsOpenAIDefaultURL = "https://api.openai.com/v1"
)

// OpenAITTSConfig configures the OpenAI speech client. Any server that speaks OpenAI's
// POST /v1/audio/speech works through BaseURL (set Name and Tier to match it).
type OpenAITTSConfig struct {
	// Name reported as the provider; Name + "/" + model is the price key. Default "openai".
	Name string
	// Tier the provider is routed and priced as. Default TierCloud.
	Tier Tier
	// APIKey is sent as "Authorization: Bearer <key>". Empty sends no Authorization header,
	// which is what most self-hosted compatible servers expect.
	APIKey string
	// BaseURL of the API, including the version path, as OPENAI_BASE_URL and agents/llm use
	// it: requests go to BaseURL + "/audio/speech". Default "https://api.openai.com/v1".
	BaseURL string
	// Model used when the request names none. Default "tts-1" (tts-1-hd and gpt-4o-mini-tts
	// work the same way).
	Model string
	// Voice used when the request names none. Default "alloy".
	Voice string
	// MaxChars refuses longer texts with ErrTextTooLong before paying for a request. Default
	// 4096, the API's own limit.
	MaxChars int
	// HTTPClient carries the requests. Default http.DefaultClient. Audio streams for as long
	// as it is being spoken, so the client should have no overall Timeout; bound the wait for
	// the first byte with its Transport's ResponseHeaderTimeout, or with the context.
	HTTPClient *http.Client
}

// OpenAITTS synthesizes speech with OpenAI's POST /v1/audio/speech and streams the audio as it
// arrives. Formats map to the API's response_format: FormatMP3 (also for an empty Format) to
// mp3, FormatWAV to wav, FormatPCM16 to pcm (always 24 kHz: Speech.SampleRate says 24000
// whatever the request asked), FormatOpus to opus (Ogg Opus). G.711 is not offered by the API:
// such requests get 24 kHz PCM16 for the router to convert. Errors from the API are
// *ProviderError. It is safe for concurrent use.
type OpenAITTS struct {
	api  ttsSpeechAPI
	tier Tier
}

var _ TTS = (*OpenAITTS)(nil)

// NewOpenAITTS builds the client; it fails only for a BaseURL that is not an http(s) URL.
func NewOpenAITTS(cfg OpenAITTSConfig) (*OpenAITTS, error) {
	if cfg.Name == "" {
		cfg.Name = "openai"
	}
	if cfg.Tier == "" {
		cfg.Tier = TierCloud
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = ttsOpenAIDefaultURL
	}
	if cfg.Model == "" {
		cfg.Model = "tts-1"
	}
	if cfg.Voice == "" {
		cfg.Voice = "alloy"
	}
	if cfg.MaxChars == 0 {
		cfg.MaxChars = ttsOpenAIMaxChars
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	endpoint, err := ttsEndpoint(cfg.Name, cfg.BaseURL, "/audio/speech")
	if err != nil {
		return nil, err
	}
	return &OpenAITTS{
		tier: cfg.Tier,
		api: ttsSpeechAPI{
			name:     cfg.Name,
			endpoint: endpoint,
			apiKey:   cfg.APIKey,
			model:    cfg.Model,
			voice:    cfg.Voice,
			maxChars: cfg.MaxChars,
			client:   cfg.HTTPClient,
		},
	}, nil
}

// Name implements TTS.
func (o *OpenAITTS) Name() string { return o.api.name }

// Tier implements TTS.
func (o *OpenAITTS) Tier() Tier { return o.tier }

// Synthesize implements TTS. It returns once the response headers have arrived; Speech.Audio
// then streams the body, and cancelling ctx stops it.
func (o *OpenAITTS) Synthesize(ctx context.Context, req SpeechRequest) (*Speech, error) {
	return o.api.synthesize(ctx, req)
}

// ttsEndpoint joins a base URL (which includes any version path) and an endpoint path, after
// checking the base is an absolute http(s) URL.
func ttsEndpoint(provider, base, path string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%s tts: base URL %q is not an http(s) URL", provider, base)
	}
	return strings.TrimSuffix(base, "/") + path, nil
}

// ttsSpeechAPI is a client of the OpenAI speech endpoint, shared by OpenAITTS and F5TTS's HTTP
// mode. Empty model and voice are left out of the request, so the server's defaults apply.
type ttsSpeechAPI struct {
	name     string
	endpoint string
	apiKey   string
	model    string
	voice    string
	maxChars int
	client   *http.Client
}

// ttsSpeechBody is the JSON body of POST /audio/speech.
type ttsSpeechBody struct {
	Model          string   `json:"model,omitempty"`
	Input          string   `json:"input"`
	Voice          string   `json:"voice,omitempty"`
	ResponseFormat string   `json:"response_format"`
	Speed          *float64 `json:"speed,omitempty"`
}

func (a *ttsSpeechAPI) synthesize(ctx context.Context, req SpeechRequest) (*Speech, error) {
	if err := ttsCheckText(a.name, req.Text, a.maxChars); err != nil {
		return nil, err
	}
	speed, err := ttsSpeed(a.name, req.Speed, ttsOpenAIMinSpeed, ttsOpenAIMaxSpeed)
	if err != nil {
		return nil, err
	}
	responseFormat, format, rate, err := ttsOpenAIFormat(a.name, req.Format)
	if err != nil {
		return nil, err
	}
	body := ttsSpeechBody{
		Model:          req.Model,
		Input:          req.Text,
		Voice:          req.Voice,
		ResponseFormat: responseFormat,
	}
	if body.Model == "" {
		body.Model = a.model
	}
	if body.Voice == "" {
		body.Voice = a.voice
	}
	if speed != 1 {
		body.Speed = &speed
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("%s tts: encode request: %w", a.name, err)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, a.endpoint, bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("%s tts: %w", a.name, err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	if a.apiKey != "" {
		hreq.Header.Set("Authorization", "Bearer "+a.apiKey)
	}
	resp, err := providerDo(a.client, hreq, a.name, "tts")
	if err != nil {
		return nil, err
	}
	if err := ttsCheckAudioAnswer(a.name, resp); err != nil {
		return nil, err
	}
	return &Speech{
		Audio:       &providerStream{body: resp.Body, provider: a.name, op: "tts"},
		Format:      format,
		ContentType: ttsContentType(format, rate),
		SampleRate:  rate,
		Provider:    a.name,
		Model:       body.Model,
		Voice:       body.Voice,
	}, nil
}

// ttsOpenAIFormat maps a requested format to the API's response_format, and says which format
// and sample rate (0 when the container carries it) the audio will then be in.
func ttsOpenAIFormat(provider, format string) (responseFormat, got string, sampleRate int, err error) {
	switch format {
	case "", FormatMP3:
		return "mp3", FormatMP3, 0, nil
	case FormatWAV:
		return "wav", FormatWAV, 0, nil
	case FormatOpus:
		return "opus", FormatOpus, 0, nil
	case FormatPCM16, FormatULaw, FormatALaw:
		// The API has no G.711; raw PCM is the cheapest thing to convert it from.
		return "pcm", FormatPCM16, ttsOpenAIPCMRate, nil
	}
	return "", "", 0, fmt.Errorf("%s tts: audio format %q: %w", provider, format, ErrUnsupported)
}
