package voice

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// ElevenLabs' documented output_format PCM rates, and the speed range its voice settings
// accept.
var ttsElevenLabsPCMRates = []int{8000, 16000, 22050, 24000, 32000, 44100, 48000}

const (
	ttsElevenLabsMinSpeed = 0.7
	ttsElevenLabsMaxSpeed = 1.2
)

// ElevenLabsVoiceSettings are the voice_settings sent with every request.
type ElevenLabsVoiceSettings struct {
	// Stability, 0 to 1: lower is more expressive, higher more monotonous.
	Stability float64 `json:"stability"`
	// SimilarityBoost, 0 to 1: how closely to stick to the original voice.
	SimilarityBoost float64 `json:"similarity_boost"`
}

// ElevenLabsTTSConfig configures the ElevenLabs client.
type ElevenLabsTTSConfig struct {
	// Name reported as the provider; Name + "/" + model is the price key. Default
	// "elevenlabs".
	Name string
	// APIKey is sent as the xi-api-key header. Required.
	APIKey string
	// BaseURL of the API without the version path, as ElevenLabs' SDKs use it: requests go to
	// BaseURL + "/v1/text-to-speech/{voice_id}/stream". Default "https://api.elevenlabs.io".
	BaseURL string
	// Model (model_id) used when the request names none. Default "eleven_flash_v2_5", the
	// fastest and cheapest.
	Model string
	// Voice (a voice id) used when the request names none. Default "JBFqnCBsd6RMkjVDRZzb"
	// (George, the voice in ElevenLabs' API examples).
	Voice string
	// VoiceSettings sent with every request. Default {Stability: 0.5, SimilarityBoost: 0.75},
	// ElevenLabs' own defaults.
	VoiceSettings *ElevenLabsVoiceSettings
	// MaxSampleRate caps the PCM rate asked for. Default 24000, available on every plan;
	// pcm_44100 needs the Pro plan, so raise it to 44100 or 48000 only on plans that have it.
	MaxSampleRate int
	// MaxChars refuses longer texts with ErrTextTooLong before paying for a request. Default
	// 5000 (the API takes 40,000 for flash models; at about $0.10 per 1,000 characters a text
	// that long from a sentence-by-sentence router is a bug, not a reply).
	MaxChars int
	// HTTPClient carries the requests. Default http.DefaultClient. Audio streams for as long
	// as it is being spoken, so the client should have no overall Timeout.
	HTTPClient *http.Client
}

// ElevenLabsTTS synthesizes speech with ElevenLabs' streaming endpoint,
// POST /v1/text-to-speech/{voice_id}/stream, and streams the audio as it arrives. Formats map
// to output_format: FormatMP3 (also for an empty Format) to mp3_44100_128, FormatPCM16 to
// pcm_{rate} (the nearest offered rate at or above the one asked for, within MaxSampleRate;
// 24000 when none is asked), FormatULaw to ulaw_8000, FormatALaw to alaw_8000 and FormatOpus to
// opus_48000_64 (Ogg Opus). WAV requests get PCM16 for the router to wrap. Errors from the API
// are *ProviderError. It is safe for concurrent use.
type ElevenLabsTTS struct {
	cfg ElevenLabsTTSConfig
}

var _ TTS = (*ElevenLabsTTS)(nil)

// NewElevenLabsTTS builds the client; it fails for a missing APIKey or a BaseURL that is not
// an http(s) URL.
func NewElevenLabsTTS(cfg ElevenLabsTTSConfig) (*ElevenLabsTTS, error) {
	if cfg.Name == "" {
		cfg.Name = "elevenlabs"
	}
	if cfg.APIKey == "" {
		return nil, fmt.Errorf("%s tts: no API key configured", cfg.Name)
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = "https://api.elevenlabs.io"
	}
	if _, err := ttsEndpoint(cfg.Name, cfg.BaseURL, ""); err != nil {
		return nil, err
	}
	if cfg.Model == "" {
		cfg.Model = "eleven_flash_v2_5"
	}
	if cfg.Voice == "" {
		cfg.Voice = "JBFqnCBsd6RMkjVDRZzb"
	}
	if cfg.VoiceSettings == nil {
		cfg.VoiceSettings = &ElevenLabsVoiceSettings{Stability: 0.5, SimilarityBoost: 0.75}
	}
	if cfg.MaxSampleRate == 0 {
		cfg.MaxSampleRate = 24000
	}
	if cfg.MaxChars == 0 {
		cfg.MaxChars = 5000
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	return &ElevenLabsTTS{cfg: cfg}, nil
}

// Name implements TTS.
func (e *ElevenLabsTTS) Name() string { return e.cfg.Name }

// Tier implements TTS.
func (e *ElevenLabsTTS) Tier() Tier { return TierPremium }

// ttsElevenLabsBody is the JSON body of the text-to-speech request.
type ttsElevenLabsBody struct {
	Text          string                     `json:"text"`
	ModelID       string                     `json:"model_id"`
	VoiceSettings ttsElevenLabsVoiceSettings `json:"voice_settings"`
}

type ttsElevenLabsVoiceSettings struct {
	ElevenLabsVoiceSettings
	Speed *float64 `json:"speed,omitempty"`
}

// Synthesize implements TTS. It returns once the response headers have arrived; Speech.Audio
// then streams the body, and cancelling ctx stops it. Speed goes to voice_settings.speed,
// clamped to the 0.7–1.2 ElevenLabs accepts.
func (e *ElevenLabsTTS) Synthesize(ctx context.Context, req SpeechRequest) (*Speech, error) {
	name := e.cfg.Name
	if err := ttsCheckText(name, req.Text, e.cfg.MaxChars); err != nil {
		return nil, err
	}
	speed, err := ttsSpeed(name, req.Speed, ttsElevenLabsMinSpeed, ttsElevenLabsMaxSpeed)
	if err != nil {
		return nil, err
	}
	outputFormat, format, rate, err := e.outputFormat(req.Format, req.SampleRate)
	if err != nil {
		return nil, err
	}
	voice := req.Voice
	if voice == "" {
		voice = e.cfg.Voice
	}
	model := req.Model
	if model == "" {
		model = e.cfg.Model
	}
	body := ttsElevenLabsBody{
		Text:          req.Text,
		ModelID:       model,
		VoiceSettings: ttsElevenLabsVoiceSettings{ElevenLabsVoiceSettings: *e.cfg.VoiceSettings},
	}
	if speed != 1 {
		body.VoiceSettings.Speed = &speed
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("%s tts: encode request: %w", name, err)
	}
	endpoint := strings.TrimSuffix(e.cfg.BaseURL, "/") + "/v1/text-to-speech/" + url.PathEscape(voice) + "/stream?" +
		url.Values{"output_format": {outputFormat}}.Encode()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("%s tts: %w", name, err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("xi-api-key", e.cfg.APIKey)
	resp, err := providerDo(e.cfg.HTTPClient, hreq, name, "tts")
	if err != nil {
		return nil, err
	}
	if err := ttsCheckAudioAnswer(name, resp); err != nil {
		return nil, err
	}
	return &Speech{
		Audio:       &providerStream{body: resp.Body, provider: name, op: "tts"},
		Format:      format,
		ContentType: ttsContentType(format, rate),
		SampleRate:  rate,
		Provider:    name,
		Model:       model,
		Voice:       voice,
	}, nil
}

// outputFormat maps a requested format and rate to output_format, and says which format and
// sample rate (0 for MP3, which carries it) the audio will then be in.
func (e *ElevenLabsTTS) outputFormat(format string, sampleRate int) (outputFormat, got string, rate int, err error) {
	switch format {
	case "", FormatMP3:
		return "mp3_44100_128", FormatMP3, 0, nil
	case FormatULaw:
		return "ulaw_8000", FormatULaw, 8000, nil
	case FormatALaw:
		return "alaw_8000", FormatALaw, 8000, nil
	case FormatOpus:
		// Ogg Opus, like OpenAI's "opus" (what messaging apps that require Ogg Opus voice
		// notes are fed from ElevenLabs).
		return "opus_48000_64", FormatOpus, 0, nil
	case FormatPCM16, FormatWAV:
		rate := ttsElevenLabsRate(sampleRate, e.cfg.MaxSampleRate)
		return "pcm_" + strconv.Itoa(rate), FormatPCM16, rate, nil
	}
	return "", "", 0, fmt.Errorf("%s tts: audio format %q: %w", e.cfg.Name, format, ErrUnsupported)
}

// ttsElevenLabsRate picks the PCM rate to ask for: the lowest offered rate at or above want
// (resampling down loses nothing the listener would hear), within limit; 24000 when want is 0;
// the highest rate within limit when want is above it.
func ttsElevenLabsRate(want, limit int) int {
	if want <= 0 {
		want = 24000
	}
	best := 0
	for _, r := range ttsElevenLabsPCMRates {
		if r > limit {
			break
		}
		best = r
		if r >= want {
			return r
		}
	}
	if best == 0 {
		// A limit below every offered rate: take the lowest rather than fail.
		best = slices.Min(ttsElevenLabsPCMRates)
	}
	return best
}
