package voice

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/dartmouth-gw/dartmouth/session"
	"github.com/dartmouth-gw/dartmouth/voice/audio"
)

var errRouterCut = errors.New("connection reset by peer")

// routerTTS is a fake TTS provider. It makes deterministic audio from its name and the text,
// in the requested format when it is one of formats, else in formats[0] (as the local engines
// answer WAV whatever was asked).
type routerTTS struct {
	name    string
	tier    Tier
	formats []string
	rate    int // of its PCM and WAV audio; default 16000

	strict bool // refuse formats it does not make with ErrUnsupported, as the cloud APIs do

	mu       sync.Mutex
	calls    []string
	asked    []string // the formats asked for, call by call
	err      error    // Synthesize fails with it
	cutAfter int      // > 0: the audio stream fails after this many bytes
	closeErr error    // the audio stream's Close fails with it
}

var _ TTS = (*routerTTS)(nil)

func newRouterTTS(name string, tier Tier, formats ...string) *routerTTS {
	if len(formats) == 0 {
		formats = []string{FormatMP3}
	}
	return &routerTTS{name: name, tier: tier, formats: formats, rate: 16000}
}

func (f *routerTTS) Name() string { return f.name }
func (f *routerTTS) Tier() Tier   { return f.tier }

func (f *routerTTS) set(mut func(f *routerTTS)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	mut(f)
}

func (f *routerTTS) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *routerTTS) Synthesize(ctx context.Context, req SpeechRequest) (*Speech, error) {
	f.mu.Lock()
	f.calls = append(f.calls, req.Text)
	f.asked = append(f.asked, req.Format)
	err, cut, closeErr := f.err, f.cutAfter, f.closeErr
	f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	format := f.formats[0]
	if slices.Contains(f.formats, req.Format) {
		format = req.Format
	} else if f.strict && req.Format != "" {
		return nil, fmt.Errorf("%s tts: audio format %q: %w", f.name, req.Format, ErrUnsupported)
	}
	data := routerAudio(f.name, req.Text, format, f.rate)
	var r io.Reader = bytes.NewReader(data)
	if cut > 0 {
		r = io.MultiReader(bytes.NewReader(data[:cut]), iotest.ErrReader(errRouterCut))
	}
	sp := &Speech{Audio: &routerStream{r: r, closeErr: closeErr}, Format: format, ContentType: ttsContentType(format, 0),
		Provider: f.name, Model: f.name + "-model", Voice: req.Voice}
	if format == FormatPCM16 {
		sp.SampleRate = f.rate
	}
	return sp, nil
}

type routerStream struct {
	r        io.Reader
	closeErr error
}

func (s *routerStream) Read(p []byte) (int, error) { return s.r.Read(p) }
func (s *routerStream) Close() error               { return s.closeErr }

// routerSamples is a provider's deterministic speech for text: 10 ms a character.
func routerSamples(name, text string, rate int) []int16 {
	h := fnv.New32a()
	h.Write([]byte(name + "\x00" + text))
	seed := h.Sum32()
	out := make([]int16, len([]rune(text))*rate/100)
	for i := range out {
		seed = seed*1664525 + 1013904223
		out[i] = int16(seed >> 16)
	}
	return out
}

func routerAudio(name, text, format string, rate int) []byte {
	switch format {
	case FormatWAV:
		return audio.EncodeWAV(audio.PCM{Samples: routerSamples(name, text, rate), Rate: rate})
	case FormatPCM16:
		return audio.PCM16ToBytes(routerSamples(name, text, rate))
	}
	return []byte(fmt.Sprintf("<%s %s %s>", name, format, text))
}

// routerSTT is a fake STT provider; a native one passes the device's transcript on.
type routerSTT struct {
	name string
	tier Tier
	dur  time.Duration

	mu    sync.Mutex
	calls int
	err   error
}

var _ STT = (*routerSTT)(nil)

func (f *routerSTT) Name() string { return f.name }
func (f *routerSTT) Tier() Tier   { return f.tier }

func (f *routerSTT) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *routerSTT) Transcribe(ctx context.Context, req TranscribeRequest) (*Transcript, error) {
	f.mu.Lock()
	f.calls++
	err := f.err
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if f.tier == TierNative {
		if req.Transcript == "" {
			return nil, ErrNoTranscript
		}
		return &Transcript{Text: req.Transcript, Provider: f.name, Model: "device"}, nil
	}
	return &Transcript{Text: "heard by " + f.name, Language: "en", Duration: f.dur, Provider: f.name, Model: f.name + "-model"}, nil
}

// routerPricer prices by "provider/model".
type routerPricer struct {
	perChar   map[string]float64
	perMinute map[string]float64
}

func (p routerPricer) TTSCost(pm string, chars int) float64 { return p.perChar[pm] * float64(chars) }
func (p routerPricer) STTCost(pm string, d time.Duration) float64 {
	return p.perMinute[pm] * d.Minutes()
}

type routerBudget struct {
	mu     sync.Mutex
	saving bool
}

func (b *routerBudget) CostSaving(context.Context) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.saving
}

func (b *routerBudget) set(on bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.saving = on
}

func newTestRouter(t *testing.T, cfg RouterConfig) *Router {
	t.Helper()
	r, err := NewRouter(cfg)
	if err != nil {
		t.Fatalf("NewRouter: %v", err)
	}
	return r
}

func routerStatus(t *testing.T, r *Router, kind, name string) ProviderStatus {
	t.Helper()
	for _, s := range r.Providers() {
		if s.Kind == kind && s.Name == name {
			return s
		}
	}
	t.Fatalf("no %s provider %q in Providers()", kind, name)
	return ProviderStatus{}
}

func mustSpeak(t *testing.T, r *Router, req SpeakRequest) *SpeakResult {
	t.Helper()
	res, err := r.Speak(t.Context(), req)
	if err != nil {
		t.Fatalf("Speak(%+v): %v", req, err)
	}
	return res
}

// A failing provider is skipped and the next tier answers; after BreakerFailures failures its
// circuit opens and it is not called any more; after the cool-down one trial request goes
// through (half-open): a failure re-opens the circuit, a success closes it.
func TestRouterFallsBackAndOpensBreaker(t *testing.T) {
	clock := newCacheClock()
	local := newRouterTTS("espeak", TierLocal)
	cloud := newRouterTTS("openai", TierCloud)
	local.set(func(f *routerTTS) { f.err = errors.New("espeak-ng: exit status 1") })
	r := newTestRouter(t, RouterConfig{TTS: []TTS{cloud, local}, Clock: clock})
	req := SpeakRequest{Text: "Hello.", Format: FormatMP3}

	for i := 1; i <= 3; i++ {
		res := mustSpeak(t, r, req)
		if res.Provider != "openai" || res.Tier != TierCloud {
			t.Fatalf("request %d served by %s (%s), want the cloud fallback", i, res.Provider, res.Tier)
		}
		if n := len(local.Calls()); n != i {
			t.Fatalf("request %d: the failing provider was called %d times, want %d", i, n, i)
		}
	}
	s := routerStatus(t, r, "tts", "espeak")
	if s.Circuit != CircuitOpen || s.Available || s.Failures != 3 || !strings.Contains(s.LastError, "exit status 1") || s.LastErrorAt == nil {
		t.Fatalf("after 3 failures status = %+v, want open, unavailable, the reason recorded", s)
	}
	if rc := routerStatus(t, r, "tts", "openai").Recent; rc.Calls != 3 || rc.SuccessRate != 1 || s.Recent.Calls != 3 || s.Recent.Failures != 3 {
		t.Fatalf("recent traffic: openai %+v, espeak %+v; want 3 good and 3 failed requests", rc, s.Recent)
	}

	mustSpeak(t, r, req)
	clock.Advance(29 * time.Second)
	mustSpeak(t, r, req)
	if n := len(local.Calls()); n != 3 {
		t.Fatalf("the open circuit let %d calls through, want none", n-3)
	}

	clock.Advance(time.Second)
	if s := routerStatus(t, r, "tts", "espeak"); s.Circuit != CircuitHalfOpen || !s.Available {
		t.Fatalf("after the cool-down status = %+v, want half-open and available", s)
	}
	if res := mustSpeak(t, r, req); res.Provider != "openai" {
		t.Fatalf("the failed trial was answered by %s, want the fallback", res.Provider)
	}
	if n := len(local.Calls()); n != 4 {
		t.Fatalf("half-open made %d trial calls, want 1", n-3)
	}
	if s := routerStatus(t, r, "tts", "espeak"); s.Circuit != CircuitOpen {
		t.Fatalf("a failed trial left the circuit %s, want open", s.Circuit)
	}
	mustSpeak(t, r, req)
	if n := len(local.Calls()); n != 4 {
		t.Fatal("the re-opened circuit let a call through")
	}

	local.set(func(f *routerTTS) { f.err = nil })
	clock.Advance(30 * time.Second)
	if res := mustSpeak(t, r, req); res.Provider != "espeak" || res.Tier != TierLocal {
		t.Fatalf("after recovery served by %s, want the cheaper local tier again", res.Provider)
	}
	if s := routerStatus(t, r, "tts", "espeak"); s.Circuit != CircuitClosed || s.Failures != 0 || !s.Available {
		t.Fatalf("after a successful trial status = %+v, want closed with no failures", s)
	}
}

func TestBreakerHalfOpenAllowsOneTrial(t *testing.T) {
	now := time.Unix(0, 0)
	b := newBreaker()
	for range 2 {
		if !b.acquire(now, time.Minute) {
			t.Fatal("closed breaker refused")
		}
		b.fail(now, time.Second, 2, errors.New("x"))
	}
	if b.acquire(now.Add(59*time.Second), time.Minute) {
		t.Fatal("open breaker allowed a call before the cool-down")
	}
	later := now.Add(time.Minute)
	if !b.acquire(later, time.Minute) {
		t.Fatal("no trial after the cool-down")
	}
	if b.acquire(later, time.Minute) {
		t.Fatal("a second trial ran while the first was in flight")
	}
	b.release() // the trial said nothing (the caller cancelled): another may try
	if !b.acquire(later, time.Minute) {
		t.Fatal("no trial after a released one")
	}
	b.succeed(later, 120*time.Millisecond)
	if s := b.status(later, time.Minute); s.Circuit != CircuitClosed || s.Failures != 0 {
		t.Fatalf("after a successful trial: %+v", s)
	}
	// The requests that happened are the provider's recent health: 1 of 3 went well.
	if r := b.status(later, time.Minute).Recent; r.Calls != 3 || r.Failures != 2 || r.P50Ms != 120 {
		t.Fatalf("recent: %+v", r)
	}
}

func TestRouterTierChoice(t *testing.T) {
	budget := &routerBudget{}
	native := newRouterTTS("device", TierNative)
	local := newRouterTTS("espeak", TierLocal)
	self := newRouterTTS("f5", TierSelfHosted)
	cloud := newRouterTTS("openai", TierCloud)
	premium := newRouterTTS("elevenlabs", TierPremium)
	all := []*routerTTS{native, local, self, cloud, premium}
	tests := []struct {
		name      string
		tier      string
		plan      string
		saving    bool
		broken    []*routerTTS
		want      string // provider that answers
		wantSaved bool
		wantErr   error
		notCalled []*routerTTS
	}{
		{name: "auto free: cheapest server tier", tier: "", plan: PlanFree, want: "espeak", notCalled: []*routerTTS{native}},
		{name: "auto premium plan: still cheapest first", tier: "auto", plan: PlanPremium, want: "espeak"},
		{name: "auto skips a broken cheap tier", tier: "auto", plan: PlanFree, broken: []*routerTTS{local}, want: "f5"},
		{name: "auto never reaches premium on a free plan", tier: "auto", plan: PlanFree, broken: []*routerTTS{local, self, cloud}, wantErr: ErrNoProvider, notCalled: []*routerTTS{premium}},
		{name: "auto reaches premium last on the premium plan", tier: "auto", plan: PlanPremium, broken: []*routerTTS{local, self, cloud}, want: "elevenlabs"},
		{name: "named tier only", tier: "cloud", plan: PlanFree, want: "openai", notCalled: []*routerTTS{local, self}},
		{name: "named tier does not fall back", tier: "cloud", plan: PlanFree, broken: []*routerTTS{cloud}, wantErr: ErrNoProvider, notCalled: []*routerTTS{local, premium}},
		{name: "native only when named", tier: "native", plan: PlanFree, wantErr: ErrUnsupported},
		{name: "premium named on the premium plan", tier: "premium", plan: PlanPremium, want: "elevenlabs"},
		{name: "tier names are case-insensitive", tier: " Cloud ", plan: PlanFree, want: "openai"},
		{name: "unknown tier", tier: "gold", plan: PlanFree, wantErr: ErrBadRequest, notCalled: all},
		{name: "cost saving: premium asked, local answers", tier: "premium", plan: PlanPremium, saving: true, want: "espeak", wantSaved: true},
		{name: "cost saving: cloud asked, local answers", tier: "cloud", plan: PlanPaid, saving: true, want: "espeak", wantSaved: true},
		{name: "cost saving: next cheapest when local is down", tier: "cloud", plan: PlanPaid, saving: true, broken: []*routerTTS{local}, want: "f5", wantSaved: true},
		{name: "cost saving: never dearer than asked", tier: "self-hosted", plan: PlanPaid, saving: true, broken: []*routerTTS{local, self}, wantErr: ErrNoProvider, notCalled: []*routerTTS{cloud, premium}},
		{name: "cost saving: auto on premium plan stops below premium", tier: "auto", plan: PlanPremium, saving: true, broken: []*routerTTS{local, self, cloud}, wantErr: ErrNoProvider, notCalled: []*routerTTS{premium}},
		{name: "cost saving leaves native alone", tier: "native", plan: PlanFree, saving: true, wantErr: ErrUnsupported, notCalled: []*routerTTS{local}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, p := range all {
				p.set(func(f *routerTTS) { f.calls, f.err = nil, nil })
			}
			native.set(func(f *routerTTS) { f.err = fmt.Errorf("the device speaks: %w", ErrUnsupported) })
			for _, p := range tt.broken {
				p.set(func(f *routerTTS) { f.err = errors.New("down") })
			}
			budget.set(tt.saving)
			r := newTestRouter(t, RouterConfig{TTS: []TTS{premium, cloud, self, local, native}, Budget: budget})
			res, err := r.Speak(t.Context(), SpeakRequest{Text: "Hi.", Format: FormatMP3, Tier: tt.tier, Plan: tt.plan})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error = %v, want %v", err, tt.wantErr)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if res.Provider != tt.want || res.CostSaving != tt.wantSaved {
					t.Fatalf("served by %s (costSaving %v), want %s (%v)", res.Provider, res.CostSaving, tt.want, tt.wantSaved)
				}
			}
			for _, p := range tt.notCalled {
				if n := len(p.Calls()); n != 0 {
					t.Errorf("%s was called %d times", p.name, n)
				}
			}
		})
	}
}

func TestRouterRefusesPremiumTierToOtherPlans(t *testing.T) {
	premium := newRouterTTS("elevenlabs", TierPremium)
	premiumSTT := &routerSTT{name: "premium-stt", tier: TierPremium}
	r := newTestRouter(t, RouterConfig{TTS: []TTS{premium}, STT: []STT{premiumSTT}, Budget: &routerBudget{saving: true}})
	for _, plan := range []string{"", PlanFree, PlanPaid, "enterprise-typo"} {
		t.Run(plan, func(t *testing.T) {
			_, err := r.Speak(t.Context(), SpeakRequest{Text: "Hi.", Tier: "premium", Plan: plan})
			var tierErr *TierNotAllowedError
			if !errors.As(err, &tierErr) || !errors.Is(err, ErrTierNotAllowed) {
				t.Fatalf("Speak error = %v, want *TierNotAllowedError", err)
			}
			wantPlan := plan
			if plan == "" {
				wantPlan = PlanFree
			}
			if tierErr.Tier != TierPremium || tierErr.Plan != wantPlan {
				t.Errorf("error = %+v", tierErr)
			}
			if _, err := r.Transcribe(t.Context(), TranscribeReq{Audio: []byte{1, 2}, Format: FormatPCM16, SampleRate: 16000, Tier: "premium", Plan: plan}); !errors.Is(err, ErrTierNotAllowed) {
				t.Errorf("Transcribe error = %v, want ErrTierNotAllowed", err)
			}
		})
	}
	if len(premium.Calls()) != 0 || premiumSTT.Calls() != 0 {
		t.Fatal("a refused request reached the premium provider")
	}
	if res, err := r.Speak(t.Context(), SpeakRequest{Text: "Hi.", Tier: "premium", Plan: PlanPremium}); err != nil || res.Provider != "elevenlabs" {
		t.Fatalf("premium plan: %v, %+v", err, res)
	}
}

// The second synthesis of a sentence comes from the cache, on both blob stores: no provider is
// called, the bytes are identical and it costs nothing.
func TestRouterCacheServesRepeats(t *testing.T) {
	for name, newBlobs := range cacheBlobStores {
		t.Run(name, func(t *testing.T) {
			f := newCacheFixture(t, newBlobs(t), nil)
			cloud := newRouterTTS("openai", TierCloud)
			pricer := routerPricer{perChar: map[string]float64{"openai/openai-model": 0.001}}
			r := newTestRouter(t, RouterConfig{TTS: []TTS{cloud}, Cache: f.cache, Pricer: pricer})
			req := SpeakRequest{Text: "Hello there.", Voice: "alloy", Format: FormatMP3}

			first := mustSpeak(t, r, req)
			second := mustSpeak(t, r, req)
			if first.Cached || !second.Cached || !second.Parts[0].Cached {
				t.Fatalf("cached: first %v, second %v; want false, true", first.Cached, second.Cached)
			}
			if n := len(cloud.Calls()); n != 1 {
				t.Fatalf("the provider was called %d times, want once", n)
			}
			if !bytes.Equal(first.Audio, second.Audio) || len(first.Audio) == 0 {
				t.Fatalf("cached audio %q differs from the original %q", second.Audio, first.Audio)
			}
			if first.Cost == 0 || second.Cost != 0 {
				t.Errorf("cost: first %v, second %v; want > 0, then 0", first.Cost, second.Cost)
			}
			if second.Provider != "openai" || second.Model != "openai-model" || second.Tier != TierCloud || second.Format != FormatMP3 ||
				second.ContentType != "audio/mpeg" || second.Voice != "alloy" {
				t.Errorf("cached result = %+v, want the original provider, model, tier and format", second)
			}
			// Whitespace does not matter; the voice does.
			if res := mustSpeak(t, r, SpeakRequest{Text: "  Hello   there. ", Voice: "alloy", Format: FormatMP3}); !res.Cached {
				t.Error("the same sentence with other spacing missed the cache")
			}
			if res := mustSpeak(t, r, SpeakRequest{Text: "Hello there.", Voice: "nova", Format: FormatMP3}); res.Cached {
				t.Error("another voice hit the cache")
			}
			if s := f.cache.Stats(); s.Hits != 2 || s.Misses != 2 || s.BytesServed != 2*int64(len(first.Audio)) {
				t.Errorf("cache stats = %+v", s)
			}
		})
	}
}

// A provider whose stream breaks is never cached; in Speak the next provider redoes the
// sentence, since nothing left the router yet.
func TestRouterCutStreamIsNotCached(t *testing.T) {
	for name, newBlobs := range cacheBlobStores {
		t.Run(name, func(t *testing.T) {
			f := newCacheFixture(t, newBlobs(t), nil)
			self := newRouterTTS("f5", TierSelfHosted)
			cloud := newRouterTTS("openai", TierCloud)
			self.set(func(f *routerTTS) { f.cutAfter = 3 })
			r := newTestRouter(t, RouterConfig{TTS: []TTS{self, cloud}, Cache: f.cache})
			req := SpeakRequest{Text: "Hello there.", Format: FormatMP3}

			res := mustSpeak(t, r, req)
			if res.Provider != "openai" || !bytes.Equal(res.Audio, routerAudio("openai", "Hello there.", FormatMP3, 0)) {
				t.Fatalf("after a cut stream: provider %s, audio %q; want the next provider's whole audio", res.Provider, res.Audio)
			}
			if s := routerStatus(t, r, "tts", "f5"); s.Failures != 1 || !strings.Contains(s.LastError, errRouterCut.Error()) {
				t.Errorf("the cut stream was not recorded as a failure: %+v", s)
			}
			selfKey := TTSCacheKey{Provider: "f5", Format: FormatMP3, Text: "Hello there."}
			if _, _, err := f.cache.Get(t.Context(), selfKey); !errors.Is(err, ErrTTSCacheMiss) {
				t.Fatalf("the cut stream was cached (Get error %v)", err)
			}

			// Alone, the cut provider fails the request, and the next request calls it again.
			only := newTestRouter(t, RouterConfig{TTS: []TTS{self}, Cache: f.cache})
			if _, err := only.Speak(t.Context(), req); !errors.Is(err, errRouterCut) || !errors.Is(err, ErrNoProvider) {
				t.Fatalf("error = %v, want ErrNoProvider wrapping the stream's error", err)
			}
			self.set(func(f *routerTTS) { f.cutAfter = 0 })
			calls := len(self.Calls())
			if res := mustSpeak(t, only, req); res.Cached || len(self.Calls()) != calls+1 {
				t.Fatalf("after a cut stream the next request was served from the cache")
			}
			if res := mustSpeak(t, only, req); !res.Cached {
				t.Fatal("a complete stream was not cached")
			}
		})
	}
}

// SpeakTo streams a single sentence straight through: a provider that fails after its first
// byte fails the request (the bytes are gone), and nothing is cached.
func TestRouterSpeakToStreamCutMidway(t *testing.T) {
	f := newCacheFixture(t, cacheLocalBlobs(t), nil)
	self := newRouterTTS("f5", TierSelfHosted)
	cloud := newRouterTTS("openai", TierCloud)
	self.set(func(f *routerTTS) { f.cutAfter = 3 })
	r := newTestRouter(t, RouterConfig{TTS: []TTS{self, cloud}, Cache: f.cache})
	var out bytes.Buffer
	_, err := r.SpeakTo(t.Context(), SpeakRequest{Text: "Hello there.", Format: FormatMP3}, &out)
	if err == nil || !errors.Is(err, errRouterCut) {
		t.Fatalf("SpeakTo error = %v, want the stream's error", err)
	}
	if len(cloud.Calls()) != 0 {
		t.Error("the next provider was asked after audio had already been sent")
	}
	if out.Len() != 3 {
		t.Errorf("wrote %d bytes, want the 3 that came before the cut", out.Len())
	}
	if f.cache.Stats().Writes != 0 {
		t.Error("a cut stream was cached")
	}

	// With a healthy provider the stream is the provider's audio, and is cached.
	self.set(func(f *routerTTS) { f.cutAfter = 0 })
	out.Reset()
	res, err := r.SpeakTo(t.Context(), SpeakRequest{Text: "Hello there.", Format: FormatMP3}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if want := routerAudio("f5", "Hello there.", FormatMP3, 0); !bytes.Equal(out.Bytes(), want) || res.Audio != nil || res.Bytes != int64(len(want)) {
		t.Fatalf("SpeakTo wrote %q (result %d bytes), want %q", out.Bytes(), res.Bytes, want)
	}
	if f.cache.Stats().Writes != 1 {
		t.Error("a complete stream was not cached")
	}
}

// routerFailingWriter is a client that went away.
type routerFailingWriter struct{}

func (routerFailingWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestRouterSpeakToWriterFailureIsNotTheProvidersFault(t *testing.T) {
	cloud := newRouterTTS("openai", TierCloud)
	r := newTestRouter(t, RouterConfig{TTS: []TTS{cloud}})
	for range 5 {
		if _, err := r.SpeakTo(t.Context(), SpeakRequest{Text: "Hello.", Format: FormatMP3}, routerFailingWriter{}); err == nil || !strings.Contains(err.Error(), "broken pipe") {
			t.Fatalf("error = %v, want the writer's", err)
		}
	}
	if s := routerStatus(t, r, "tts", "openai"); s.Failures != 0 || s.Circuit != CircuitClosed {
		t.Fatalf("a failing client counted against the provider: %+v", s)
	}
}

// Long text is synthesized sentence by sentence; a repeated sentence hits the cache, and the
// parts join into one valid stream in every format.
func TestRouterMultiSentence(t *testing.T) {
	text := "Hello there. How are you? Hello there."
	sentences := []string{"Hello there.", "How are you?", "Hello there."}
	for _, format := range []string{FormatMP3, FormatPCM16, FormatULaw, FormatWAV} {
		t.Run(format, func(t *testing.T) {
			f := newCacheFixture(t, cacheLocalBlobs(t), nil)
			cloud := newRouterTTS("openai", TierCloud, FormatMP3, FormatPCM16, FormatULaw, FormatWAV)
			pricer := routerPricer{perChar: map[string]float64{"openai/openai-model": 0.5}}
			r := newTestRouter(t, RouterConfig{TTS: []TTS{cloud}, Cache: f.cache, Pricer: pricer})
			res := mustSpeak(t, r, SpeakRequest{Text: text, Format: format})

			if got := cloud.Calls(); !slices.Equal(got, sentences[:2]) {
				t.Fatalf("provider calls = %q, want each distinct sentence once", got)
			}
			if len(res.Parts) != 3 || res.Parts[0].Cached || res.Parts[1].Cached || !res.Parts[2].Cached {
				t.Fatalf("parts = %+v, want the repeat (third) cached", res.Parts)
			}
			if res.Cached {
				t.Error("result marked cached though two sentences were synthesized")
			}
			if want := 0.5 * 24; math.Abs(res.Cost-want) > 1e-9 || res.Parts[2].Cost != 0 {
				t.Errorf("cost = %v (parts %+v), want %v: the cached repeat is free", res.Cost, res.Parts, want)
			}
			if res.Chars != 36 {
				t.Errorf("chars = %d, want 36", res.Chars)
			}

			if format == FormatWAV {
				if n := bytes.Count(res.Audio, []byte("RIFF")); n != 1 {
					t.Fatalf("joined WAV has %d RIFF headers, want 1", n)
				}
				pcm, err := audio.DecodeWAV(res.Audio)
				if err != nil {
					t.Fatalf("joined WAV does not decode: %v", err)
				}
				var want []int16
				for _, s := range sentences {
					want = append(want, routerSamples("openai", s, 16000)...)
				}
				if pcm.Rate != 16000 || !slices.Equal(pcm.Samples, want) {
					t.Fatalf("joined WAV: %d samples at %d Hz, want the %d samples of the three sentences at 16000", len(pcm.Samples), pcm.Rate, len(want))
				}
				if res.SampleRate != 16000 || res.ContentType != "audio/wav" {
					t.Errorf("result rate %d, type %q", res.SampleRate, res.ContentType)
				}
			} else {
				var want []byte
				for _, s := range sentences {
					want = append(want, routerAudio("openai", s, format, 16000)...)
				}
				if !bytes.Equal(res.Audio, want) {
					t.Fatalf("joined audio is %d bytes, want the %d of the three sentences in order", len(res.Audio), len(want))
				}
			}
			if res.Bytes != int64(len(res.Audio)) {
				t.Errorf("Bytes = %d, audio is %d", res.Bytes, len(res.Audio))
			}

			// SpeakTo makes the same stream, now all from the cache.
			var out bytes.Buffer
			again, err := r.SpeakTo(t.Context(), SpeakRequest{Text: text, Format: format}, &out)
			if err != nil {
				t.Fatal(err)
			}
			if !again.Cached || !bytes.Equal(out.Bytes(), res.Audio) {
				t.Fatalf("SpeakTo from the cache: cached %v, %d bytes; want the same %d bytes", again.Cached, out.Len(), len(res.Audio))
			}
		})
	}
}

// A provider answering in another format than asked is converted; a format that cannot be
// made from its answer (MP3 from WAV) moves on to the next provider without blame, and the
// provider is not asked for that format again.
func TestRouterConvertsFormats(t *testing.T) {
	local := newRouterTTS("espeak", TierLocal, FormatWAV)
	local.rate = 22050
	cloud := newRouterTTS("openai", TierCloud, FormatMP3)
	f := newCacheFixture(t, cacheLocalBlobs(t), nil)
	r := newTestRouter(t, RouterConfig{TTS: []TTS{local, cloud}, Cache: f.cache})
	samples := routerSamples("espeak", "Hello there.", 22050)

	tests := []struct {
		format   string
		rate     int
		wantRate int
		wantLen  int
	}{
		{FormatPCM16, 16000, 16000, 2 * len(audio.Resample(audio.PCM{Samples: samples, Rate: 22050}, 16000).Samples)},
		{FormatPCM16, 0, 22050, 2 * len(samples)},
		{FormatULaw, 0, 8000, len(audio.Resample(audio.PCM{Samples: samples, Rate: 22050}, 8000).Samples)},
		{FormatWAV, 24000, 24000, 44 + 2*len(audio.Resample(audio.PCM{Samples: samples, Rate: 22050}, 24000).Samples)},
		{FormatWAV, 0, 0, 44 + 2*len(samples)},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s@%d", tt.format, tt.rate), func(t *testing.T) {
			res := mustSpeak(t, r, SpeakRequest{Text: "Hello there.", Format: tt.format, SampleRate: tt.rate})
			if res.Provider != "espeak" || res.Format != tt.format || res.SampleRate != tt.wantRate || len(res.Audio) != tt.wantLen {
				t.Fatalf("got %s %s@%d, %d bytes; want espeak %s@%d, %d bytes", res.Provider, res.Format, res.SampleRate, len(res.Audio), tt.format, tt.wantRate, tt.wantLen)
			}
			again := mustSpeak(t, r, SpeakRequest{Text: "Hello there.", Format: tt.format, SampleRate: tt.rate})
			if !again.Cached || !bytes.Equal(again.Audio, res.Audio) || again.SampleRate != res.SampleRate {
				t.Fatalf("the converted audio was not cached as converted")
			}
		})
	}

	calls := len(local.Calls())
	res := mustSpeak(t, r, SpeakRequest{Text: "Good morning.", Format: FormatMP3})
	if res.Provider != "openai" || len(local.Calls()) != calls+1 {
		t.Fatalf("mp3 from a wav-only provider: served by %s", res.Provider)
	}
	mustSpeak(t, r, SpeakRequest{Text: "Good evening.", Format: FormatMP3})
	if len(local.Calls()) != calls+1 {
		t.Error("the wav-only provider was asked for mp3 again")
	}
	if s := routerStatus(t, r, "tts", "espeak"); s.Failures != 0 {
		t.Errorf("an unsupported format counted as a failure: %+v", s)
	}
}

func TestRouterResultCostAndLatency(t *testing.T) {
	cloud := newRouterTTS("openai", TierCloud)
	pricer := routerPricer{perChar: map[string]float64{"openai/openai-model": 15.0 / 1e6}}
	r := newTestRouter(t, RouterConfig{TTS: []TTS{cloud}, Pricer: pricer})
	res := mustSpeak(t, r, SpeakRequest{Text: "Hello there. How are you?", Format: FormatMP3})
	if res.Chars != 24 || math.Abs(res.Cost-24*15.0/1e6) > 1e-12 {
		t.Errorf("chars %d, cost %v; want 24 and %v", res.Chars, res.Cost, 24*15.0/1e6)
	}
	if res.Latency.FirstByte <= 0 || res.Latency.Total < res.Latency.FirstByte {
		t.Errorf("latency = %+v, want 0 < first byte <= total", res.Latency)
	}
	if res.Provider != "openai" || res.Model != "openai-model" || res.Tier != TierCloud || res.ContentType != "audio/mpeg" {
		t.Errorf("result = %+v", res)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var decoded map[string]any
	if err := json.Unmarshal(b, &decoded); err != nil {
		t.Fatal(err)
	}
	lat, _ := decoded["latency"].(map[string]any)
	if _, ok := lat["firstByteMs"]; !ok {
		t.Errorf("latency JSON = %s, want firstByteMs and totalMs", b)
	}
	if _, ok := decoded["Audio"]; ok {
		t.Error("audio bytes leak into the JSON")
	}
}

// Errors about the request (HTTP 400, ErrUnsupported) move on without touching the breaker,
// so bad client input cannot open a circuit for everyone.
func TestRouterRequestErrorsDoNotTripTheBreaker(t *testing.T) {
	tests := map[string]error{
		"http 400":        &ProviderError{Provider: "openai", Op: "tts", Status: http.StatusBadRequest, Message: "invalid voice"},
		"http 422":        &ProviderError{Provider: "openai", Op: "tts", Status: http.StatusUnprocessableEntity},
		"unsupported":     fmt.Errorf("voice nova: %w", ErrUnsupported),
		"http 500 counts": &ProviderError{Provider: "openai", Op: "tts", Status: http.StatusInternalServerError},
	}
	for name, provErr := range tests {
		t.Run(name, func(t *testing.T) {
			bad := newRouterTTS("openai", TierCloud)
			good := newRouterTTS("backup", TierCloud)
			bad.set(func(f *routerTTS) { f.err = provErr })
			r := newTestRouter(t, RouterConfig{TTS: []TTS{bad, good}})
			for range 5 {
				if res := mustSpeak(t, r, SpeakRequest{Text: "Hi.", Format: FormatMP3}); res.Provider != "backup" {
					t.Fatalf("served by %s", res.Provider)
				}
			}
			s := routerStatus(t, r, "tts", "openai")
			counts := strings.HasSuffix(name, "counts")
			if counts != (s.Circuit == CircuitOpen) {
				t.Fatalf("status = %+v; want the circuit open only for provider failures", s)
			}
		})
	}
}

func TestRouterAllProvidersFail(t *testing.T) {
	local := newRouterTTS("espeak", TierLocal)
	cloud := newRouterTTS("openai", TierCloud)
	local.set(func(f *routerTTS) { f.err = errors.New("no engine") })
	cloud.set(func(f *routerTTS) {
		f.err = &ProviderError{Provider: "openai", Op: "tts", Status: 503, Message: "overloaded"}
	})
	r := newTestRouter(t, RouterConfig{TTS: []TTS{local, cloud}})
	_, err := r.Speak(t.Context(), SpeakRequest{Text: "Hi.", Format: FormatMP3})
	var np *NoProviderError
	if !errors.As(err, &np) || !errors.Is(err, ErrNoProvider) {
		t.Fatalf("error = %v, want *NoProviderError", err)
	}
	if len(np.Attempts) != 2 || np.Attempts[0].Provider != "espeak" || np.Attempts[1].Provider != "openai" {
		t.Fatalf("attempts = %+v", np.Attempts)
	}
	for _, want := range []string{"espeak", "no engine", "openai", "overloaded"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// No provider at all for the tiers asked.
	empty := newTestRouter(t, RouterConfig{TTS: []TTS{cloud}})
	if _, err := empty.Speak(t.Context(), SpeakRequest{Text: "Hi.", Tier: "local"}); !errors.Is(err, ErrNoProvider) {
		t.Errorf("no local provider: error = %v", err)
	}
}

func TestRouterBadRequests(t *testing.T) {
	cloud := newRouterTTS("openai", TierCloud)
	r := newTestRouter(t, RouterConfig{TTS: []TTS{cloud}})
	tests := map[string]SpeakRequest{
		"empty text":     {Text: " \n "},
		"bad utf-8":      {Text: "hi \xff"},
		"unknown format": {Text: "Hi.", Format: "flac"},
		"negative speed": {Text: "Hi.", Speed: -1},
		"NaN speed":      {Text: "Hi.", Speed: math.NaN()},
		"bad rate":       {Text: "Hi.", SampleRate: 10},
		"unknown tier":   {Text: "Hi.", Tier: "platinum"},
	}
	for name, req := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := r.Speak(t.Context(), req); !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error = %v, want ErrBadRequest", err)
			}
		})
	}
	if n := len(cloud.Calls()); n != 0 {
		t.Fatalf("bad requests reached the provider %d times", n)
	}
}

func TestRouterCancelledRequestIsNotAFailure(t *testing.T) {
	cloud := newRouterTTS("openai", TierCloud)
	r := newTestRouter(t, RouterConfig{TTS: []TTS{cloud}, BreakerFailures: 1})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := r.Speak(ctx, SpeakRequest{Text: "Hi.", Format: FormatMP3}); !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
	if s := routerStatus(t, r, "tts", "openai"); s.Failures != 0 || s.Circuit != CircuitClosed {
		t.Fatalf("a cancelled request counted against the provider: %+v", s)
	}
}

// A paragraph keeps the voice of the provider that answered its first sentence, even when that
// is not the first provider of the chain.
func TestRouterKeepsOneProviderPerText(t *testing.T) {
	clock := newCacheClock()
	a := newRouterTTS("a", TierCloud)
	b := newRouterTTS("b", TierCloud)
	a.set(func(f *routerTTS) { f.err = errors.New("down") })
	r := newTestRouter(t, RouterConfig{TTS: []TTS{a, b}, Clock: clock, BreakerFailures: 1, BreakerCooldown: time.Nanosecond})
	// a's circuit opens on the first sentence and half-opens at once; b answered, so b keeps
	// the rest of the text and a is not tried again within it.
	res := mustSpeak(t, r, SpeakRequest{Text: "One. Two. Three.", Format: FormatMP3})
	for _, p := range res.Parts {
		if p.Provider != "b" {
			t.Fatalf("parts = %+v, want all from b", res.Parts)
		}
	}
	if n := len(a.Calls()); n != 1 {
		t.Fatalf("a was tried %d times within one text, want once", n)
	}
}

func TestRouterTranscribe(t *testing.T) {
	pcm := audio.PCM16ToBytes(make([]int16, 16000)) // one second at 16 kHz
	pricer := routerPricer{perMinute: map[string]float64{"whisper/whisper-model": 0.006, "openai/openai-model": 0.06}}
	newSTT := func() (native, local, self, cloud *routerSTT) {
		return &routerSTT{name: "device", tier: TierNative},
			&routerSTT{name: "sphinx", tier: TierLocal},
			&routerSTT{name: "whisper", tier: TierSelfHosted},
			&routerSTT{name: "openai", tier: TierCloud, dur: 30 * time.Second}
	}
	t.Run("cheapest first, failures fall back and open the breaker", func(t *testing.T) {
		clock := newCacheClock()
		native, local, self, cloud := newSTT()
		local.err = errors.New("pocketsphinx crashed")
		r := newTestRouter(t, RouterConfig{STT: []STT{cloud, self, local, native}, Pricer: pricer, Clock: clock})
		for i := range 4 {
			res, err := r.Transcribe(t.Context(), TranscribeReq{Audio: pcm, Format: FormatPCM16, SampleRate: 16000})
			if err != nil {
				t.Fatal(err)
			}
			if res.Provider != "whisper" || res.Tier != TierSelfHosted || res.Text != "heard by whisper" {
				t.Fatalf("request %d: %+v", i, res)
			}
			// whisper reports no duration: the router measures the audio to price it.
			if res.Duration != time.Second || math.Abs(res.Cost-0.006/60) > 1e-12 || res.Latency.Total <= 0 {
				t.Fatalf("duration %v, cost %v, latency %+v", res.Duration, res.Cost, res.Latency)
			}
		}
		if local.Calls() != 3 || native.Calls() != 0 {
			t.Fatalf("local called %d times (want 3, then the breaker), native %d (want 0)", local.Calls(), native.Calls())
		}
		if s := routerStatus(t, r, "stt", "sphinx"); s.Circuit != CircuitOpen || !strings.Contains(s.LastError, "crashed") {
			t.Fatalf("status = %+v", s)
		}
	})
	t.Run("the device's transcript is used first on auto", func(t *testing.T) {
		native, local, _, _ := newSTT()
		r := newTestRouter(t, RouterConfig{STT: []STT{local, native}, Pricer: pricer})
		res, err := r.Transcribe(t.Context(), TranscribeReq{Audio: pcm, Format: FormatPCM16, SampleRate: 16000, Transcript: "call mom"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Tier != TierNative || res.Text != "call mom" || res.Cost != 0 || local.Calls() != 0 {
			t.Fatalf("result %+v, local calls %d", res, local.Calls())
		}
	})
	t.Run("named tier and cost saving", func(t *testing.T) {
		_, local, self, cloud := newSTT()
		budget := &routerBudget{}
		r := newTestRouter(t, RouterConfig{STT: []STT{local, self, cloud}, Pricer: pricer, Budget: budget})
		res, err := r.Transcribe(t.Context(), TranscribeReq{Audio: pcm, Format: FormatPCM16, SampleRate: 16000, Tier: "cloud"})
		if err != nil || res.Provider != "openai" || res.Duration != 30*time.Second || math.Abs(res.Cost-0.03) > 1e-12 {
			t.Fatalf("named cloud: %+v, %v", res, err)
		}
		budget.set(true)
		res, err = r.Transcribe(t.Context(), TranscribeReq{Audio: pcm, Format: FormatPCM16, SampleRate: 16000, Tier: "cloud"})
		if err != nil || res.Provider != "sphinx" || !res.CostSaving {
			t.Fatalf("cost saving: %+v, %v", res, err)
		}
	})
	t.Run("nothing to transcribe", func(t *testing.T) {
		r := newTestRouter(t, RouterConfig{})
		if _, err := r.Transcribe(t.Context(), TranscribeReq{}); !errors.Is(err, ErrBadRequest) || !errors.Is(err, ErrNoAudio) {
			t.Fatalf("error = %v", err)
		}
	})
}

func TestRouterProviders(t *testing.T) {
	r := newTestRouter(t, RouterConfig{
		TTS: []TTS{newRouterTTS("openai", TierCloud), newRouterTTS("espeak", TierLocal)},
		STT: []STT{&routerSTT{name: "whisper", tier: TierSelfHosted}},
	})
	got := r.Providers()
	var names []string
	for _, s := range got {
		names = append(names, s.Kind+":"+s.Name+":"+string(s.Tier))
		if !s.Available || s.Circuit != CircuitClosed || s.LastError != "" {
			t.Errorf("fresh provider status = %+v", s)
		}
	}
	if want := []string{"tts:espeak:local", "tts:openai:cloud", "stt:whisper:self-hosted"}; !slices.Equal(names, want) {
		t.Fatalf("Providers() = %v, want %v", names, want)
	}
	b, _ := json.Marshal(got[0])
	for _, field := range []string{`"name"`, `"kind"`, `"tier"`, `"available"`, `"circuit"`} {
		if !bytes.Contains(b, []byte(field)) {
			t.Errorf("status JSON %s lacks %s", b, field)
		}
	}
}

func TestNewRouterChecksProviders(t *testing.T) {
	tests := map[string]RouterConfig{
		"nil tts":        {TTS: []TTS{nil}},
		"nil stt":        {STT: []STT{nil}},
		"duplicate name": {TTS: []TTS{newRouterTTS("x", TierLocal), newRouterTTS("x", TierCloud)}},
		"no name":        {TTS: []TTS{newRouterTTS("", TierLocal)}},
		"unknown tier":   {STT: []STT{&routerSTT{name: "x", tier: "gold"}}},
	}
	for name, cfg := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := NewRouter(cfg); err == nil {
				t.Fatal("NewRouter accepted it")
			}
		})
	}
	// The same name may be used once per kind.
	if _, err := NewRouter(RouterConfig{TTS: []TTS{newRouterTTS("openai", TierCloud)}, STT: []STT{&routerSTT{name: "openai", tier: TierCloud}}}); err != nil {
		t.Fatal(err)
	}
}

var _ session.Clock = (*cacheClock)(nil)

// A stream whose Close fails (a local engine's non-zero exit status) is a failed synthesis:
// the next provider answers and nothing is cached.
func TestRouterStreamCloseFailureFallsBack(t *testing.T) {
	f := newCacheFixture(t, cacheLocalBlobs(t), nil)
	local := newRouterTTS("espeak", TierLocal)
	cloud := newRouterTTS("openai", TierCloud)
	local.set(func(f *routerTTS) { f.closeErr = errors.New("exit status 1") })
	r := newTestRouter(t, RouterConfig{TTS: []TTS{local, cloud}, Cache: f.cache})
	res := mustSpeak(t, r, SpeakRequest{Text: "Hello.", Format: FormatMP3})
	if res.Provider != "openai" || !bytes.Equal(res.Audio, routerAudio("openai", "Hello.", FormatMP3, 0)) {
		t.Fatalf("served by %s: %q", res.Provider, res.Audio)
	}
	if s := routerStatus(t, r, "tts", "espeak"); s.Failures != 1 || !strings.Contains(s.LastError, "exit status 1") {
		t.Errorf("status = %+v", s)
	}
	if _, _, err := f.cache.Get(t.Context(), TTSCacheKey{Provider: "espeak", Format: FormatMP3, Text: "Hello."}); !errors.Is(err, ErrTTSCacheMiss) {
		t.Error("audio whose stream failed to close was cached")
	}
}

// When the provider of the first sentence fails midway through a text, the next one finishes
// it; WAV from both is joined at the first sentence's rate.
func TestRouterJoinsWAVAcrossProviders(t *testing.T) {
	a := newRouterTTS("a", TierLocal, FormatWAV)
	b := newRouterTTS("b", TierCloud, FormatWAV)
	b.rate = 24000
	// a answers "One." and then breaks.
	wrapped := &routerHook{TTS: a, before: func() {
		if len(a.Calls()) > 0 {
			a.set(func(f *routerTTS) { f.err = errors.New("down") })
		}
	}}
	r := newTestRouter(t, RouterConfig{TTS: []TTS{wrapped, b}})
	res := mustSpeak(t, r, SpeakRequest{Text: "One. Two.", Format: FormatWAV})
	if res.Parts[0].Provider != "a" || res.Parts[1].Provider != "b" {
		t.Fatalf("parts = %+v", res.Parts)
	}
	pcm, err := audio.DecodeWAV(res.Audio)
	if err != nil {
		t.Fatal(err)
	}
	want := len(routerSamples("a", "One.", 16000)) + len(audio.Resample(audio.PCM{Samples: routerSamples("b", "Two.", 24000), Rate: 24000}, 16000).Samples)
	if pcm.Rate != 16000 || len(pcm.Samples) != want {
		t.Fatalf("joined %d samples at %d Hz, want %d at 16000", len(pcm.Samples), pcm.Rate, want)
	}
}

// routerHook runs before each synthesis of the provider it wraps.
type routerHook struct {
	TTS
	before func()
}

func (h *routerHook) Synthesize(ctx context.Context, req SpeechRequest) (*Speech, error) {
	h.before()
	return h.TTS.Synthesize(ctx, req)
}

// A sentence served from the cache of a later provider makes that provider the first choice
// for the rest of the text.
func TestRouterCacheHitPicksTheProviderForTheRest(t *testing.T) {
	f := newCacheFixture(t, cacheLocalBlobs(t), nil)
	a := newRouterTTS("a", TierLocal)
	b := newRouterTTS("b", TierCloud)
	if err := f.cache.Put(t.Context(), TTSCacheKey{Provider: "b", Format: FormatMP3, Text: "One."},
		TTSCacheEntry{Provider: "b", Model: "b-model", Format: FormatMP3}, strings.NewReader("cached one")); err != nil {
		t.Fatal(err)
	}
	r := newTestRouter(t, RouterConfig{TTS: []TTS{a, b}, Cache: f.cache})
	res := mustSpeak(t, r, SpeakRequest{Text: "One. Two.", Format: FormatMP3})
	if !res.Parts[0].Cached || res.Parts[1].Provider != "b" || len(a.Calls()) != 0 {
		t.Fatalf("parts = %+v, a called %d times; want the rest from b", res.Parts, len(a.Calls()))
	}
}

// A provider that refuses a format the router can convert to (OpenAI has no G.711) is asked
// for raw PCM instead, and its answer converted.
func TestRouterAsksForAConvertibleFormat(t *testing.T) {
	cloud := newRouterTTS("openai", TierCloud, FormatMP3, FormatPCM16)
	cloud.strict, cloud.rate = true, 24000
	f := newCacheFixture(t, cacheLocalBlobs(t), nil)
	r := newTestRouter(t, RouterConfig{TTS: []TTS{cloud}, Cache: f.cache})
	res := mustSpeak(t, r, SpeakRequest{Text: "Press one.", Format: FormatULaw})
	cloud.mu.Lock()
	asked := slices.Clone(cloud.asked)
	cloud.mu.Unlock()
	if !slices.Equal(asked, []string{FormatULaw, FormatPCM16}) {
		t.Fatalf("formats asked = %q, want g711_ulaw then pcm16", asked)
	}
	want := audio.EncodeULaw(audio.Resample(audio.PCM{Samples: routerSamples("openai", "Press one.", 24000), Rate: 24000}, 8000).Samples)
	if res.Format != FormatULaw || res.SampleRate != 8000 || !bytes.Equal(res.Audio, want) || res.ContentType != "audio/basic" {
		t.Fatalf("got %s@%d (%s), %d bytes; want µ-law at 8000, %d bytes", res.Format, res.SampleRate, res.ContentType, len(res.Audio), len(want))
	}
	if again := mustSpeak(t, r, SpeakRequest{Text: "Press one.", Format: FormatULaw}); !again.Cached || !bytes.Equal(again.Audio, want) {
		t.Fatal("the converted µ-law was not served from the cache")
	}
	if s := routerStatus(t, r, "tts", "openai"); s.Failures != 0 {
		t.Errorf("the refused format counted as a failure: %+v", s)
	}
}
