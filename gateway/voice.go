package gateway

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/dartmouth-gw/dartmouth/voice"
	"github.com/dartmouth-gw/dartmouth/voice/audio"
	"github.com/labstack/echo/v4"
)

// Error codes of the voice endpoints.
const (
	CodeInvalidAudio    = "invalid_audio"
	CodeTierNotAllowed  = "tier_not_allowed"
	CodeNoVoiceProvider = "no_voice_provider"
	CodeVoiceDisabled   = "voice_disabled"
)

// voiceError maps the router's and the codecs' errors; ok is false for errors it does not know.
func voiceError(err error) (*APIError, bool) {
	var noProvider *voice.NoProviderError
	switch {
	case errors.Is(err, audio.ErrTooLarge):
		return &APIError{Status: http.StatusRequestEntityTooLarge, Code: CodeBodyTooLarge, Message: err.Error(), cause: err}, true
	case errors.Is(err, audio.ErrEmpty), errors.Is(err, audio.ErrTruncated), errors.Is(err, audio.ErrMislabelled), errors.Is(err, audio.ErrUnsupportedFormat):
		return &APIError{Status: http.StatusBadRequest, Code: CodeInvalidAudio, Message: err.Error(), cause: err}, true
	case errors.Is(err, voice.ErrTierNotAllowed):
		return &APIError{Status: http.StatusForbidden, Code: CodeTierNotAllowed, Message: err.Error(), cause: err}, true
	case errors.Is(err, voice.ErrBadRequest):
		return &APIError{Status: http.StatusBadRequest, Code: CodeValidation, Message: err.Error(), cause: err}, true
	case errors.As(err, &noProvider):
		return &APIError{Status: http.StatusServiceUnavailable, Code: CodeNoVoiceProvider, Message: err.Error(), cause: err}, true
	}
	return nil, false
}

func (s *Server) voiceRouter() (*voice.Router, error) {
	if s.cfg.Voice == nil {
		return nil, newAPIError(http.StatusServiceUnavailable, CodeVoiceDisabled, "voice is not configured on this gateway")
	}
	return s.cfg.Voice, nil
}

// ttsRequest is the body of POST /api/v2/voice/tts.
type ttsRequest struct {
	Text       string  `json:"text"`
	Voice      string  `json:"voice,omitempty"`
	Format     string  `json:"format,omitempty"`
	SampleRate int     `json:"sampleRate,omitempty"`
	Speed      float64 `json:"speed,omitempty"`
	Model      string  `json:"model,omitempty"`
	Tier       string  `json:"tier,omitempty"`
	// Response is "audio" (default: the audio bytes, details in X-Voice-* headers) or "json"
	// (the details with the audio base64-encoded).
	Response string `json:"response,omitempty"`
}

// voiceTTS synthesizes speech through the tier router.
func (s *Server) voiceTTS(c echo.Context) error {
	router, err := s.voiceRouter()
	if err != nil {
		return err
	}
	var body ttsRequest
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	if strings.TrimSpace(body.Text) == "" {
		return newAPIError(http.StatusBadRequest, CodeValidation, "text: is required")
	}
	if body.Response != "" && body.Response != "audio" && body.Response != "json" {
		return newAPIError(http.StatusBadRequest, CodeValidation, "response: must be audio or json")
	}
	_, plan := s.cfg.Identify(c.Request())
	res, err := router.Speak(c.Request().Context(), voice.SpeakRequest{
		Text: body.Text, Voice: body.Voice, Format: body.Format, SampleRate: body.SampleRate,
		Speed: body.Speed, Model: body.Model, Tier: body.Tier, Plan: plan,
	})
	if err != nil {
		return err
	}
	s.metrics.observeSpeech(*res)
	if body.Response == "json" {
		return c.JSON(http.StatusOK, struct {
			*voice.SpeakResult
			Audio []byte `json:"audio"`
		}{res, res.Audio})
	}
	h := c.Response().Header()
	h.Set("X-Voice-Provider", res.Provider)
	h.Set("X-Voice-Tier", string(res.Tier))
	h.Set("X-Voice-Cached", strconv.FormatBool(res.Cached))
	h.Set("X-Voice-Cost", strconv.FormatFloat(res.Cost, 'f', -1, 64))
	h.Set("X-Voice-Latency-Ms", strconv.FormatFloat(float64(res.Latency.Total.Microseconds())/1000, 'f', 1, 64))
	if res.SampleRate > 0 {
		h.Set("X-Voice-Sample-Rate", strconv.Itoa(res.SampleRate))
	}
	return c.Blob(http.StatusOK, res.ContentType, res.Audio)
}

// formatFromContentType reads an audio Content-Type ("audio/wav", "audio/L16;rate=16000").
func formatFromContentType(ct string) (format string, rate int) {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return "", 0
	}
	rate, _ = strconv.Atoi(params["rate"])
	switch mt {
	case "audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave":
		return voice.FormatWAV, rate
	case "audio/mpeg", "audio/mp3":
		return voice.FormatMP3, rate
	case "audio/l16", "audio/pcm":
		return voice.FormatPCM16, rate
	case "audio/basic", "audio/pcmu":
		return voice.FormatULaw, rate
	case "audio/pcma":
		return voice.FormatALaw, rate
	case "audio/ogg", "audio/opus":
		return voice.FormatOpus, rate
	}
	return "", rate
}

// sttInput is what a transcription request carries, from a raw body or a multipart form.
type sttInput struct {
	audio      []byte
	format     string
	rate       int
	language   string
	model      string
	tier       string
	transcript string
}

// readSTTInput takes raw audio (Content-Type names the format) or multipart/form-data with a
// "file" part and optional fields. The audio is checked here so bad audio gets a clear 4xx
// before any provider is asked.
func readSTTInput(c echo.Context) (*sttInput, error) {
	req := c.Request()
	in := &sttInput{}
	ct := req.Header.Get(echo.HeaderContentType)
	if strings.HasPrefix(strings.ToLower(ct), "multipart/") {
		form, err := c.MultipartForm()
		if err != nil {
			var maxBytes *http.MaxBytesError
			if errors.As(err, &maxBytes) {
				return nil, err
			}
			return nil, newAPIError(http.StatusBadRequest, CodeValidation, "malformed multipart body: %v", err)
		}
		field := func(name string) string {
			if v := form.Value[name]; len(v) > 0 {
				return strings.TrimSpace(v[0])
			}
			return ""
		}
		in.language, in.model, in.tier, in.transcript = field("language"), field("model"), field("tier"), field("transcript")
		in.format = field("format")
		in.rate, _ = strconv.Atoi(field("sample_rate"))
		if files := form.File["file"]; len(files) > 0 {
			f, err := files[0].Open()
			if err != nil {
				return nil, err
			}
			defer f.Close()
			if in.audio, err = io.ReadAll(f); err != nil {
				return nil, err
			}
			if in.format == "" {
				in.format, _ = formatFromContentType(files[0].Header.Get("Content-Type"))
			}
		}
	} else {
		var err error
		if in.audio, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		in.format, in.rate = formatFromContentType(ct)
		q := c.QueryParams()
		in.language, in.model, in.tier, in.transcript = q.Get("language"), q.Get("model"), q.Get("tier"), q.Get("transcript")
		if f := q.Get("format"); f != "" {
			in.format = f
		}
		if r, err := strconv.Atoi(q.Get("sampleRate")); err == nil {
			in.rate = r
		}
	}
	if len(in.audio) == 0 && in.transcript == "" {
		return nil, &APIError{Status: http.StatusBadRequest, Code: CodeInvalidAudio, Message: "no audio: send the audio as the body (or a multipart \"file\" part)", cause: audio.ErrEmpty}
	}
	if len(in.audio) > 0 {
		if err := checkAudio(in); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// checkAudio decodes audio in the formats we can read, so truncated, mislabelled or garbled
// audio is refused with the reason; containers we cannot decode (webm, flac) pass to
// providers that can.
func checkAudio(in *sttInput) error {
	detected := audio.Detect(in.audio)
	format := in.format
	if format == "" {
		format = detected
	}
	switch format {
	case voice.FormatWAV, voice.FormatMP3, voice.FormatPCM16, voice.FormatULaw, voice.FormatALaw:
		if (format == voice.FormatPCM16 || format == voice.FormatULaw || format == voice.FormatALaw) && in.rate == 0 {
			return newAPIError(http.StatusBadRequest, CodeInvalidAudio, "raw %s audio needs its sample rate (Content-Type audio/L16;rate=16000 or ?sampleRate=)", format)
		}
		if _, err := audio.Decode(in.audio, format, in.rate); err != nil {
			return err
		}
		in.format = format
		return nil
	case "":
		return &APIError{Status: http.StatusUnsupportedMediaType, Code: CodeInvalidAudio, Message: "unrecognised audio: send WAV, MP3, Ogg/Opus, WebM, FLAC or raw PCM16/G.711 with its Content-Type", cause: audio.ErrUnsupportedFormat}
	}
	in.format = format
	return nil
}

// voiceSTT transcribes speech through the tier router.
func (s *Server) voiceSTT(c echo.Context) error {
	router, err := s.voiceRouter()
	if err != nil {
		return err
	}
	in, err := readSTTInput(c)
	if err != nil {
		return err
	}
	_, plan := s.cfg.Identify(c.Request())
	res, err := router.Transcribe(c.Request().Context(), voice.TranscribeReq{
		Audio: in.audio, Format: in.format, SampleRate: in.rate, Language: in.language, Model: in.model,
		Transcript: in.transcript, Tier: in.tier, Plan: plan,
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}

func (s *Server) voiceProviders(c echo.Context) error {
	router, err := s.voiceRouter()
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"providers": router.Providers(), "tiers": voice.Tiers})
}

// openAISpeechRequest is the body of POST /v1/audio/speech.
type openAISpeechRequest struct {
	Model string `json:"model"`
	Input string `json:"input"`
	// Voice is a name ("alloy") or a custom voice object ({"id": "voice_1234"}).
	Voice          json.RawMessage `json:"voice"`
	ResponseFormat string          `json:"response_format"`
	Speed          float64         `json:"speed"`
	Instructions   string          `json:"instructions"`
}

// openAISpeechFormats maps OpenAI's response_format onto ours; OpenAI's "pcm" is 24 kHz.
var openAISpeechFormats = map[string]string{"": voice.FormatMP3, "mp3": voice.FormatMP3, "wav": voice.FormatWAV, "pcm": voice.FormatPCM16, "opus": voice.FormatOpus}

// tierForModel lets an OpenAI model name pick a tier: a tier's own name does; OpenAI's model
// names ("tts-1", "whisper-1") leave the choice to the router.
func tierForModel(model string) string {
	for _, t := range voice.Tiers {
		if model == string(t) {
			return model
		}
	}
	return ""
}

func (s *Server) openAISpeech(c echo.Context) error {
	router, err := s.voiceRouter()
	if err != nil {
		return err
	}
	var body openAISpeechRequest
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	if strings.TrimSpace(body.Input) == "" {
		return invalidParam("input", "input: is required")
	}
	format, ok := openAISpeechFormats[body.ResponseFormat]
	if !ok {
		return invalidParam("response_format", "response_format %q is not supported here: use mp3, wav, pcm or opus", body.ResponseFormat)
	}
	rate := 0
	if format == voice.FormatPCM16 {
		rate = 24000
	}
	var voiceName string
	if len(body.Voice) > 0 && json.Unmarshal(body.Voice, &voiceName) != nil {
		var custom struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(body.Voice, &custom) != nil || custom.ID == "" {
			return invalidParam("voice", "voice must be a name or {\"id\": ...}")
		}
		voiceName = custom.ID
	}
	_, plan := s.cfg.Identify(c.Request())
	res, err := router.Speak(c.Request().Context(), voice.SpeakRequest{
		Text: body.Input, Voice: voiceName, Format: format, SampleRate: rate, Speed: body.Speed,
		Tier: tierForModel(body.Model), Plan: plan,
	})
	if err != nil {
		return err
	}
	s.metrics.observeSpeech(*res)
	c.Response().Header().Set("X-Voice-Provider", res.Provider)
	c.Response().Header().Set("X-Voice-Tier", string(res.Tier))
	return c.Blob(http.StatusOK, res.ContentType, res.Audio)
}

func (s *Server) openAITranscriptions(c echo.Context) error {
	router, err := s.voiceRouter()
	if err != nil {
		return err
	}
	if !strings.HasPrefix(strings.ToLower(c.Request().Header.Get(echo.HeaderContentType)), "multipart/") {
		return invalidParam("file", "send multipart/form-data with a file part, as the OpenAI API does")
	}
	in, err := readSTTInput(c)
	if err != nil {
		return err
	}
	responseFormat := c.FormValue("response_format")
	_, plan := s.cfg.Identify(c.Request())
	res, err := router.Transcribe(c.Request().Context(), voice.TranscribeReq{
		Audio: in.audio, Format: in.format, SampleRate: in.rate, Language: in.language,
		Tier: tierForModel(in.model), Plan: plan,
	})
	if err != nil {
		return err
	}
	switch responseFormat {
	case "", "json":
		return c.JSON(http.StatusOK, map[string]any{"text": res.Text, "usage": map[string]any{"type": "duration", "seconds": res.Duration.Seconds()}})
	case "text":
		return c.String(http.StatusOK, res.Text)
	case "verbose_json":
		return c.JSON(http.StatusOK, map[string]any{"task": "transcribe", "language": res.Language, "duration": res.Duration.Seconds(), "text": res.Text})
	}
	return invalidParam("response_format", "response_format %q is not supported here: use json, text or verbose_json", responseFormat)
}
