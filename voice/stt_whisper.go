package voice

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dartmouth-gw/dartmouth/voice/audio"
)

// OpenAI's transcription endpoint refuses files over 25 MB; self-hosted servers usually have a
// similar cap, so the default guards both and fails before uploading.
const sttWhisperMaxUpload = 25 << 20

// A transcript, even verbose_json with segments for 25 MB of audio, is far below this; the cap
// only protects the gateway from a broken server.
const sttWhisperMaxResponse = 16 << 20

// WhisperSTTConfig configures a client of the OpenAI transcription API, which OpenAI itself and
// most self-hosted Whisper servers (faster-whisper-server/speaches, whisper.cpp's server,
// LocalAI, vLLM) speak.
type WhisperSTTConfig struct {
	// BaseURL of the API, including the version path, as OPENAI_BASE_URL and agents/llm use it:
	// requests go to BaseURL + "/audio/transcriptions". Default "https://api.openai.com/v1".
	BaseURL string
	// APIKey is sent as "Authorization: Bearer <key>". Empty sends no Authorization header,
	// which is what most self-hosted servers expect.
	APIKey string
	// Tier the provider is routed and priced as. Default TierCloud when BaseURL's host is
	// api.openai.com, TierSelfHosted otherwise.
	Tier Tier
	// Name reported as the provider; Name + "/" + model is the price key. Default "openai" when
	// BaseURL's host is api.openai.com, "whisper" otherwise.
	Name string
	// Model used when the request names none. Default "whisper-1" (gpt-4o-transcribe and
	// gpt-4o-mini-transcribe work the same way).
	Model string
	// ResponseFormat asked of the server: "verbose_json" returns the audio's duration and
	// language as well as the text, "json" only the text (and, from OpenAI, usage). Default
	// "json" for models named gpt-4o-* (they accept nothing else) and "verbose_json" for the
	// rest, since the duration is what the call is billed by.
	ResponseFormat string
	// MaxUploadBytes refuses bigger audio before sending it. Default 25 MiB (OpenAI's limit);
	// negative means no limit.
	MaxUploadBytes int
	// Timeout bounds one request, on top of the caller's context. Default 2 minutes; negative
	// means none.
	Timeout time.Duration
	// HTTPClient carries the requests. Default http.DefaultClient.
	HTTPClient *http.Client
}

// WhisperSTT transcribes through a Whisper-compatible /audio/transcriptions endpoint. It is safe
// for concurrent use.
type WhisperSTT struct {
	cfg      WhisperSTTConfig
	endpoint string
}

var _ STT = (*WhisperSTT)(nil)

// NewWhisperSTT builds the client; it fails only for a BaseURL that is not an http(s) URL or an
// unknown ResponseFormat.
func NewWhisperSTT(cfg WhisperSTTConfig) (*WhisperSTT, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = "https://api.openai.com/v1"
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("whisper stt: base URL %q is not an http(s) URL", cfg.BaseURL)
	}
	openAI := strings.EqualFold(u.Hostname(), "api.openai.com")
	if cfg.Tier == "" {
		cfg.Tier = TierSelfHosted
		if openAI {
			cfg.Tier = TierCloud
		}
	}
	if cfg.Name == "" {
		cfg.Name = "whisper"
		if openAI {
			cfg.Name = "openai"
		}
	}
	if cfg.Model == "" {
		cfg.Model = "whisper-1"
	}
	switch cfg.ResponseFormat {
	case "", "json", "verbose_json":
	default:
		return nil, fmt.Errorf("whisper stt: response format %q: want json or verbose_json", cfg.ResponseFormat)
	}
	if cfg.MaxUploadBytes == 0 {
		cfg.MaxUploadBytes = sttWhisperMaxUpload
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Minute
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	return &WhisperSTT{cfg: cfg, endpoint: strings.TrimSuffix(cfg.BaseURL, "/") + "/audio/transcriptions"}, nil
}

// Name implements STT.
func (w *WhisperSTT) Name() string { return w.cfg.Name }

// Tier implements STT.
func (w *WhisperSTT) Tier() Tier { return w.cfg.Tier }

// Transcribe implements STT. Containers the API accepts (wav, mp3, ogg/opus, flac, webm, m4a)
// are uploaded as they are; raw PCM16 and G.711 are wrapped in a WAV first. Errors from the
// server are *ProviderError (Op "stt").
func (w *WhisperSTT) Transcribe(ctx context.Context, req TranscribeRequest) (*Transcript, error) {
	if len(req.Audio) == 0 {
		return nil, fmt.Errorf("%s stt: no audio", w.cfg.Name)
	}
	file, err := sttUploadFile(req)
	if err != nil {
		return nil, fmt.Errorf("%s stt: %w", w.cfg.Name, err)
	}
	if w.cfg.MaxUploadBytes > 0 && len(file.data) > w.cfg.MaxUploadBytes {
		return nil, fmt.Errorf("%s stt: %w: %d bytes of audio, the limit is %d", w.cfg.Name, ErrUnsupported, len(file.data), w.cfg.MaxUploadBytes)
	}
	model := req.Model
	if model == "" {
		model = w.cfg.Model
	}
	format := w.cfg.ResponseFormat
	if format == "" {
		format = "verbose_json"
		if strings.HasPrefix(model, "gpt-4o") {
			format = "json"
		}
	}
	lang := sttLanguageCode(req.Language)

	body, contentType, err := sttMultipart(file, model, lang, format)
	if err != nil {
		return nil, fmt.Errorf("%s stt: %w", w.cfg.Name, err)
	}
	if w.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, w.cfg.Timeout)
		defer cancel()
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, w.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%s stt: %w", w.cfg.Name, err)
	}
	hreq.Header.Set("Content-Type", contentType)
	hreq.Header.Set("Accept", "application/json")
	if w.cfg.APIKey != "" {
		hreq.Header.Set("Authorization", "Bearer "+w.cfg.APIKey)
	}
	resp, err := providerDo(w.cfg.HTTPClient, hreq, w.cfg.Name, "stt")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, sttWhisperMaxResponse+1))
	if err != nil {
		if ctxErr := providerContextErr(ctx, w.cfg.Name, "stt"); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, &ProviderError{Provider: w.cfg.Name, Op: "stt", Status: resp.StatusCode, Message: "reading the response failed", Err: err}
	}
	if len(raw) > sttWhisperMaxResponse {
		return nil, &ProviderError{Provider: w.cfg.Name, Op: "stt", Status: resp.StatusCode, Message: "response too large"}
	}
	var out sttWhisperResponse
	if err := json.Unmarshal(raw, &out); err != nil || out.Text == nil {
		if err == nil {
			err = errors.New(`no "text" field`)
		}
		return nil, &ProviderError{Provider: w.cfg.Name, Op: "stt", Status: resp.StatusCode,
			Message: fmt.Sprintf("unexpected response %q", providerSnippet(raw)), Err: err}
	}

	t := &Transcript{
		Text:     strings.TrimSpace(*out.Text),
		Language: sttWhisperLanguage(out.Language, lang),
		Provider: w.cfg.Name,
		Model:    model,
	}
	switch {
	case out.Duration > 0:
		t.Duration = out.Duration.duration()
	case out.Usage != nil && out.Usage.Type == "duration" && out.Usage.Seconds > 0:
		t.Duration = out.Usage.Seconds.duration()
	default:
		// json responses carry no duration (gpt-4o-* bill by tokens, servers vary); measure the
		// audio, which is what the price table charges by. Containers the audio package cannot
		// decode count as 0 rather than failing a transcript already paid for.
		t.Duration = file.duration
		if t.Duration == 0 {
			if pcm, err := audio.Decode(file.data, file.format, 0); err == nil {
				t.Duration = pcm.Duration()
			}
		}
	}
	return t, nil
}

// sttUpload is the file part of a transcription request.
type sttUpload struct {
	data        []byte
	format      string // a voice format name, for decoding it locally
	filename    string // servers pick the decoder from the extension
	contentType string
	duration    time.Duration // of audio decoded to build the file; 0 when passed through
}

// sttContainers maps the formats the transcription API accepts as they are to the file name
// extension and content type it expects. "opus" is Ogg Opus, what OpenAI's TTS returns.
var sttContainers = map[string]struct{ ext, contentType string }{
	FormatWAV:  {"wav", "audio/wav"},
	FormatMP3:  {"mp3", "audio/mpeg"},
	FormatOpus: {"ogg", "audio/ogg"},
	"ogg":      {"ogg", "audio/ogg"},
	"flac":     {"flac", "audio/flac"},
	"webm":     {"webm", "audio/webm"},
	"m4a":      {"m4a", "audio/mp4"},
	"mp4":      {"mp4", "audio/mp4"},
	"mpeg":     {"mpeg", "audio/mpeg"},
	"mpga":     {"mpga", "audio/mpeg"},
}

// sttUploadFile picks the file part for req: containers as they are, anything else (raw PCM16,
// G.711) decoded and wrapped in a WAV at its own rate, since Whisper resamples anyway.
func sttUploadFile(req TranscribeRequest) (sttUpload, error) {
	format := strings.ToLower(req.Format)
	if format == "" {
		format = sttSniffFormat(req.Audio)
		if format == "" {
			return sttUpload{}, errors.New("audio format not given and not recognised from the data")
		}
	}
	if c, ok := sttContainers[format]; ok {
		return sttUpload{data: req.Audio, format: format, filename: "audio." + c.ext, contentType: c.contentType}, nil
	}
	pcm, err := audio.Decode(req.Audio, format, req.SampleRate)
	if err != nil {
		if errors.Is(err, audio.ErrUnsupportedFormat) {
			return sttUpload{}, fmt.Errorf("decode %s audio: %w: %w", format, err, ErrUnsupported)
		}
		return sttUpload{}, fmt.Errorf("decode %s audio: %w", format, err)
	}
	return sttUpload{data: audio.EncodeWAV(pcm), format: FormatWAV, filename: "audio.wav", contentType: "audio/wav", duration: pcm.Duration()}, nil
}

// sttSniffFormat recognises a container by its magic bytes, for callers that did not say what
// they send; "" when it is none the API takes. The audio package knows all but MP4/M4A.
func sttSniffFormat(b []byte) string {
	if f := audio.Detect(b); f != "" {
		return f
	}
	if len(b) >= 8 && string(b[4:8]) == "ftyp" {
		return "m4a"
	}
	return ""
}

// sttMultipart builds the multipart/form-data body. It is built in memory (the audio is in
// memory already and at most MaxUploadBytes) so the request has a Content-Length, which some
// servers require, and can be replayed on a redirect.
func sttMultipart(f sttUpload, model, language, responseFormat string) ([]byte, string, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	h := make(textproto.MIMEHeader)
	// multipart.CreateFormFile would label the audio application/octet-stream; some servers
	// use the part's type to pick a decoder.
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, f.filename))
	h.Set("Content-Type", f.contentType)
	part, err := mw.CreatePart(h)
	if err != nil {
		return nil, "", err
	}
	if _, err := part.Write(f.data); err != nil {
		return nil, "", err
	}
	fields := [][2]string{{"model", model}, {"response_format", responseFormat}}
	if language != "" {
		fields = append(fields, [2]string{"language", language})
	}
	for _, kv := range fields {
		if err := mw.WriteField(kv[0], kv[1]); err != nil {
			return nil, "", err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), mw.FormDataContentType(), nil
}

// sttWhisperResponse is both the json ({"text"}, plus "usage" from OpenAI) and the verbose_json
// ({"text","language","duration",...}) shape.
type sttWhisperResponse struct {
	Text     *string    `json:"text"`
	Language string     `json:"language"`
	Duration sttSeconds `json:"duration"`
	Usage    *struct {
		Type    string     `json:"type"`
		Seconds sttSeconds `json:"seconds"`
	} `json:"usage"`
}

// sttSeconds is a duration in seconds sent as a number or, by older OpenAI responses and some
// servers, as a string.
type sttSeconds float64

func (s *sttSeconds) UnmarshalJSON(b []byte) error {
	str := strings.Trim(string(b), `"`)
	if str == "" || str == "null" {
		*s = 0
		return nil
	}
	f, err := strconv.ParseFloat(str, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) || f > float64(math.MaxInt64/int64(time.Second)) {
		// A malformed duration must not cost us the transcript: measure the audio instead.
		*s = 0
		return nil
	}
	*s = sttSeconds(f)
	return nil
}

func (s sttSeconds) duration() time.Duration {
	return time.Duration(float64(s) * float64(time.Second)).Round(time.Millisecond)
}

// sttLanguageCode turns a language hint into the ISO-639-1 code the API wants: "en-US" -> "en".
func sttLanguageCode(lang string) string {
	lang = strings.TrimSpace(lang)
	if i := strings.IndexAny(lang, "-_"); i >= 0 {
		lang = lang[:i]
	}
	return strings.ToLower(lang)
}

// sttWhisperLanguage reports the transcript's language as an ISO-639-1 code. verbose_json names
// it in English ("english"), servers that follow OpenAI less closely send the code; without
// either, the hint the request gave stands.
func sttWhisperLanguage(got, hint string) string {
	got = strings.ToLower(strings.TrimSpace(got))
	if got == "" {
		return hint
	}
	if code, ok := sttWhisperLanguages[got]; ok {
		return code
	}
	return got
}

// sttWhisperLanguages maps the language names Whisper reports to ISO-639-1 codes (Whisper's own
// table, with "jw" corrected to the ISO "jv", and its aliases).
var sttWhisperLanguages = func() map[string]string {
	const table = "en english,zh chinese,de german,es spanish,ru russian,ko korean,fr french," +
		"ja japanese,pt portuguese,tr turkish,pl polish,ca catalan,nl dutch,ar arabic,sv swedish," +
		"it italian,id indonesian,hi hindi,fi finnish,vi vietnamese,he hebrew,uk ukrainian," +
		"el greek,ms malay,cs czech,ro romanian,da danish,hu hungarian,ta tamil,no norwegian," +
		"th thai,ur urdu,hr croatian,bg bulgarian,lt lithuanian,la latin,mi maori,ml malayalam," +
		"cy welsh,sk slovak,te telugu,fa persian,lv latvian,bn bengali,sr serbian,az azerbaijani," +
		"sl slovenian,kn kannada,et estonian,mk macedonian,br breton,eu basque,is icelandic," +
		"hy armenian,ne nepali,mn mongolian,bs bosnian,kk kazakh,sq albanian,sw swahili," +
		"gl galician,mr marathi,pa punjabi,si sinhala,km khmer,sn shona,yo yoruba,so somali," +
		"af afrikaans,oc occitan,ka georgian,be belarusian,tg tajik,sd sindhi,gu gujarati," +
		"am amharic,yi yiddish,lo lao,uz uzbek,fo faroese,ht haitian creole,ps pashto," +
		"tk turkmen,nn nynorsk,mt maltese,sa sanskrit,lb luxembourgish,my myanmar,bo tibetan," +
		"tl tagalog,mg malagasy,as assamese,tt tatar,haw hawaiian,ln lingala,ha hausa," +
		"ba bashkir,jv javanese,su sundanese,yue cantonese,my burmese,ca valencian,nl flemish," +
		"ht haitian,lb letzeburgesch,ps pushto,pa panjabi,ro moldavian,ro moldovan," +
		"si sinhalese,es castilian,zh mandarin"
	m := make(map[string]string, 120)
	for _, entry := range strings.Split(table, ",") {
		code, name, _ := strings.Cut(entry, " ")
		m[name] = code
	}
	return m
}()
