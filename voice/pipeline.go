package voice

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/dartmouth-gw/dartmouth/voice/audio"
)

// A Pipeline runs the voice turns of one live session, between a transport (WebSocket,
// WebRTC, the Realtime endpoint) and the agent that answers:
//
//	Push(audio frames) -> decode, resample -> VAD -> end of speech
//	  -> STT (Router.Transcribe, the utterance as WAV)        -> TranscriptFinal
//	  -> Responder streams the reply                           -> ResponseDelta, at once
//	  -> Chunker -> TTS per sentence (Router.SpeakTo, PCM16)   -> 20 ms frames in the output
//	     format, paced in real time by the Clock's ticker     -> ResponseAudio
//	  -> ResponseDone, with the turn's latencies
//
// Barge-in: speech that the VAD confirms (MinSpeech: a cough or a click is too short) while a
// turn is running cancels the reply, the LLM and the TTS through the turn's context; no audio
// frame of that turn is emitted after ResponseInterrupted, which says how much audio the
// consumer took (PlayedMs) and which part of the text that was (PlayedText): what the user
// heard, and so what the conversation should keep. Speech confirmed while the previous
// utterance is still being transcribed cancels that transcription instead, and the earlier
// audio is sent again with the new utterance, so the user is neither answered mid-sentence nor
// loses words.
//
// Input: Push takes the session's frames (pcm16 at any rate, g711_ulaw/g711_alaw at 8 kHz, one
// Opus packet per call), decodes and resamples them to the VAD rate (16 kHz), and runs the
// VAD in the caller's goroutine, so a bad frame is an error for that call and events come out
// in the order the audio went in. PushText starts a turn from text: the device's own
// transcript on the native tier, or a typed message.
//
// Output: replies are text only on the native tier (the device speaks) and with TextOnly;
// otherwise audio frames of 20 ms in OutputFormat at OutputSampleRate: pcm16 (any rate that
// is a multiple of 50 Hz), g711_ulaw/g711_alaw (8 kHz), opus (one packet a frame; needs a
// build with the libopus tag).
//
// Events: every event goes through one FIFO queue to Events(), so the consumer sees them in
// the order they happened. The queue never blocks the pipeline. Audio a slow consumer has not
// taken is dropped once AudioQueue frames are waiting (counted in Stats().DroppedAudio: late
// audio is worthless); text events (everything but ResponseAudio) are never dropped, and a
// consumer that leaves MaxQueuedText of them untaken is considered gone: the pipeline stops
// and Run returns ErrEventsStalled.
//
// Turns: every turn has a number, carried by its events from SpeechStopped on (from its
// first event when PushText started it). Once a turn's reply has begun (a TranscriptFinal with
// text, or PushText) it ends with exactly one of ResponseDone, ResponseInterrupted or Error.
// Before that it ends with an Error (STT failed), a TranscriptFinal with empty Text (nothing
// was heard; no reply follows), or without an event of its own when cancelled: by more speech,
// whose SpeechStopped starts the next turn with this turn's audio included, or by Interrupt.

// SpeechRouter is what the pipeline needs from the tier router; *Router satisfies it.
type SpeechRouter interface {
	Transcribe(ctx context.Context, req TranscribeReq) (*TranscribeResult, error)
	SpeakTo(ctx context.Context, req SpeakRequest, w io.Writer) (*SpeakResult, error)
}

var _ SpeechRouter = (*Router)(nil)

// Responder answers what the user said with a reply streamed delta by delta (cmd adapts
// agents.Engine: Start, then Turn.Run). It must return soon after ctx is cancelled (barge-in)
// and stop when onDelta returns an error. TurnID(ctx) tells which pipeline turn a call is for.
type Responder interface {
	Respond(ctx context.Context, text string, onDelta func(delta string) error) (Reply, error)
}

// Reply is a responder's finished answer.
type Reply struct {
	// Text is the whole reply. When no delta was streamed, the pipeline sends it as one.
	Text string
	// Info is passed untouched to ResponseDone (cmd passes agents.Result: session, message id,
	// model, tokens, cost), so the transport can report it without voice knowing agents.
	Info any
}

type turnKey struct{}

// TurnID returns the number of the pipeline turn a Respond call belongs to, as carried by the
// events of that turn, so a responder can match a stored reply with a later
// ResponseInterrupted.
func TurnID(ctx context.Context) (int64, bool) {
	id, ok := ctx.Value(turnKey{}).(int64)
	return id, ok
}

// PipelineClock paces the audio a pipeline sends. Tests pass a fake one to move time by hand.
type PipelineClock interface {
	NewTicker(d time.Duration) Ticker
}

// Ticker is the part of *time.Ticker the pipeline uses.
type Ticker interface {
	C() <-chan time.Time
	Reset(d time.Duration)
	Stop()
}

// SystemPipelineClock paces with time.Ticker.
type SystemPipelineClock struct{}

// NewTicker returns a time.Ticker.
func (SystemPipelineClock) NewTicker(d time.Duration) Ticker { return systemTicker{time.NewTicker(d)} }

type systemTicker struct{ t *time.Ticker }

func (t systemTicker) C() <-chan time.Time   { return t.t.C }
func (t systemTicker) Reset(d time.Duration) { t.t.Reset(d) }
func (t systemTicker) Stop()                 { t.t.Stop() }

var _ PipelineClock = SystemPipelineClock{}

// Errors of the pipeline's own (router and responder errors are wrapped in Error events).
var (
	// ErrPipelineClosed is returned by calls after Close, or after Run has returned.
	ErrPipelineClosed = errors.New("voice pipeline: closed")
	// ErrEventsStalled ends a pipeline whose consumer left MaxQueuedText events untaken.
	ErrEventsStalled = errors.New("voice pipeline: the event consumer stopped reading")
	// ErrBadAudio wraps a frame Push could not decode (with the audio package's error).
	ErrBadAudio = errors.New("voice pipeline: bad audio frame")
	// ErrDraining is returned by Push and PushText once Drain has begun: the session takes no
	// more input, it only finishes what it has.
	ErrDraining = errors.New("voice pipeline: draining")
)

// PipelineConfig configures a Pipeline. Every zero field takes its default.
type PipelineConfig struct {
	// Router transcribes and speaks. Required, except on the native tier (text only).
	Router SpeechRouter
	// Responder answers. Required.
	Responder Responder

	// InputFormat of pushed frames: FormatPCM16, FormatULaw, FormatALaw or FormatOpus (one
	// packet per Push). Default FormatPCM16.
	InputFormat string
	// InputSampleRate of pcm16 frames, in audio.MinRate..audio.MaxRate. Default 16000.
	// G.711 is 8000 (0 or 8000 here); Opus packets carry their own and this is ignored.
	InputSampleRate int
	// OutputFormat of ResponseAudio frames: FormatPCM16, FormatULaw, FormatALaw or FormatOpus
	// (needs a build with the libopus tag). Default FormatPCM16.
	OutputFormat string
	// OutputSampleRate of output frames: for pcm16 a multiple of 50 in range (default 24000,
	// OpenAI Realtime's rate); G.711 is 8000; Opus 8000, 12000, 16000, 24000 or 48000
	// (default 48000).
	OutputSampleRate int
	// TextOnly makes replies text only, without TTS (the client shows or speaks them). Always
	// so on the native tier. Default false.
	TextOnly bool

	// Tier is the voice tier wished for STT and TTS ("", TierAuto or a tier); Plan is the
	// user's plan (see SpeakRequest). Defaults "" (auto) and "" (free).
	Tier string
	Plan string
	// Voice, Speed and TTSModel go to every TTS request; STTModel and Language to every
	// transcription. Defaults: the providers' own.
	Voice    string
	Speed    float64
	TTSModel string
	STTModel string
	Language string

	// VAD configures turn detection; its SampleRate is also the rate audio is transcribed at.
	// Defaults in VADConfig.
	VAD VADConfig
	// Chunker configures how replies are cut for TTS. Defaults in ChunkerConfig.
	Chunker ChunkerConfig

	// Clock paces output audio. Default SystemPipelineClock. (Latencies are measured with the
	// monotonic wall clock: they are measurements, not schedules.)
	Clock PipelineClock
	// Logger receives provider and responder failures. Default slog.Default().
	Logger *slog.Logger

	// AudioQueue is how many audio frames may wait for the consumer before newer ones are
	// dropped. Default 50 (1 s).
	AudioQueue int
	// MaxQueuedText is how many text events may wait before the consumer is considered gone
	// (ErrEventsStalled). Default 4096.
	MaxQueuedText int
}

// Event is something a Pipeline reports; switch on the concrete type (SpeechStarted,
// SpeechStopped, TranscriptFinal, ResponseDelta, ResponseAudio, ResponseDone,
// ResponseInterrupted, Error).
type Event interface {
	// EventType is the event's name on the gateway's WebSocket protocol ("speech.started",
	// "response.audio", ...).
	EventType() string
}

// SpeechStarted: the VAD confirmed speech (MinSpeech of it). Positions are input audio time
// since the session's first frame.
type SpeechStarted struct {
	// AudioStartMs is where the utterance starts, pre-roll included (OpenAI's
	// audio_start_ms); SpeechStartMs where the first speech frame is.
	AudioStartMs  int64
	SpeechStartMs int64
}

// SpeechStopped: the utterance ended (SilenceDuration of silence, MaxUtterance, or Commit) and
// turn Turn starts with it.
type SpeechStopped struct {
	Turn int64
	// AudioEndMs is where the last speech frame ends (OpenAI's audio_end_ms).
	AudioEndMs int64
	// UtteranceMs is how much audio goes to STT: pre-roll, speech, kept silence, and the
	// earlier utterance a barge-in on its transcription carried over.
	UtteranceMs int64
}

// TranscriptFinal is what STT heard. An empty Text ends the turn: no reply follows.
type TranscriptFinal struct {
	Turn   int64
	Text   string
	Result *TranscribeResult // provider, tier, cost, latency
}

// ResponseDelta is a piece of the reply's text, sent as soon as the responder produced it.
type ResponseDelta struct {
	Turn int64
	Text string
}

// ResponseAudio is one frame of the reply's audio: FrameDuration long (the last frame of each
// sentence is padded with silence), in the session's output format.
type ResponseAudio struct {
	Turn int64
	// Seq numbers the turn's frames from 0; a gap means frames were dropped for a slow
	// consumer.
	Seq        int
	Audio      []byte
	Format     string
	SampleRate int
}

// ResponseDone ends a turn whose reply was complete.
type ResponseDone struct {
	Turn int64
	// Text is the whole reply, as sent in ResponseDelta events.
	Text string
	// Info is the responder's Reply.Info.
	Info any
	// AudioMs is the audio delivered to the consumer (frames not dropped).
	AudioMs int64
	// DroppedFrames counts this turn's frames dropped for a slow consumer.
	DroppedFrames int
	// AudioErr is set when TTS failed partway: the text is complete, the audio stops where
	// it failed.
	AudioErr error
	// Speech is how each sentence was synthesized (provider, tier, cost, cache hits).
	Speech  []SpeakResult
	Latency TurnLatency
}

// Reasons a reply is interrupted.
const (
	InterruptSpeech = "speech" // barge-in: the user spoke (VAD)
	InterruptClient = "client" // Interrupt was called
	InterruptText   = "text"   // PushText started a new turn
)

// ResponseInterrupted ends a turn whose reply was cut short. No audio of the turn follows it.
type ResponseInterrupted struct {
	Turn   int64
	Reason string // InterruptSpeech, InterruptClient or InterruptText
	// PlayedMs is the audio the consumer took before the interruption (frames it had not taken
	// are discarded): what the user can have heard. 0 for text-only replies.
	PlayedMs int64
	// PlayedText is the part of the reply that audio says (whole sentences, then the share of
	// the words of the sentence being played that PlayedMs covers, rounded down): the
	// assistant message the conversation should keep. For text-only replies, all text sent.
	PlayedText string
	// Text is all the reply generated so far.
	Text    string
	Speech  []SpeakResult
	Latency TurnLatency
}

// Error codes.
const (
	ErrorCodeSTT      = "stt_failed"      // transcription failed (Err: the router's error)
	ErrorCodeResponse = "response_failed" // the responder failed
)

// Error ends a turn that failed. Err is the cause (errors.Is works with the router's and the
// responder's sentinels, ErrTierNotAllowed for example).
type Error struct {
	Turn    int64
	Code    string
	Message string
	Err     error
}

// TurnLatency is how long a turn took to reach each stage, from the end of the user's speech
// (the VAD's decision, or PushText). Zero means the stage was not reached.
type TurnLatency struct {
	Transcript   time.Duration // final transcript (0 without STT)
	FirstToken   time.Duration // first reply delta
	FirstTTSByte time.Duration // first byte of synthesized audio
	FirstAudio   time.Duration // first audio frame sent: voice-to-voice
}

// MarshalJSON writes milliseconds, as the API reports durations.
func (l TurnLatency) MarshalJSON() ([]byte, error) {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return json.Marshal(struct {
		TranscriptMs   float64 `json:"transcriptMs"`
		FirstTokenMs   float64 `json:"firstTokenMs"`
		FirstTTSByteMs float64 `json:"firstTtsByteMs"`
		FirstAudioMs   float64 `json:"firstAudioMs"`
	}{ms(l.Transcript), ms(l.FirstToken), ms(l.FirstTTSByte), ms(l.FirstAudio)})
}

func (SpeechStarted) EventType() string       { return "speech.started" }
func (SpeechStopped) EventType() string       { return "speech.stopped" }
func (TranscriptFinal) EventType() string     { return "transcript.final" }
func (ResponseDelta) EventType() string       { return "response.delta" }
func (ResponseAudio) EventType() string       { return "response.audio" }
func (ResponseDone) EventType() string        { return "response.done" }
func (ResponseInterrupted) EventType() string { return "response.interrupted" }
func (Error) EventType() string               { return "error" }

// PipelineStats counts what a pipeline did.
type PipelineStats struct {
	Turns        int64 // turns started
	Interrupted  int64 // replies interrupted
	AudioSent    int64 // audio frames emitted (dropped ones included)
	DroppedAudio int64 // audio frames dropped for a slow consumer
	QueuedEvents int   // events waiting for the consumer now
}

// Pipeline is one session's voice loop (see the comment at the top of pipeline.go). Push,
// PushText, Commit, ClearInput, Interrupt, Stats and Close are safe for concurrent use; Run is
// called once.
type Pipeline struct {
	cfg        PipelineConfig
	log        *slog.Logger
	textOnly   bool
	native     bool
	outRate    int // rate TTS is asked for and frames are cut at
	outSamples int // samples per output frame

	// Input, under inMu.
	inMu sync.Mutex
	vad  *VAD
	rs   *audio.Resampler   // input rate -> VAD rate, nil when equal or Opus
	dec  *audio.OpusDecoder // Opus input
	enc  *audio.OpusEncoder // Opus output, used under q.mu only

	q      eventQueue
	events chan Event

	mu       sync.Mutex
	active   *turn   // the turn running or queued, nil when listening
	pending  []*turn // turns for Run to start
	carry    []int16 // utterance whose transcription a barge-in cancelled
	nextTurn int64
	running  bool
	turns    int64
	interr   int64
	wake     chan struct{} // a turn is pending
	// draining is set by Drain; drainChanged is closed (and replaced) when a turn ends or an
	// event is handed over while it is set, for Drain to look again.
	draining     bool
	drainChanged chan struct{}

	base       context.Context // cancelled by Close, a stall, or the end of Run
	stop       context.CancelCauseFunc
	runDone    chan struct{}
	closeOnce  sync.Once
	eventsOnce sync.Once
}

// NewPipeline checks the config and returns a pipeline; start it with Run.
func NewPipeline(cfg PipelineConfig) (*Pipeline, error) {
	if cfg.Responder == nil {
		return nil, errors.New("voice pipeline: a Responder is required")
	}
	tier := Tier(strings.ToLower(strings.TrimSpace(cfg.Tier)))
	if tier != "" && tier != TierAuto && !slices.Contains(Tiers, tier) {
		return nil, fmt.Errorf("voice pipeline: %w: unknown voice tier %q (want auto or one of %v)", ErrBadRequest, cfg.Tier, Tiers)
	}
	if tier == TierPremium && cfg.Plan != PlanPremium {
		return nil, &TierNotAllowedError{Tier: tier, Plan: cmp.Or(cfg.Plan, PlanFree)}
	}
	native := tier == TierNative
	if cfg.Router == nil && !native {
		return nil, errors.New("voice pipeline: a Router is required (only the native tier works without one)")
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemPipelineClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.AudioQueue <= 0 {
		cfg.AudioQueue = 50
	}
	if cfg.MaxQueuedText <= 0 {
		cfg.MaxQueuedText = 4096
	}
	if math.IsNaN(cfg.Speed) || math.IsInf(cfg.Speed, 0) || cfg.Speed < 0 {
		return nil, fmt.Errorf("voice pipeline: %w: speed %v: want a positive factor (0 means 1)", ErrBadRequest, cfg.Speed)
	}
	vad, err := NewVAD(cfg.VAD)
	if err != nil {
		return nil, fmt.Errorf("voice pipeline: %w: %w", ErrBadRequest, err)
	}
	cfg.VAD = vad.Config()
	p := &Pipeline{cfg: cfg, log: cfg.Logger, native: native, textOnly: cfg.TextOnly || native, vad: vad,
		events: make(chan Event), wake: make(chan struct{}, 1), runDone: make(chan struct{})}
	if err := p.setupInput(); err != nil {
		return nil, err
	}
	if err := p.setupOutput(); err != nil {
		return nil, err
	}
	p.q = eventQueue{maxAudio: cfg.AudioQueue, maxText: cfg.MaxQueuedText, notify: make(chan struct{}, 1)}
	p.base, p.stop = context.WithCancelCause(context.Background())
	return p, nil
}

func (p *Pipeline) setupInput() error {
	c := &p.cfg
	vadRate := c.VAD.SampleRate
	if c.InputFormat == "" {
		c.InputFormat = FormatPCM16
	}
	rate := 0
	switch c.InputFormat {
	case FormatPCM16:
		if c.InputSampleRate == 0 {
			c.InputSampleRate = 16000
		}
		rate = c.InputSampleRate
	case FormatULaw, FormatALaw:
		if c.InputSampleRate != 0 && c.InputSampleRate != 8000 {
			return fmt.Errorf("voice pipeline: %w: %s input is 8000 Hz, not %d", ErrBadRequest, c.InputFormat, c.InputSampleRate)
		}
		c.InputSampleRate, rate = 8000, 8000
	case FormatOpus:
		dec, err := audio.NewOpusDecoder(vadRate)
		if err != nil {
			return fmt.Errorf("voice pipeline: %w", err)
		}
		p.dec = dec
		return nil
	default:
		return fmt.Errorf("voice pipeline: %w: input format %q: want pcm16, g711_ulaw, g711_alaw or opus", ErrBadRequest, c.InputFormat)
	}
	if rate < audio.MinRate || rate > audio.MaxRate {
		return fmt.Errorf("voice pipeline: %w: input sample rate %d Hz is outside %d..%d", ErrBadRequest, rate, audio.MinRate, audio.MaxRate)
	}
	if rate != vadRate {
		rs, err := audio.NewResampler(rate, vadRate)
		if err != nil {
			return fmt.Errorf("voice pipeline: %w", err)
		}
		p.rs = rs
	}
	return nil
}

func (p *Pipeline) setupOutput() error {
	c := &p.cfg
	if c.OutputFormat == "" {
		c.OutputFormat = FormatPCM16
	}
	switch c.OutputFormat {
	case FormatPCM16:
		if c.OutputSampleRate == 0 {
			c.OutputSampleRate = 24000
		}
		if c.OutputSampleRate < audio.MinRate || c.OutputSampleRate > audio.MaxRate || c.OutputSampleRate%50 != 0 {
			return fmt.Errorf("voice pipeline: %w: output sample rate %d Hz: want a multiple of 50 within %d..%d",
				ErrBadRequest, c.OutputSampleRate, audio.MinRate, audio.MaxRate)
		}
	case FormatULaw, FormatALaw:
		if c.OutputSampleRate != 0 && c.OutputSampleRate != 8000 {
			return fmt.Errorf("voice pipeline: %w: %s output is 8000 Hz, not %d", ErrBadRequest, c.OutputFormat, c.OutputSampleRate)
		}
		c.OutputSampleRate = 8000
	case FormatOpus:
		if c.OutputSampleRate == 0 {
			c.OutputSampleRate = 48000
		}
		if !p.textOnly {
			enc, err := audio.NewOpusEncoder(c.OutputSampleRate)
			if err != nil {
				return fmt.Errorf("voice pipeline: opus output: %w", err)
			}
			p.enc = enc
		}
	default:
		return fmt.Errorf("voice pipeline: %w: output format %q: want pcm16, g711_ulaw, g711_alaw or opus (mp3 cannot be cut into 20 ms frames)",
			ErrBadRequest, c.OutputFormat)
	}
	p.outRate = c.OutputSampleRate
	p.outSamples = p.outRate / 50
	return nil
}

// Events returns the pipeline's events. It is closed when Run returns; events not yet taken
// then are discarded.
func (p *Pipeline) Events() <-chan Event { return p.events }

// Run starts turns, paces their audio and delivers events until ctx ends, Close is called or
// the consumer stalls; it stops every goroutine of the pipeline before it returns. It returns
// nil after Close, ErrEventsStalled after a stall, and ctx's cause otherwise. Call it once.
func (p *Pipeline) Run(ctx context.Context) error {
	p.mu.Lock()
	if p.running {
		p.mu.Unlock()
		return errors.New("voice pipeline: Run called twice")
	}
	p.running = true
	p.mu.Unlock()
	defer close(p.runDone)
	defer p.closeEvents()
	if p.base.Err() != nil {
		return p.result(context.Cause(p.base))
	}

	runCtx, cancelRun := context.WithCancelCause(ctx)
	stopWatch := context.AfterFunc(p.base, func() { cancelRun(context.Cause(p.base)) })
	defer cancelRun(nil)
	var wg sync.WaitGroup
	wg.Go(func() { p.dispatch(runCtx) })
	for runCtx.Err() == nil {
		select {
		case <-runCtx.Done():
		case <-p.wake:
			p.mu.Lock()
			for _, t := range p.pending {
				if t.cancelled {
					continue
				}
				t.ctx, t.cancel = context.WithCancel(context.WithValue(runCtx, turnKey{}, t.id))
				wg.Go(func() { p.runTurn(t) })
			}
			p.pending = nil
			p.mu.Unlock()
		}
	}
	stopWatch()
	cause := context.Cause(runCtx)
	wg.Wait()
	p.stop(cause) // nothing more may be pushed
	return p.result(cause)
}

func (p *Pipeline) result(cause error) error {
	if errors.Is(cause, ErrPipelineClosed) {
		return nil
	}
	return cause
}

func (p *Pipeline) closeEvents() { p.eventsOnce.Do(func() { close(p.events) }) }

// Close stops the pipeline: turns are cancelled, Run returns (Close waits for it when it is
// running) and Events is closed. It is idempotent. Do not call it from a Responder.
func (p *Pipeline) Close() error {
	p.closeOnce.Do(func() { p.stop(ErrPipelineClosed) })
	p.mu.Lock()
	running := p.running
	p.mu.Unlock()
	if running {
		<-p.runDone
	} else {
		p.closeEvents()
	}
	return nil
}

// Stats returns the pipeline's counters.
func (p *Pipeline) Stats() PipelineStats {
	p.mu.Lock()
	s := PipelineStats{Turns: p.turns, Interrupted: p.interr}
	p.mu.Unlock()
	p.q.mu.Lock()
	s.AudioSent, s.DroppedAudio, s.QueuedEvents = p.q.sent, p.q.dropped, len(p.q.items)
	p.q.mu.Unlock()
	return s
}

// Push takes one input frame in the session's format: pcm16 bytes, G.711 bytes, or one Opus
// packet. Any length works (the VAD re-frames); an empty frame is ignored (Opus DTX). A frame
// that cannot be decoded is an error wrapping ErrBadAudio and the audio package's sentinel;
// the stream goes on with the next one. The native tier takes no audio (use PushText).
func (p *Pipeline) Push(frame []byte) error {
	if p.native {
		return fmt.Errorf("voice pipeline: %w: the native tier transcribes on the device: send its transcript with PushText", ErrBadRequest)
	}
	if p.base.Err() != nil {
		return ErrPipelineClosed
	}
	if len(frame) == 0 {
		return nil
	}
	if p.isDraining() {
		return ErrDraining
	}
	p.inMu.Lock()
	defer p.inMu.Unlock()
	var pcm []int16
	switch p.cfg.InputFormat {
	case FormatPCM16:
		s, err := audio.BytesToPCM16(frame)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrBadAudio, err)
		}
		pcm = s
	case FormatULaw:
		pcm = audio.DecodeULaw(frame)
	case FormatALaw:
		pcm = audio.DecodeALaw(frame)
	case FormatOpus:
		s, err := p.dec.Decode(frame)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrBadAudio, err)
		}
		pcm = s
	}
	if p.rs != nil {
		pcm = p.rs.Process(pcm)
	}
	p.onVAD(p.vad.Process(pcm))
	return nil
}

// Commit ends the utterance in progress now, as if its silence had come (the client released
// push-to-talk, or sent audio.end), and reports whether there was one.
func (p *Pipeline) Commit() bool {
	if p.native || p.base.Err() != nil {
		return false
	}
	p.inMu.Lock()
	defer p.inMu.Unlock()
	evs := p.vad.Flush()
	p.onVAD(evs)
	return len(evs) > 0
}

// ClearInput drops the utterance in progress and any audio carried over from a cancelled
// transcription (OpenAI's input_audio_buffer.clear): no SpeechStopped follows its
// SpeechStarted, and no turn starts from it. The noise floor is kept.
func (p *Pipeline) ClearInput() {
	if p.native {
		return
	}
	p.inMu.Lock()
	defer p.inMu.Unlock()
	p.vad.Flush()
	p.mu.Lock()
	p.carry = nil
	p.mu.Unlock()
}

// PushText starts a turn from text: the device's transcript on the native tier, or a typed
// message. A turn still running is interrupted (InterruptText).
func (p *Pipeline) PushText(text string) error {
	text = strings.TrimSpace(text)
	if text == "" {
		return fmt.Errorf("voice pipeline: %w: the text is empty", ErrBadRequest)
	}
	if !utf8.ValidString(text) {
		return fmt.Errorf("voice pipeline: %w: the text is not valid UTF-8", ErrBadRequest)
	}
	if p.base.Err() != nil {
		return ErrPipelineClosed
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.draining {
		return ErrDraining
	}
	if p.active != nil {
		p.cancelTurnLocked(p.active, InterruptText)
	}
	t := p.newTurnLocked()
	t.text, t.phase = text, phaseResponding
	return nil
}

// Interrupt cancels the running turn, as the client's "interrupt" asks, and reports whether
// there was one. A reply ends with ResponseInterrupted (InterruptClient); a transcription in
// progress is dropped silently.
func (p *Pipeline) Interrupt() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.active == nil {
		return false
	}
	p.cancelTurnLocked(p.active, InterruptClient)
	return true
}

// Drain ends the session's input and waits for what it has to finish, for a graceful
// shutdown: speech in progress becomes a turn (as Commit), later Push and PushText return
// ErrDraining, and Drain returns nil once no turn is running or waiting and the consumer has
// taken every event, so a Close after it discards nothing. It returns ctx's error when ctx
// ends first, and ErrPipelineClosed when the pipeline stops meanwhile.
func (p *Pipeline) Drain(ctx context.Context) error {
	p.CloseInput()
	for {
		p.mu.Lock()
		idle := p.active == nil && len(p.pending) == 0
		if p.drainChanged == nil {
			p.drainChanged = make(chan struct{})
		}
		changed := p.drainChanged
		p.mu.Unlock()
		if idle {
			p.q.mu.Lock()
			idle = len(p.q.items) == 0 && !p.q.handing
			p.q.mu.Unlock()
		}
		if idle {
			return nil
		}
		select {
		case <-changed:
		case <-p.base.Done():
			return ErrPipelineClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// CloseInput is Drain's first step on its own: speech in progress becomes a turn, and later
// Push and PushText return ErrDraining. It does not wait.
func (p *Pipeline) CloseInput() {
	p.Commit()
	p.mu.Lock()
	p.draining = true
	p.mu.Unlock()
}

func (p *Pipeline) isDraining() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.draining
}

// drainStepLocked wakes Drain to look again (under mu).
func (p *Pipeline) drainStepLocked() {
	if p.draining && p.drainChanged != nil {
		close(p.drainChanged)
		p.drainChanged = nil
	}
}

// onVAD acts on the VAD's events (under inMu).
func (p *Pipeline) onVAD(events []VADEvent) {
	for _, ev := range events {
		p.mu.Lock()
		switch ev.Type {
		case VADSpeechStarted:
			p.emit(nil, SpeechStarted{AudioStartMs: ev.AudioStart.Milliseconds(), SpeechStartMs: ev.At.Milliseconds()})
			if p.active != nil {
				p.cancelTurnLocked(p.active, InterruptSpeech)
			}
		case VADSpeechStopped:
			if p.active != nil { // a PushText turn started while the user was speaking
				p.cancelTurnLocked(p.active, InterruptSpeech)
			}
			utt := ev.Audio
			if len(p.carry) > 0 {
				utt = append(append(make([]int16, 0, len(p.carry)+len(utt)), p.carry...), utt...)
				p.carry = nil
				if limit := int(int64(p.cfg.VAD.MaxUtterance) * int64(p.cfg.VAD.SampleRate) / int64(time.Second)); len(utt) > limit {
					utt = utt[len(utt)-limit:]
				}
			}
			t := p.newTurnLocked()
			t.audio = utt
			p.emit(nil, SpeechStopped{Turn: t.id, AudioEndMs: ev.At.Milliseconds(),
				UtteranceMs: int64(len(utt)) * 1000 / int64(p.cfg.VAD.SampleRate)})
		}
		p.mu.Unlock()
	}
}

type turnPhase int

const (
	phaseTranscribing turnPhase = iota // queued or in STT: no reply has begun
	phaseResponding                    // the reply has begun: the turn must end with an event
)

// turn is one exchange: an utterance (or text) and its reply.
type turn struct {
	id    int64
	audio []int16 // the utterance at the VAD rate; nil for text turns
	text  string  // PushText's text
	start time.Time

	// Under Pipeline.mu.
	phase     turnPhase
	cancelled bool
	ctx       context.Context
	cancel    context.CancelFunc

	// Under eventQueue.mu.
	ended   bool
	sent    int // audio frames emitted
	dropped int // of which dropped
	popped  int // audio frames the consumer took

	// Under mu, taken after eventQueue.mu when both are needed.
	mu        sync.Mutex
	generated strings.Builder
	spans     []chunkSpan
	speech    []SpeakResult
	lat       TurnLatency
	audioErr  error
}

// chunkSpan is a chunk of the reply and how many frames its audio has, in order.
type chunkSpan struct {
	text   string
	frames int
	done   bool
}

func (p *Pipeline) newTurnLocked() *turn {
	p.nextTurn++
	p.turns++
	t := &turn{id: p.nextTurn, start: time.Now()}
	p.active = t
	p.pending = append(p.pending, t)
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return t
}

// mark records the time since the turn's start in *d the first time it is called for d.
func (t *turn) mark(d *time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if *d == 0 {
		*d = max(time.Since(t.start), time.Nanosecond)
	}
}

// playedText is the part of the reply the first played frames say (under t.mu): the chunks
// played whole, then the share of the words of the chunk being played that its played frames
// are of its length. A chunk still being synthesized has an unknown length: it is estimated
// from its text, at least what has been synthesized.
func (t *turn) playedText(played int) string {
	var parts []string
	at := 0
	for _, s := range t.spans {
		if at > played || at == played && (s.frames > 0 || !s.done) {
			break
		}
		total := s.frames
		if !s.done {
			total = max(total, utf8.RuneCountInString(s.text)*int(time.Second/FrameDuration)/ttsCharsPerSecond)
		}
		heard := min(played-at, s.frames)
		if heard >= total {
			parts = append(parts, s.text)
		} else if words := strings.Fields(s.text); heard > 0 {
			if n := len(words) * heard / total; n > 0 {
				parts = append(parts, strings.Join(words[:n], " "))
			}
		}
		at += s.frames
	}
	return strings.Join(parts, " ")
}

// ttsCharsPerSecond is how fast TTS voices speak, roughly (150 words a minute).
const ttsCharsPerSecond = 14

// cancelTurnLocked ends t because of reason (under p.mu).
func (p *Pipeline) cancelTurnLocked(t *turn, reason string) {
	t.cancelled = true
	if t.cancel != nil {
		t.cancel()
	}
	if p.active == t {
		p.active = nil
	}
	p.drainStepLocked()
	q := &p.q
	q.mu.Lock()
	defer q.mu.Unlock()
	if t.ended {
		return
	}
	t.ended = true
	if t.phase == phaseTranscribing {
		// The consumer has not seen this turn. When the user simply went on speaking, what
		// they said first goes to STT again with the rest.
		if reason == InterruptSpeech {
			p.carry = t.audio
		}
		return
	}
	p.interr++
	q.purgeAudio(t)
	t.mu.Lock()
	ev := ResponseInterrupted{Turn: t.id, Reason: reason, PlayedMs: int64(t.popped) * FrameDuration.Milliseconds(),
		Text: t.generated.String(), Speech: append([]SpeakResult(nil), t.speech...), Latency: t.lat}
	if p.textOnly {
		ev.PlayedText = ev.Text
	} else {
		ev.PlayedText = t.playedText(t.popped)
	}
	t.mu.Unlock()
	if !q.pushLocked(ev, nil) {
		p.stop(ErrEventsStalled)
	}
}

// emit queues ev for the consumer; for a turn's event, only while the turn has not ended. It
// reports whether ev was queued (a dropped audio frame counts as queued).
func (p *Pipeline) emit(t *turn, ev Event) bool {
	q := &p.q
	q.mu.Lock()
	if t != nil && t.ended {
		q.mu.Unlock()
		return false
	}
	ok := q.pushLocked(ev, t)
	q.mu.Unlock()
	if !ok {
		p.stop(ErrEventsStalled)
	}
	return ok
}

// finish ends t with its last event, unless it was cancelled first.
func (p *Pipeline) finish(t *turn, ev Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t.cancelled {
		return
	}
	if p.active == t {
		p.active = nil
	}
	p.drainStepLocked()
	q := &p.q
	q.mu.Lock()
	if t.ended {
		q.mu.Unlock()
		return
	}
	t.ended = true
	ok := q.pushLocked(ev, nil)
	q.mu.Unlock()
	if !ok {
		p.stop(ErrEventsStalled)
	}
}

// runTurn transcribes (for an utterance) and answers.
func (p *Pipeline) runTurn(t *turn) {
	ctx := t.ctx
	defer t.cancel()
	text := t.text
	if t.audio != nil {
		res, err := p.cfg.Router.Transcribe(ctx, TranscribeReq{
			Audio: audio.EncodeWAV(audio.PCM{Samples: t.audio, Rate: p.cfg.VAD.SampleRate}), Format: FormatWAV,
			SampleRate: p.cfg.VAD.SampleRate, Language: p.cfg.Language, Model: p.cfg.STTModel, Tier: p.cfg.Tier, Plan: p.cfg.Plan,
		})
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			p.log.WarnContext(ctx, "voice pipeline: transcription failed", "turn", t.id, "err", err)
			p.finish(t, Error{Turn: t.id, Code: ErrorCodeSTT, Message: err.Error(), Err: err})
			return
		}
		t.mark(&t.lat.Transcript)
		text = strings.TrimSpace(res.Text)
		ev := TranscriptFinal{Turn: t.id, Text: text, Result: res}
		if text == "" {
			p.finish(t, ev)
			return
		}
		p.mu.Lock()
		if t.cancelled {
			p.mu.Unlock()
			return
		}
		t.phase = phaseResponding
		p.emit(t, ev)
		p.mu.Unlock()
	}
	p.respond(t, text)
}

// respond streams the reply as text and, unless text only, as paced audio.
func (p *Pipeline) respond(t *turn, text string) {
	ctx := t.ctx
	chunks := newPipeQueue[string]()
	frames := newPipeQueue[[]int16]()
	var wg sync.WaitGroup
	if !p.textOnly {
		wg.Go(func() { p.synthesize(t, chunks, frames) })
		wg.Go(func() { p.play(t, frames) })
	}
	chunker := NewChunker(p.cfg.Chunker)
	deltas := 0
	onDelta := func(delta string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if delta == "" {
			return nil
		}
		deltas++
		t.mark(&t.lat.FirstToken)
		t.mu.Lock()
		t.generated.WriteString(delta)
		t.mu.Unlock()
		if !p.emit(t, ResponseDelta{Turn: t.id, Text: delta}) {
			if err := ctx.Err(); err != nil {
				return err
			}
			return ErrEventsStalled
		}
		if !p.textOnly {
			for _, c := range chunker.Push(delta) {
				chunks.put(c)
			}
		}
		return nil
	}
	reply, err := p.cfg.Responder.Respond(ctx, text, onDelta)
	if err == nil && deltas == 0 && reply.Text != "" && ctx.Err() == nil {
		err = onDelta(reply.Text) // a responder that does not stream
	}
	if !p.textOnly {
		for _, c := range chunker.Flush() {
			chunks.put(c)
		}
	}
	chunks.close()
	if ctx.Err() != nil {
		// Interrupted (whoever cancelled reported it) or shutting down (nobody listens).
		wg.Wait()
		return
	}
	if err != nil {
		t.cancel() // stop the TTS and the player
		wg.Wait()
		p.log.WarnContext(ctx, "voice pipeline: responder failed", "turn", t.id, "err", err)
		p.finish(t, Error{Turn: t.id, Code: ErrorCodeResponse, Message: err.Error(), Err: err})
		return
	}
	wg.Wait()
	p.q.mu.Lock()
	delivered, dropped := t.sent-t.dropped, t.dropped
	p.q.mu.Unlock()
	t.mu.Lock()
	done := ResponseDone{Turn: t.id, Text: t.generated.String(), Info: reply.Info,
		AudioMs: int64(delivered) * FrameDuration.Milliseconds(), DroppedFrames: dropped, AudioErr: t.audioErr,
		Speech: append([]SpeakResult(nil), t.speech...), Latency: t.lat}
	t.mu.Unlock()
	if done.Text == "" {
		done.Text = reply.Text
	}
	p.finish(t, done)
}

// synthesize speaks each chunk through the router and cuts the audio into frames.
func (p *Pipeline) synthesize(t *turn, chunks *pipeQueue[string], frames *pipeQueue[[]int16]) {
	ctx := t.ctx
	defer frames.close()
	for {
		chunk, ok := chunks.wait(ctx)
		if !ok {
			return
		}
		t.mu.Lock()
		idx := len(t.spans)
		t.spans = append(t.spans, chunkSpan{text: chunk})
		t.mu.Unlock()
		say := speakable(chunk)
		if say == "" {
			t.setDone(idx)
			continue
		}
		w := &pipeFrameWriter{ctx: ctx, t: t, idx: idx, frames: frames, size: p.outSamples}
		res, err := p.cfg.Router.SpeakTo(ctx, SpeakRequest{Text: say, Voice: p.cfg.Voice, Format: FormatPCM16,
			SampleRate: p.outRate, Speed: p.cfg.Speed, Model: p.cfg.TTSModel, Tier: p.cfg.Tier, Plan: p.cfg.Plan}, w)
		if ctx.Err() != nil {
			return
		}
		w.flush()
		if err == nil || errors.Is(err, ErrEmptyText) { // empty: nothing a voice can say in it
			t.setDone(idx)
		}
		if err != nil && !errors.Is(err, ErrEmptyText) {
			p.log.WarnContext(ctx, "voice pipeline: speech synthesis failed; the reply goes on as text", "turn", t.id, "err", err)
			t.mu.Lock()
			t.audioErr = err
			t.mu.Unlock()
			return
		}
		if res != nil {
			t.mu.Lock()
			t.speech = append(t.speech, *res)
			t.mu.Unlock()
		}
	}
}

func (t *turn) setDone(idx int) {
	t.mu.Lock()
	t.spans[idx].done = true
	t.mu.Unlock()
}

// pipeFrameWriter receives a chunk's PCM16 from the router and queues it as whole frames.
type pipeFrameWriter struct {
	ctx    context.Context
	t      *turn
	idx    int
	frames *pipeQueue[[]int16]
	size   int
	odd    []byte // half a sample carried to the next Write
	cur    []int16
}

func (w *pipeFrameWriter) Write(b []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err // the turn was cancelled: make the router stop
	}
	n := len(b)
	if n == 0 {
		return 0, nil
	}
	w.t.mark(&w.t.lat.FirstTTSByte)
	if len(w.odd) > 0 {
		b = append(w.odd, b...)
		w.odd = nil
	}
	if len(b)%2 == 1 {
		w.odd = []byte{b[len(b)-1]}
		b = b[:len(b)-1]
	}
	for i := 0; i < len(b); i += 2 {
		if w.cur == nil {
			w.cur = make([]int16, 0, w.size)
		}
		w.cur = append(w.cur, int16(binary.LittleEndian.Uint16(b[i:])))
		if len(w.cur) == w.size {
			w.push()
		}
	}
	return n, nil
}

// flush queues the last partial frame, padded with silence.
func (w *pipeFrameWriter) flush() {
	if len(w.cur) > 0 {
		w.cur = w.cur[:w.size] // the tail of the capacity is zero: silence
		w.push()
	}
}

func (w *pipeFrameWriter) push() {
	w.t.mu.Lock()
	w.t.spans[w.idx].frames++
	w.t.mu.Unlock()
	w.frames.put(w.cur)
	w.cur = nil
}

// play sends the frames in real time: the first one (and the first after a gap in the
// audio) at once, the next ones on the ticker. A ticker drops the ticks a busy receiver
// misses, so the schedule is kept by the ticks' own times: frames that fell behind are sent
// at once (a few per tick), and a stall delays the audio only while it lasts instead of for
// the rest of the reply.
func (p *Pipeline) play(t *turn, frames *pipeQueue[[]int16]) {
	ctx := t.ctx
	ticker := p.cfg.Clock.NewTicker(FrameDuration)
	defer ticker.Stop()
	idle := true
	var base time.Time // when the frame sent at the last (re)start was due
	var sentSince int  // frames sent since then
	for {
		if idle {
			f, ok := frames.wait(ctx)
			if !ok {
				return
			}
			// Restart the cadence from this frame, before it is sent (so a test that moves
			// a fake clock after seeing it moves the new schedule).
			ticker.Reset(FrameDuration)
			select {
			case <-ticker.C():
			default:
			}
			if !p.sendFrame(t, f) {
				return
			}
			idle, base, sentSince = false, time.Time{}, 1
		} else {
			var tick time.Time
			select {
			case <-ctx.Done():
				return
			case tick = <-ticker.C():
			}
			due := 1
			if !tick.IsZero() {
				if base.IsZero() {
					base = tick.Add(-time.Duration(sentSince) * FrameDuration)
				}
				due = min(int(tick.Sub(base)/FrameDuration)+1-sentSince, maxCatchUpFrames)
			}
			for range max(due, 1) {
				f, ok, closed := frames.tryGet()
				switch {
				case ok:
					if !p.sendFrame(t, f) {
						return
					}
					sentSince++
				case closed:
					return
				default:
					idle = true // the TTS is behind: send the next frame as soon as it comes
				}
				if idle {
					break
				}
			}
			if idle {
				continue
			}
		}
		if frames.drained() {
			return
		}
	}
}

// maxCatchUpFrames bounds the frames sent on one tick to catch up with the schedule: enough
// to recover from a stall quickly, few enough for a client's jitter buffer.
const maxCatchUpFrames = 5

// sendFrame encodes and emits one frame of t, unless t has ended.
func (p *Pipeline) sendFrame(t *turn, pcm []int16) bool {
	q := &p.q
	q.mu.Lock()
	defer q.mu.Unlock()
	if t.ended {
		return false
	}
	var data []byte
	switch p.cfg.OutputFormat {
	case FormatPCM16:
		data = audio.PCM16ToBytes(pcm)
	case FormatULaw:
		data = audio.EncodeULaw(pcm)
	case FormatALaw:
		data = audio.EncodeALaw(pcm)
	case FormatOpus:
		var err error
		if data, err = p.enc.Encode(pcm); err != nil {
			p.log.Warn("voice pipeline: opus encoding failed", "turn", t.id, "err", err)
			return true // one lost frame, not the reply
		}
	}
	seq := t.sent
	t.sent++
	q.sent++
	if seq == 0 {
		t.mark(&t.lat.FirstAudio)
	}
	ev := ResponseAudio{Turn: t.id, Seq: seq, Audio: data, Format: p.cfg.OutputFormat, SampleRate: p.cfg.OutputSampleRate}
	if q.audio >= q.maxAudio {
		q.dropped++
		t.dropped++
		return true
	}
	q.pushLocked(ev, t)
	return true
}

// dispatch moves events from the queue to the consumer.
func (p *Pipeline) dispatch(ctx context.Context) {
	for {
		ev, ok := p.q.next(ctx)
		if !ok {
			return
		}
		select {
		case p.events <- ev:
		case <-ctx.Done():
			return
		}
		p.q.mu.Lock()
		p.q.handing = false
		p.q.mu.Unlock()
		p.mu.Lock()
		p.drainStepLocked()
		p.mu.Unlock()
	}
}

// eventQueue is the FIFO between the pipeline and its consumer (see Pipeline). It never
// blocks a producer.
type eventQueue struct {
	mu       sync.Mutex
	items    []queuedEvent
	audio    int // audio events waiting
	text     int // other events waiting
	maxAudio int
	maxText  int
	failed   bool
	notify   chan struct{}
	sent     int64
	dropped  int64
	handing  bool // dispatch holds an event the consumer has not taken yet
}

type queuedEvent struct {
	ev Event
	t  *turn // set for audio frames, whose delivery the turn counts
}

// pushLocked queues ev, reporting false when the text queue is full (the consumer is gone).
func (q *eventQueue) pushLocked(ev Event, t *turn) bool {
	if q.failed {
		return false
	}
	if _, isAudio := ev.(ResponseAudio); isAudio {
		q.audio++
	} else {
		if q.text >= q.maxText {
			q.failed = true
			return false
		}
		q.text++
		t = nil
	}
	q.items = append(q.items, queuedEvent{ev: ev, t: t})
	select {
	case q.notify <- struct{}{}:
	default:
	}
	return true
}

// purgeAudio drops t's audio frames the consumer has not taken (under q.mu).
func (q *eventQueue) purgeAudio(t *turn) {
	kept := q.items[:0]
	for _, it := range q.items {
		if it.t == t {
			q.audio--
			continue
		}
		kept = append(kept, it)
	}
	clear(q.items[len(kept):])
	q.items = kept
}

// next waits for the oldest event and takes it.
func (q *eventQueue) next(ctx context.Context) (Event, bool) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			it := q.items[0]
			q.items[0] = queuedEvent{}
			q.items = q.items[1:]
			if it.t != nil {
				q.audio--
				it.t.popped++
			} else {
				q.text--
			}
			q.handing = true
			q.mu.Unlock()
			return it.ev, true
		}
		q.mu.Unlock()
		select {
		case <-q.notify:
		case <-ctx.Done():
			return nil, false
		}
	}
}

// pipeQueue is an unbounded FIFO between two goroutines of a turn; its size is bounded by
// the reply.
type pipeQueue[T any] struct {
	mu     sync.Mutex
	items  []T
	closed bool
	notify chan struct{}
}

func newPipeQueue[T any]() *pipeQueue[T] { return &pipeQueue[T]{notify: make(chan struct{}, 1)} }

func (q *pipeQueue[T]) put(v T) {
	q.mu.Lock()
	q.items = append(q.items, v)
	q.mu.Unlock()
	q.signal()
}

func (q *pipeQueue[T]) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

func (q *pipeQueue[T]) signal() {
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

func (q *pipeQueue[T]) tryGet() (v T, ok, closed bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) > 0 {
		v = q.items[0]
		var zero T
		q.items[0] = zero
		q.items = q.items[1:]
		return v, true, false
	}
	return v, false, q.closed
}

// drained reports whether the queue is closed and empty: nothing more will come.
func (q *pipeQueue[T]) drained() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed && len(q.items) == 0
}

// wait takes the next item, waiting for it; ok is false once the queue is closed and empty or
// ctx ends.
func (q *pipeQueue[T]) wait(ctx context.Context) (T, bool) {
	for {
		v, ok, closed := q.tryGet()
		if ok {
			return v, true
		}
		if closed || ctx.Err() != nil {
			return v, false
		}
		select {
		case <-q.notify:
		case <-ctx.Done():
		}
	}
}
