package voice

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/dartmouth-gw/dartmouth/session"
	"github.com/dartmouth-gw/dartmouth/voice/audio"
)

// The router answers every speech request through the cheapest tier that can serve it.
//
// Tier choice, in this order:
//
//  1. The plan. Only the premium plan may use the premium tier; asking for it on another plan
//     is refused with a *TierNotAllowedError (errors.Is ErrTierNotAllowed), never silently
//     downgraded, so a client learns that its setting has no effect. An empty or unknown plan
//     is the free plan, as at the rate limiter.
//  2. The wish. A named tier uses that tier's providers only. "auto" (or "") walks the server
//     tiers cheapest first: local, self-hosted, cloud, and premium last for the premium plan
//     (premium users who want the premium voice ask for it by name). The native tier is used
//     only when asked for by name, because it means the device does the work: for TTS the
//     server makes no audio at all. One exception for STT: a request that carries the
//     device's own transcript starts at native even on auto, since the work is already done.
//  3. The budget. In cost-saving mode every non-native request walks the server tiers cheapest
//     first, up to the tier asked for (auto: up to cloud, never premium): a dearer tier only
//     answers when every cheaper one failed.
//  4. Health. Each provider has a circuit breaker: after BreakerFailures consecutive failures
//     it is skipped for BreakerCooldown, then one trial request (half-open) decides whether it
//     is back. A skipped or failing provider hands the request to the next provider in the
//     chain, and the failure is recorded for Providers().
//
// What counts as a provider failure: errors and broken audio streams. What does not: the
// caller cancelling, ErrUnsupported (a format, voice or length this provider cannot do), a
// missing device transcript, and HTTP 400/413/422 answers, which describe the request rather
// than the provider's health; those move on to the next provider without touching the
// breaker, so a client sending bad voice names cannot open the circuit for everyone.
//
// TTS goes through the cache first: each sentence is looked up under every provider of the
// chain before any provider is called, and a hit costs $0. Long text is split into sentences
// (SplitSentences), each synthesized cache-then-provider, and joined into one stream: MP3,
// raw PCM16 and G.711 by concatenation (MP3 frames stand alone; raw formats have no header),
// Opus as chained Ogg streams (legal Ogg, RFC 3533 section 4), and WAV by decoding every
// sentence and writing one header over all the samples, resampled to the first sentence's
// rate. The provider that answered the first sentence is tried first for the rest, so one
// reply keeps one voice while that provider works, and the rest is asked for in the first
// sentence's format and (PCM16) rate.
//
// Providers that answer in another format than asked (the local engines always make WAV) are
// converted with voice/audio: to WAV, PCM16 (resampled to the asked rate) and G.711. Nothing
// converts to MP3 or Opus; a provider that cannot make them is skipped for that format from
// then on. A provider that refuses a convertible format (OpenAI has no G.711) is asked for
// PCM16 or its native format and converted.

// Plans, as stored on session.User.Plan.
const (
	PlanFree    = "free"
	PlanPaid    = "paid"
	PlanPremium = "premium"
)

// TierAuto asks the router to choose the tier; "" means the same.
const TierAuto Tier = "auto"

// Errors the router returns; the gateway maps them to statuses.
var (
	// ErrBadRequest wraps every refusal of a request's own content: an unknown tier or
	// format, a bad speed, text that is not UTF-8 (400).
	ErrBadRequest = errors.New("voice: bad request")
	// ErrTierNotAllowed is matched by *TierNotAllowedError (403).
	ErrTierNotAllowed = errors.New("voice: tier not allowed for this plan")
	// ErrNoProvider is matched by *NoProviderError: every provider of the chain was skipped or
	// failed (503).
	ErrNoProvider = errors.New("voice: no provider could serve the request")
	// ErrCircuitOpen is the reason recorded for a provider skipped by its breaker.
	ErrCircuitOpen = errors.New("voice: circuit open")
	// ErrNoAudio is returned for a transcription request with neither audio nor transcript.
	ErrNoAudio = errors.New("voice: no audio to transcribe")
)

// TierNotAllowedError refuses a tier the caller's plan does not include.
type TierNotAllowedError struct {
	Tier Tier
	Plan string
}

func (e *TierNotAllowedError) Error() string {
	return fmt.Sprintf("voice: the %s tier is not included in the %s plan", e.Tier, e.Plan)
}

// Is makes errors.Is(err, ErrTierNotAllowed) true.
func (e *TierNotAllowedError) Is(target error) bool { return target == ErrTierNotAllowed }

// ProviderAttempt is one provider the router tried or skipped, and why it did not answer.
type ProviderAttempt struct {
	Provider string
	Tier     Tier
	Err      error
}

// NoProviderError says that no provider of the chain answered, and why each did not.
type NoProviderError struct {
	Kind     string // "tts" or "stt"
	Tiers    []Tier
	Attempts []ProviderAttempt
}

func (e *NoProviderError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "voice %s: no provider could serve the request (tiers %v)", e.Kind, e.Tiers)
	if len(e.Attempts) == 0 {
		b.WriteString(": no provider is configured for them")
	}
	for i, a := range e.Attempts {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s (%s): %v", a.Provider, a.Tier, a.Err)
	}
	return b.String()
}

// Unwrap lets errors.Is find ErrNoProvider and each attempt's cause (ErrUnsupported when every
// provider refused the format, for example).
func (e *NoProviderError) Unwrap() []error {
	errs := []error{ErrNoProvider}
	for _, a := range e.Attempts {
		errs = append(errs, a.Err)
	}
	return errs
}

// RouterConfig configures a Router.
type RouterConfig struct {
	// TTS and STT are the providers; each declares its Tier. Within a tier they are tried in
	// this order. Names must be unique per kind.
	TTS []TTS
	STT []STT
	// Cache is the TTS cache. Default nil: no caching.
	Cache *TTSCache
	// Pricer prices results ("provider/model" keys). Default nil: every cost is 0.
	Pricer Pricer
	// Budget says whether cost-saving mode is on. Default nil: never.
	Budget BudgetState
	// Clock drives the circuit breakers. Default the system clock. (Latencies are measured
	// with the monotonic wall clock: they are measurements, not schedules.)
	Clock session.Clock
	// BreakerFailures is how many consecutive failures open a provider's circuit. Default 3.
	BreakerFailures int
	// BreakerCooldown is how long an open circuit skips its provider before one trial
	// request. Default 30s.
	BreakerCooldown time.Duration
	// MaxSentenceRunes is where long sentences are cut (SplitSentencesMax). Default
	// DefaultMaxSentenceRunes.
	MaxSentenceRunes int
	// MaxAudioBytes bounds audio the router holds in memory to convert or join. Default
	// 32 MiB.
	MaxAudioBytes int64
	// Logger receives provider failures and cache problems. Default slog.Default().
	Logger *slog.Logger
}

// Router picks a tier and a provider for each speech request. It is safe for concurrent use.
type Router struct {
	cfg RouterConfig
	tts []*ttsRoute
	stt []*sttRoute
}

type ttsRoute struct {
	p  TTS
	br *breaker
	// cannot remembers formats this provider was asked for and could not deliver (it returned
	// another format the router cannot convert to, such as WAV when MP3 was asked), so it is
	// not called for them again. Providers' formats do not change while the process runs.
	mu     sync.Mutex
	cannot map[string]bool
}

type sttRoute struct {
	p  STT
	br *breaker
}

// NewRouter checks the providers and builds the router.
func NewRouter(cfg RouterConfig) (*Router, error) {
	if cfg.Clock == nil {
		cfg.Clock = session.SystemClock{}
	}
	if cfg.BreakerFailures <= 0 {
		cfg.BreakerFailures = 3
	}
	if cfg.BreakerCooldown <= 0 {
		cfg.BreakerCooldown = 30 * time.Second
	}
	if cfg.MaxSentenceRunes <= 0 {
		cfg.MaxSentenceRunes = DefaultMaxSentenceRunes
	}
	if cfg.MaxAudioBytes <= 0 {
		cfg.MaxAudioBytes = 32 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Router{cfg: cfg}
	seen := map[string]bool{}
	for i, p := range cfg.TTS {
		if p == nil {
			return nil, fmt.Errorf("voice router: TTS provider %d is nil", i)
		}
		if err := checkProvider("tts", p.Name(), p.Tier(), seen); err != nil {
			return nil, err
		}
		r.tts = append(r.tts, &ttsRoute{p: p, br: newBreaker(), cannot: map[string]bool{}})
	}
	clear(seen)
	for i, p := range cfg.STT {
		if p == nil {
			return nil, fmt.Errorf("voice router: STT provider %d is nil", i)
		}
		if err := checkProvider("stt", p.Name(), p.Tier(), seen); err != nil {
			return nil, err
		}
		r.stt = append(r.stt, &sttRoute{p: p, br: newBreaker()})
	}
	return r, nil
}

func checkProvider(kind, name string, tier Tier, seen map[string]bool) error {
	if name == "" {
		return fmt.Errorf("voice router: a %s provider has no name", kind)
	}
	if seen[name] {
		return fmt.Errorf("voice router: two %s providers are named %q", kind, name)
	}
	seen[name] = true
	if !slices.Contains(Tiers, tier) {
		return fmt.Errorf("voice router: %s provider %q has unknown tier %q", kind, name, tier)
	}
	return nil
}

// Latency is how long a request took: to its first byte of audio (TTS: the first byte the
// router had from the cache or a provider; STT: the transcript) and in total.
type Latency struct {
	FirstByte time.Duration
	Total     time.Duration
}

// MarshalJSON writes milliseconds, as the API reports durations.
func (l Latency) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		FirstByteMs float64 `json:"firstByteMs"`
		TotalMs     float64 `json:"totalMs"`
	}{float64(l.FirstByte) / float64(time.Millisecond), float64(l.Total) / float64(time.Millisecond)})
}

// SpeakRequest asks the router for speech.
type SpeakRequest struct {
	Text string
	// Voice, Format, SampleRate, Speed and Model are passed to the provider (see
	// SpeechRequest). An empty Format takes the first provider's native format; the rest of a
	// multi-sentence text then follows it.
	Voice      string
	Format     string
	SampleRate int
	Speed      float64
	Model      string
	// Tier is the caller's wish: "" or "auto", or a tier name.
	Tier string
	// Plan is the caller's plan: PlanFree (also for "" and unknown plans), PlanPaid,
	// PlanPremium.
	Plan string
}

// SpeakPart is how one sentence was served.
type SpeakPart struct {
	Text     string  `json:"text"`
	Provider string  `json:"provider"`
	Model    string  `json:"model"`
	Tier     Tier    `json:"tier"`
	Cached   bool    `json:"cached"`
	Cost     float64 `json:"cost"`
	Bytes    int64   `json:"bytes"`
}

// SpeakResult is synthesized speech and how it was made. Provider, Model and Tier are those
// of the first sentence (which the rest follow while that provider works); Parts has each.
type SpeakResult struct {
	// Audio is the whole audio; nil from SpeakTo, which wrote it to its writer.
	Audio       []byte      `json:"-"`
	Format      string      `json:"format"`
	ContentType string      `json:"contentType"`
	SampleRate  int         `json:"sampleRate,omitempty"` // 0 when unknown or carried by the format (mp3)
	Provider    string      `json:"provider"`
	Model       string      `json:"model"`
	Voice       string      `json:"voice"`
	Tier        Tier        `json:"tier"`
	Cached      bool        `json:"cached"`     // every sentence came from the cache
	CostSaving  bool        `json:"costSaving"` // cost-saving mode chose the tiers
	Chars       int         `json:"chars"`      // characters synthesized (cached ones included)
	Cost        float64     `json:"cost"`       // USD; cache hits cost 0
	Bytes       int64       `json:"bytes"`
	Latency     Latency     `json:"latency"`
	Parts       []SpeakPart `json:"parts"`
}

// Speak synthesizes req.Text and returns the whole audio in the result. When a provider fails
// partway through a sentence the sentence is redone by the next provider, since nothing has
// left the router yet.
func (r *Router) Speak(ctx context.Context, req SpeakRequest) (*SpeakResult, error) {
	var buf bytes.Buffer
	res, err := r.speak(ctx, req, &buf, false)
	if err != nil {
		return nil, err
	}
	res.Audio = buf.Bytes()
	return res, nil
}

// SpeakTo synthesizes req.Text and writes the audio to w as it is made: a single sentence
// streams straight from the provider (a provider failing after its first byte then fails the
// request, since the bytes are gone), longer text goes out sentence by sentence. Multi-sentence
// WAV is written once at the end, because its header must hold the total length.
func (r *Router) SpeakTo(ctx context.Context, req SpeakRequest, w io.Writer) (*SpeakResult, error) {
	return r.speak(ctx, req, w, true)
}

// validFormats are the formats a request may ask for ("" is the provider's choice).
var validFormats = []string{"", FormatWAV, FormatPCM16, FormatMP3, FormatULaw, FormatALaw, FormatOpus}

func (r *Router) checkSpeak(req SpeakRequest) error {
	if !utf8.ValidString(req.Text) {
		return fmt.Errorf("%w: the text is not valid UTF-8", ErrBadRequest)
	}
	if !slices.Contains(validFormats, req.Format) {
		return fmt.Errorf("%w: unknown audio format %q (want one of wav, pcm16, mp3, g711_ulaw, g711_alaw, opus)", ErrBadRequest, req.Format)
	}
	if req.SampleRate != 0 && (req.SampleRate < audio.MinRate || req.SampleRate > audio.MaxRate) {
		return fmt.Errorf("%w: sample rate %d Hz is outside %d..%d", ErrBadRequest, req.SampleRate, audio.MinRate, audio.MaxRate)
	}
	if math.IsNaN(req.Speed) || math.IsInf(req.Speed, 0) || req.Speed < 0 {
		return fmt.Errorf("%w: speed %v: want a positive factor (1 is normal, 0 means 1)", ErrBadRequest, req.Speed)
	}
	return nil
}

func (r *Router) speak(ctx context.Context, req SpeakRequest, w io.Writer, stream bool) (*SpeakResult, error) {
	start := time.Now()
	if err := r.checkSpeak(req); err != nil {
		return nil, err
	}
	sentences := SplitSentencesMax(req.Text, r.cfg.MaxSentenceRunes)
	if len(sentences) == 0 {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, ErrEmptyText)
	}
	tiers, saving, err := r.planTiers(ctx, req.Tier, req.Plan, false)
	if err != nil {
		return nil, err
	}
	var chain []*ttsRoute
	for _, t := range tiers {
		for _, e := range r.tts {
			if e.p.Tier() == t {
				chain = append(chain, e)
			}
		}
	}
	if len(chain) == 0 {
		return nil, &NoProviderError{Kind: "tts", Tiers: tiers}
	}

	j := &speakJob{r: r, req: req, chain: chain, tiers: tiers, format: req.Format, rate: req.SampleRate, start: start}
	res := &SpeakResult{CostSaving: saving}
	var wav *audio.PCM // the joined samples of a multi-sentence WAV
	for i, text := range sentences {
		var out *sentenceOut
		if stream && len(sentences) == 1 {
			out = &sentenceOut{w: w, job: j}
		} else {
			out = &sentenceOut{buf: &bytes.Buffer{}, job: j}
		}
		part, got, err := j.sentence(ctx, text, out)
		if err != nil {
			return nil, err
		}
		res.Parts = append(res.Parts, part)
		res.Chars += utf8.RuneCountInString(text)
		res.Cost += part.Cost
		if i == 0 {
			res.Format, res.SampleRate = got.format, got.rate
			res.Provider, res.Model, res.Voice, res.Tier = part.Provider, part.Model, got.voice, part.Tier
			// The rest of the text follows the first sentence's format and rate, whatever the
			// provider that ends up answering it prefers.
			j.format = got.format
			if got.format == FormatPCM16 && j.rate == 0 {
				j.rate = got.rate
			}
		}
		if out.buf == nil {
			continue // streamed
		}
		if got.format == FormatWAV && len(sentences) > 1 {
			pcm, err := audio.DecodeWAV(out.buf.Bytes())
			if err != nil {
				return nil, fmt.Errorf("voice router: joining sentence %d: %w", i+1, err)
			}
			if wav == nil {
				wav = &audio.PCM{Rate: pcm.Rate}
			}
			if pcm.Rate != wav.Rate {
				pcm = audio.Resample(pcm, wav.Rate)
			}
			wav.Samples = append(wav.Samples, pcm.Samples...)
			continue
		}
		if _, err := w.Write(out.buf.Bytes()); err != nil {
			return nil, fmt.Errorf("voice router: writing audio: %w", err)
		}
		res.Bytes += int64(out.buf.Len())
	}
	if wav != nil {
		b := audio.EncodeWAV(*wav)
		if _, err := w.Write(b); err != nil {
			return nil, fmt.Errorf("voice router: writing audio: %w", err)
		}
		res.Bytes, res.SampleRate = int64(len(b)), wav.Rate
	} else if stream && len(sentences) == 1 {
		res.Bytes = res.Parts[0].Bytes
	}
	res.ContentType = ttsContentType(res.Format, res.SampleRate)
	res.Cached = true
	for _, p := range res.Parts {
		res.Cached = res.Cached && p.Cached
	}
	res.Latency = Latency{FirstByte: j.firstByte, Total: time.Since(start)}
	return res, nil
}

// planTiers turns the wish, the plan and the budget into the tiers to try, in order.
// nativeFirst starts an auto chain at the native tier (STT with the device's transcript).
func (r *Router) planTiers(ctx context.Context, wish, plan string, nativeFirst bool) (tiers []Tier, saving bool, err error) {
	w := Tier(strings.ToLower(strings.TrimSpace(wish)))
	if w == "" {
		w = TierAuto
	}
	if w != TierAuto && !slices.Contains(Tiers, w) {
		return nil, false, fmt.Errorf("%w: unknown voice tier %q (want auto or one of %v)", ErrBadRequest, wish, Tiers)
	}
	premium := plan == PlanPremium
	if w == TierPremium && !premium {
		if plan == "" {
			plan = PlanFree
		}
		return nil, false, &TierNotAllowedError{Tier: w, Plan: plan}
	}
	if w == TierNative {
		return []Tier{TierNative}, false, nil
	}
	saving = r.cfg.Budget != nil && r.cfg.Budget.CostSaving(ctx)
	var ceiling Tier
	switch {
	case w == TierAuto && (saving || !premium):
		ceiling = TierCloud
	case w == TierAuto:
		ceiling = TierPremium
	case saving:
		ceiling = w
	default:
		return []Tier{w}, saving, nil
	}
	if nativeFirst && w == TierAuto {
		tiers = append(tiers, TierNative)
	}
	for _, t := range Tiers[1:] { // the server tiers, cheapest first
		tiers = append(tiers, t)
		if t == ceiling {
			break
		}
	}
	return tiers, saving, nil
}

// speakJob is one Speak call: the chain, the format the text is being made in, and the
// provider that answered so far.
type speakJob struct {
	r      *Router
	req    SpeakRequest
	chain  []*ttsRoute
	tiers  []Tier
	format string // wanted for every sentence; "" until the first one decides
	rate   int
	sticky *ttsRoute

	start     time.Time
	firstByte time.Duration
}

// order is the chain with the provider that answered the previous sentence first.
func (j *speakJob) order() []*ttsRoute {
	if j.sticky == nil || j.sticky == j.chain[0] {
		return j.chain
	}
	out := []*ttsRoute{j.sticky}
	for _, e := range j.chain {
		if e != j.sticky {
			out = append(out, e)
		}
	}
	return out
}

// sentenceOut receives one sentence's audio: straight to the caller's writer (w) or into a
// buffer that a failed attempt can discard (buf).
type sentenceOut struct {
	w       io.Writer
	buf     *bytes.Buffer
	job     *speakJob
	written int64
	sinkErr error // the caller's writer failed: stop, this is not the provider's fault
}

func (o *sentenceOut) Write(p []byte) (int, error) {
	if len(p) > 0 && o.job.firstByte == 0 {
		o.job.firstByte = max(time.Since(o.job.start), time.Nanosecond)
	}
	var n int
	var err error
	if o.buf != nil {
		n, err = o.buf.Write(p)
	} else {
		n, err = o.w.Write(p)
		if err != nil {
			o.sinkErr = err
		}
	}
	o.written += int64(n)
	return n, err
}

// retryable reports whether a failed attempt can be redone by another provider.
func (o *sentenceOut) retryable() bool { return o.buf != nil || o.written == 0 }

func (o *sentenceOut) reset() {
	if o.buf != nil {
		o.buf.Reset()
		o.written = 0
	}
}

// produced describes the audio a sentence came out as.
type produced struct {
	format string
	rate   int
	voice  string
}

// cacheKey is the sentence's cache key under provider p. It holds the request as the client
// made it (not the format pinned by an earlier sentence), so the same sentence hits whether it
// is said alone or inside a paragraph; the entry's own format is checked on the way out.
func (j *speakJob) cacheKey(p TTS, text string) TTSCacheKey {
	return TTSCacheKey{Provider: p.Name(), Model: j.req.Model, Voice: j.req.Voice, Format: j.req.Format,
		SampleRate: j.req.SampleRate, Speed: j.req.Speed, Text: text}
}

func (j *speakJob) sentence(ctx context.Context, text string, out *sentenceOut) (SpeakPart, produced, error) {
	order := j.order()
	if part, got, ok, err := j.fromCache(ctx, text, order, out); ok || err != nil {
		return part, got, err
	}
	var attempts []ProviderAttempt
	r := j.r
	for _, e := range order {
		name, tier := e.p.Name(), e.p.Tier()
		if e.cannotDo(j.format) {
			attempts = append(attempts, ProviderAttempt{name, tier, fmt.Errorf("%s tts: cannot produce %s: %w", name, j.format, ErrUnsupported)})
			continue
		}
		if !e.br.acquire(r.cfg.Clock.Now(), r.cfg.BreakerCooldown) {
			attempts = append(attempts, ProviderAttempt{name, tier, ErrCircuitOpen})
			continue
		}
		began := time.Now()
		part, got, err := j.attempt(ctx, e, text, out)
		if err == nil {
			e.br.succeed(r.cfg.Clock.Now(), time.Since(began))
			j.sticky = e
			return part, got, nil
		}
		if out.sinkErr != nil {
			e.br.release()
			return SpeakPart{}, produced{}, fmt.Errorf("voice router: writing audio: %w", out.sinkErr)
		}
		switch classify(ctx, err) {
		case outcomeAbort:
			e.br.release()
			return SpeakPart{}, produced{}, fmt.Errorf("voice router: %w", ctx.Err())
		case outcomeSkip:
			e.br.release()
		default:
			e.br.fail(r.cfg.Clock.Now(), time.Since(began), r.cfg.BreakerFailures, err)
			r.cfg.Logger.Warn("voice router: tts provider failed", "provider", name, "tier", tier, "err", err)
		}
		attempts = append(attempts, ProviderAttempt{name, tier, err})
		if !out.retryable() {
			return SpeakPart{}, produced{}, fmt.Errorf("voice router: %s failed after audio was sent: %w", name, err)
		}
		out.reset()
	}
	return SpeakPart{}, produced{}, &NoProviderError{Kind: "tts", Tiers: j.tiers, Attempts: attempts}
}

// fromCache serves the sentence from the cache when any provider of the chain has it in the
// format this job needs. ok is false on a miss (or a cache read that failed before any byte
// left), and the providers are asked.
func (j *speakJob) fromCache(ctx context.Context, text string, order []*ttsRoute, out *sentenceOut) (SpeakPart, produced, bool, error) {
	c := j.r.cfg.Cache
	if c == nil {
		return SpeakPart{}, produced{}, false, nil
	}
	var keys []TTSCacheKey
	var routes []*ttsRoute
	for _, e := range order {
		if e.p.Tier() == TierNative {
			continue // the device speaks: there is nothing to cache
		}
		keys = append(keys, j.cacheKey(e.p, text))
		routes = append(routes, e)
	}
	if len(keys) == 0 {
		return SpeakPart{}, produced{}, false, nil
	}
	i, rc, entry, err := c.getFirst(ctx, keys, j.accepts)
	if errors.Is(err, ErrTTSCacheMiss) {
		return SpeakPart{}, produced{}, false, nil
	}
	if err != nil {
		return SpeakPart{}, produced{}, false, fmt.Errorf("voice router: %w", err)
	}
	n, readErr, writeErr := copyAudio(out, rc)
	_ = rc.Close()
	if writeErr != nil {
		return SpeakPart{}, produced{}, false, fmt.Errorf("voice router: writing audio: %w", writeErr)
	}
	if readErr != nil {
		if ctx.Err() != nil {
			return SpeakPart{}, produced{}, false, fmt.Errorf("voice router: %w", ctx.Err())
		}
		j.r.cfg.Logger.Warn("voice router: reading cached audio failed", "provider", entry.Provider, "err", readErr)
		if !out.retryable() {
			return SpeakPart{}, produced{}, false, fmt.Errorf("voice router: reading cached audio: %w", readErr)
		}
		out.reset()
		return SpeakPart{}, produced{}, false, nil
	}
	j.sticky = routes[i]
	part := SpeakPart{Text: text, Provider: entry.Provider, Model: entry.Model, Tier: routes[i].p.Tier(), Cached: true, Bytes: n}
	return part, produced{format: entry.Format, rate: entry.SampleRate, voice: entry.Voice}, true, nil
}

// accepts reports whether a cached entry fits the format this job is producing.
func (j *speakJob) accepts(e *TTSCacheEntry) bool {
	if j.format != "" && e.Format != j.format {
		return false
	}
	return !(e.Format == FormatPCM16 && j.rate != 0 && e.SampleRate != j.rate)
}

// attempt asks one provider for the sentence and writes it to out, converting it to the
// wanted format when the provider answered in another one, and caching it when complete.
func (j *speakJob) attempt(ctx context.Context, e *ttsRoute, text string, out *sentenceOut) (SpeakPart, produced, error) {
	r := j.r
	sreq := SpeechRequest{Text: text, Voice: j.req.Voice, Format: j.format, SampleRate: j.rate, Speed: j.req.Speed, Model: j.req.Model}
	sp, err := e.p.Synthesize(ctx, sreq)
	if errors.Is(err, ErrUnsupported) && convertible(j.format) {
		// The provider cannot make this format (OpenAI has no G.711), but the router can
		// convert: ask for raw PCM, then for whatever the provider makes natively.
		for _, alt := range []string{FormatPCM16, ""} {
			if alt == j.format {
				continue
			}
			altReq := sreq
			altReq.Format = alt
			if j.format == FormatULaw || j.format == FormatALaw {
				altReq.SampleRate = 8000 // what G.711 is sent at: no resampling if the provider has it
			}
			if alt == "" {
				altReq.SampleRate = 0
			}
			if sp, err = e.p.Synthesize(ctx, altReq); !errors.Is(err, ErrUnsupported) {
				break
			}
		}
	}
	if err != nil {
		return SpeakPart{}, produced{}, err
	}
	if sp == nil || sp.Audio == nil {
		return SpeakPart{}, produced{}, fmt.Errorf("%s tts: returned no audio stream", e.p.Name())
	}
	got := produced{format: sp.Format, rate: sp.SampleRate, voice: sp.Voice}
	if got.format == "" {
		got.format = j.format
	}
	if got.voice == "" {
		got.voice = j.req.Voice
	}
	model := sp.Model
	if model == "" {
		model = j.req.Model
	}
	cacheOK := r.cfg.Cache != nil && e.p.Tier() != TierNative
	entry := TTSCacheEntry{Provider: e.p.Name(), Model: model, Voice: got.voice, SampleRate: sp.SampleRate, ContentType: sp.ContentType}
	var n int64

	if j.needsConversion(got) {
		data, err := readAllLimited(sp.Audio, r.cfg.MaxAudioBytes)
		if cerr := sp.Audio.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			return SpeakPart{}, produced{}, fmt.Errorf("%s tts: reading audio: %w", e.p.Name(), err)
		}
		conv, rate, err := convertAudio(data, got.format, got.rate, j.format, j.rate)
		if err != nil {
			if errors.Is(err, ErrUnsupported) {
				e.markCannot(j.format)
			}
			return SpeakPart{}, produced{}, fmt.Errorf("%s tts: %w", e.p.Name(), err)
		}
		got.format, got.rate = j.format, rate
		var writeErr error
		if n, writeErr = copyBytes(out, conv); writeErr != nil {
			return SpeakPart{}, produced{}, writeErr
		}
		if cacheOK {
			entry.Format, entry.SampleRate, entry.ContentType = got.format, got.rate, ""
			if err := r.cfg.Cache.Put(ctx, j.cacheKey(e.p, text), entry, bytes.NewReader(conv)); err != nil && ctx.Err() == nil {
				r.cfg.Logger.Warn("voice router: caching audio failed", "provider", e.p.Name(), "err", err)
			}
		}
	} else {
		src := sp.Audio
		if cacheOK {
			entry.Format = got.format
			src = r.cfg.Cache.Tee(ctx, j.cacheKey(e.p, text), entry, sp.Audio)
		}
		var readErr, writeErr error
		n, readErr, writeErr = copyAudio(out, src)
		// Closing the tee stores the audio, but only after a clean end of stream and a clean
		// close: a cut or failed stream is never cached.
		closeErr := src.Close()
		switch {
		case writeErr != nil:
			return SpeakPart{}, produced{}, writeErr
		case readErr != nil:
			return SpeakPart{}, produced{}, fmt.Errorf("%s tts: audio stream failed: %w", e.p.Name(), readErr)
		case closeErr != nil:
			return SpeakPart{}, produced{}, fmt.Errorf("%s tts: audio stream failed: %w", e.p.Name(), closeErr)
		}
	}
	if n == 0 {
		return SpeakPart{}, produced{}, fmt.Errorf("%s tts: the audio stream was empty", e.p.Name())
	}
	part := SpeakPart{Text: text, Provider: e.p.Name(), Model: model, Tier: e.p.Tier(), Bytes: n}
	if r.cfg.Pricer != nil {
		part.Cost = r.cfg.Pricer.TTSCost(e.p.Name()+"/"+model, utf8.RuneCountInString(text))
	}
	return part, got, nil
}

// needsConversion reports whether the provider's audio must be decoded and re-encoded to be
// what the job wants: another format, or raw PCM / WAV at another rate than asked.
func (j *speakJob) needsConversion(got produced) bool {
	switch {
	case j.format == "":
		return false
	case got.format != j.format:
		return true
	case j.format == FormatPCM16:
		return j.rate != 0 && got.rate != 0 && got.rate != j.rate
	case j.format == FormatWAV:
		return j.rate != 0 // the rate is inside the file: decode to see it
	}
	return false
}

// convertible reports whether the router can make format out of a provider's other audio.
func convertible(format string) bool {
	switch format {
	case FormatPCM16, FormatWAV, FormatULaw, FormatALaw:
		return true
	}
	return false
}

// convertAudio turns data (format from at fromRate) into format to at toRate (0: keep the
// rate). A target the audio package cannot encode (MP3, Opus) is ErrUnsupported, so the router
// moves on to a provider that makes it natively.
func convertAudio(data []byte, from string, fromRate int, to string, toRate int) ([]byte, int, error) {
	if to == FormatMP3 || to == FormatOpus {
		return nil, 0, fmt.Errorf("answered %s, which cannot be converted to %s: %w", from, to, ErrUnsupported)
	}
	pcm, err := audio.Decode(data, from, fromRate)
	if err != nil {
		if errors.Is(err, audio.ErrUnsupportedFormat) {
			return nil, 0, fmt.Errorf("answered %s, which cannot be converted to %s: %v: %w", from, to, err, ErrUnsupported)
		}
		return nil, 0, fmt.Errorf("audio in %s is broken: %w", from, err)
	}
	if from == FormatWAV && to == FormatWAV && (toRate == 0 || toRate == pcm.Rate) {
		return data, pcm.Rate, nil // already right: keep the provider's bytes
	}
	if toRate != 0 && (to == FormatWAV || to == FormatPCM16) && pcm.Rate != toRate {
		pcm = audio.Resample(pcm, toRate)
	}
	b, err := audio.Encode(pcm, to)
	if err != nil {
		return nil, 0, fmt.Errorf("converting %s to %s: %v: %w", from, to, err, ErrUnsupported)
	}
	rate := pcm.Rate
	if to == FormatULaw || to == FormatALaw {
		rate = 8000
	}
	return b, rate, nil
}

func (e *ttsRoute) cannotDo(format string) bool {
	if format == "" {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cannot[format]
}

func (e *ttsRoute) markCannot(format string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cannot[format] = true
}

// copyAudio copies src to dst, telling a failing source (the provider's fault) from a failing
// destination (the caller's).
func copyAudio(dst io.Writer, src io.Reader) (n int64, readErr, writeErr error) {
	buf := make([]byte, 32<<10)
	for {
		m, err := src.Read(buf)
		if m > 0 {
			w, werr := dst.Write(buf[:m])
			n += int64(w)
			if werr == nil && w < m {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				return n, nil, werr
			}
		}
		if errors.Is(err, io.EOF) {
			return n, nil, nil
		}
		if err != nil {
			return n, err, nil
		}
	}
}

func copyBytes(dst io.Writer, b []byte) (int64, error) {
	n, err := dst.Write(b)
	return int64(n), err
}

func readAllLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("audio over %d bytes", limit)
	}
	return b, nil
}

type outcome int

const (
	outcomeFail  outcome = iota // the provider is unhealthy: count it
	outcomeSkip                 // the provider cannot do this request: next, without blame
	outcomeAbort                // the caller gave up
)

func classify(ctx context.Context, err error) outcome {
	if ctx.Err() != nil {
		return outcomeAbort
	}
	if errors.Is(err, ErrUnsupported) || errors.Is(err, ErrNoTranscript) || errors.Is(err, ErrEmptyText) {
		return outcomeSkip
	}
	var pe *ProviderError
	if errors.As(err, &pe) {
		switch pe.Status {
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
			return outcomeSkip
		}
	}
	return outcomeFail
}

// TranscribeReq asks the router for a transcript.
type TranscribeReq struct {
	// Audio, Format, SampleRate, Language, Model and Transcript are passed to the provider
	// (see TranscribeRequest).
	Audio      []byte
	Format     string
	SampleRate int
	Language   string
	Model      string
	Transcript string
	// Tier is the caller's wish: "" or "auto", or a tier name.
	Tier string
	// Plan is the caller's plan, as in SpeakRequest.
	Plan string
}

// TranscribeResult is a transcript and how it was made.
type TranscribeResult struct {
	Text       string        `json:"text"`
	Language   string        `json:"language,omitempty"`
	Duration   time.Duration `json:"-"` // of the audio; what STT is billed by
	DurationMs int64         `json:"durationMs"`
	Provider   string        `json:"provider"`
	Model      string        `json:"model"`
	Tier       Tier          `json:"tier"`
	CostSaving bool          `json:"costSaving"`
	Cost       float64       `json:"cost"`
	Latency    Latency       `json:"latency"`
}

// Transcribe turns speech into text through the cheapest tier that serves.
func (r *Router) Transcribe(ctx context.Context, req TranscribeReq) (*TranscribeResult, error) {
	start := time.Now()
	if len(req.Audio) == 0 && strings.TrimSpace(req.Transcript) == "" {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, ErrNoAudio)
	}
	tiers, saving, err := r.planTiers(ctx, req.Tier, req.Plan, strings.TrimSpace(req.Transcript) != "")
	if err != nil {
		return nil, err
	}
	treq := TranscribeRequest{Audio: req.Audio, Format: req.Format, SampleRate: req.SampleRate,
		Language: req.Language, Model: req.Model, Transcript: req.Transcript}
	var attempts []ProviderAttempt
	for _, t := range tiers {
		for _, e := range r.stt {
			if e.p.Tier() != t {
				continue
			}
			name := e.p.Name()
			if !e.br.acquire(r.cfg.Clock.Now(), r.cfg.BreakerCooldown) {
				attempts = append(attempts, ProviderAttempt{name, t, ErrCircuitOpen})
				continue
			}
			began := time.Now()
			tr, err := e.p.Transcribe(ctx, treq)
			if err == nil && tr == nil {
				err = fmt.Errorf("%s stt: returned no transcript", name)
			}
			if err != nil {
				switch classify(ctx, err) {
				case outcomeAbort:
					e.br.release()
					return nil, fmt.Errorf("voice router: %w", ctx.Err())
				case outcomeSkip:
					e.br.release()
				default:
					e.br.fail(r.cfg.Clock.Now(), time.Since(began), r.cfg.BreakerFailures, err)
					r.cfg.Logger.Warn("voice router: stt provider failed", "provider", name, "tier", t, "err", err)
				}
				attempts = append(attempts, ProviderAttempt{name, t, err})
				continue
			}
			e.br.succeed(r.cfg.Clock.Now(), time.Since(began))
			res := &TranscribeResult{Text: tr.Text, Language: tr.Language, Duration: tr.Duration,
				Provider: name, Model: tr.Model, Tier: t, CostSaving: saving}
			if res.Model == "" {
				res.Model = req.Model
			}
			if res.Duration == 0 && len(req.Audio) > 0 {
				// Billing needs the length; a provider that did not report it is measured here.
				if pcm, err := audio.Decode(req.Audio, req.Format, req.SampleRate); err == nil {
					res.Duration = pcm.Duration()
				}
			}
			res.DurationMs = res.Duration.Milliseconds()
			if r.cfg.Pricer != nil && t != TierNative {
				res.Cost = r.cfg.Pricer.STTCost(name+"/"+res.Model, res.Duration)
			}
			total := time.Since(start)
			res.Latency = Latency{FirstByte: total, Total: total}
			return res, nil
		}
	}
	return nil, &NoProviderError{Kind: "stt", Tiers: tiers, Attempts: attempts}
}

// Circuit states.
const (
	CircuitClosed   = "closed"
	CircuitOpen     = "open"
	CircuitHalfOpen = "half-open"
)

// ProviderStatus is one provider's health, for GET /api/v2/voice/providers.
type ProviderStatus struct {
	Name string `json:"name"`
	Kind string `json:"kind"` // "tts" or "stt"
	Tier Tier   `json:"tier"`
	// Available is false while the circuit is open, or half-open with its trial request
	// running.
	Available bool   `json:"available"`
	Circuit   string `json:"circuit"`
	// Failures counts consecutive failures (0 after a success).
	Failures    int        `json:"consecutiveFailures"`
	LastError   string     `json:"lastError,omitempty"`
	LastErrorAt *time.Time `json:"lastErrorAt,omitempty"`
	// Recent is the last requests' success rate and duration (p50/p95) over a sliding window
	// (the last 200 of the last 5 minutes), from real traffic: a TTS request's duration runs to
	// its sentence's last byte, an STT request's to the transcript.
	Recent session.CallStats `json:"recent"`
}

// Providers lists every provider, TTS then STT, cheapest tier first.
func (r *Router) Providers() []ProviderStatus {
	now := r.cfg.Clock.Now()
	var out []ProviderStatus
	add := func(kind, name string, tier Tier, br *breaker) {
		s := br.status(now, r.cfg.BreakerCooldown)
		s.Name, s.Kind, s.Tier = name, kind, tier
		out = append(out, s)
	}
	for _, t := range Tiers {
		for _, e := range r.tts {
			if e.p.Tier() == t {
				add("tts", e.p.Name(), t, e.br)
			}
		}
	}
	for _, t := range Tiers {
		for _, e := range r.stt {
			if e.p.Tier() == t {
				add("stt", e.p.Name(), t, e.br)
			}
		}
	}
	return out
}

// breaker is a provider's circuit. Every acquire that returned true is followed by exactly one
// of succeed, fail or release.
type breaker struct {
	mu        sync.Mutex
	failures  int
	open      bool
	openedAt  time.Time
	probing   bool // half-open: the one trial request is running
	lastErr   string
	lastErrAt time.Time
	recent    *session.CallWindow
}

func newBreaker() *breaker { return &breaker{recent: session.NewCallWindow(0, 0)} }

// acquire reports whether a request may go to the provider now.
func (b *breaker) acquire(now time.Time, cooldown time.Duration) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open {
		return true
	}
	if now.Before(b.openedAt.Add(cooldown)) || b.probing {
		return false
	}
	b.probing = true
	return true
}

func (b *breaker) succeed(now time.Time, took time.Duration) {
	b.recent.Record(now, took, true)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures, b.open, b.probing = 0, false, false
}

func (b *breaker) fail(now time.Time, took time.Duration, threshold int, err error) {
	b.recent.Record(now, took, false)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures++
	b.lastErr, b.lastErrAt = err.Error(), now
	if b.probing || b.failures >= threshold {
		// A failed trial re-opens for a whole cool-down.
		b.open, b.openedAt, b.probing = true, now, false
	}
}

// release ends a request that said nothing about the provider's health.
func (b *breaker) release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
}

func (b *breaker) status(now time.Time, cooldown time.Duration) ProviderStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := ProviderStatus{Circuit: CircuitClosed, Available: true, Failures: b.failures, LastError: b.lastErr, Recent: b.recent.Stats(now)}
	if !b.lastErrAt.IsZero() {
		at := b.lastErrAt
		s.LastErrorAt = &at
	}
	if b.open {
		if now.Before(b.openedAt.Add(cooldown)) {
			s.Circuit, s.Available = CircuitOpen, false
		} else {
			s.Circuit, s.Available = CircuitHalfOpen, !b.probing
		}
	}
	return s
}
