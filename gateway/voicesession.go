package gateway

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/voice"
	"github.com/dartmouth-gw/dartmouth/voice/audio"
)

// Error codes of live voice sessions (WebSocket, WebRTC, Realtime).
const (
	CodeBadAudio          = "bad_audio"
	CodeAudioRateExceeded = "audio_rate_exceeded"
	CodeTooManySessions   = "too_many_sessions"
	CodeSessionExpired    = "session_expired"
	CodeNoSpeech          = "no_speech"
)

// VoiceSessionLimits bound the live voice sessions of every transport.
type VoiceSessionLimits struct {
	// MaxDuration ends a voice session that has lasted this long (the client may reconnect
	// with its sessionId and go on). Default 30m.
	MaxDuration time.Duration
	// MaxSessionsPerUser is how many live voice sessions one user may hold on this replica,
	// all transports together. Default 4.
	MaxSessionsPerUser int
	// AudioRateFactor is how much faster than real time a client may send audio (in bytes per
	// second of its declared format, with one second of burst); the excess is dropped and
	// counted. Default 2.
	AudioRateFactor float64
	// VAD tunes turn detection for sessions that do not set their own. Default: voice's
	// defaults, but MinSpeech 60 ms so a barge-in is heard within 100 ms of the user's onset
	// (clicks and taps are still shorter than that).
	VAD voice.VADConfig
	// Clock paces output audio. Default voice.SystemPipelineClock.
	Clock voice.PipelineClock
}

func (l VoiceSessionLimits) withDefaults() VoiceSessionLimits {
	if l.MaxDuration <= 0 {
		l.MaxDuration = 30 * time.Minute
	}
	if l.MaxSessionsPerUser <= 0 {
		l.MaxSessionsPerUser = 4
	}
	if l.AudioRateFactor <= 0 {
		l.AudioRateFactor = 2
	}
	if l.VAD.MinSpeech == 0 {
		l.VAD.MinSpeech = 60 * time.Millisecond
	}
	if l.Clock == nil {
		l.Clock = voice.SystemPipelineClock{}
	}
	return l
}

// voiceOptions is what a client chose for its voice session, in any transport's terms.
type voiceOptions struct {
	InputFormat      string
	InputSampleRate  int
	OutputFormat     string
	OutputSampleRate int
	TextOnly         bool
	Tier             string
	Voice            string
	Speed            float64
	Language         string
	// Context goes with every turn to the agent, as in a chat request.
	Context map[string]any
	// VAD overrides the gateway's turn detection where set.
	VAD voice.VADConfig
	// Transport names the session in metrics: "websocket", "webrtc" or "realtime".
	Transport string
	// OnReply, when set, is told each reply the engine stored, by pipeline turn (interrupted
	// ones too, once cut to what was played), so a transport can refer to the stored message
	// later (the Realtime endpoint's conversation.item.truncate). It runs in the turn's
	// goroutine and must not block.
	OnReply func(turn int64, res agents.Result)
}

// voiceSession is one live voice conversation, whatever carries it: a pipeline answering
// through the agent engine, with the session limits and the bookkeeping every transport
// needs (the stored reply cut to what was played, latency metrics). The transport pushes
// input, ranges over Events, and calls Run once and Close at the end.
type voiceSession struct {
	srv       *Server
	conv      agents.Conversation
	opts      voiceOptions
	pipe      *voice.Pipeline
	responder *engineResponder
	release   func()

	inMu        sync.Mutex
	bytesPerSec float64
	allowance   float64 // audio bytes the client may still send now
	lastPush    time.Time
	droppedIn   int64 // input frames dropped for exceeding the rate
}

// openVoiceSession builds the session of an opened conversation; the caller owns it and
// must Close it. admit, when set, is asked before every turn (the rate limit).
func (s *Server) openVoiceSession(conv agents.Conversation, plan string, opts voiceOptions, admit func(context.Context) error) (*voiceSession, error) {
	if s.cfg.Voice == nil && !strings.EqualFold(opts.Tier, string(voice.TierNative)) {
		return nil, newAPIError(http.StatusServiceUnavailable, CodeVoiceDisabled, "voice is not configured on this gateway; use the native tier (the device transcribes and speaks)")
	}
	release, err := s.voiceSlots.acquire(conv.UserID, s.voiceLimits.MaxSessionsPerUser)
	if err != nil {
		return nil, err
	}
	vad := s.voiceLimits.VAD
	if opts.VAD != (voice.VADConfig{}) {
		vad = mergeVAD(vad, opts.VAD)
	}
	responder := &engineResponder{engine: s.cfg.Engine, conv: conv, context: opts.Context, admit: admit, log: s.log,
		onReply: opts.OnReply, results: map[int64]agents.Result{}, cut: map[int64]string{}}
	cfg := voice.PipelineConfig{
		Responder: responder, InputFormat: opts.InputFormat, InputSampleRate: opts.InputSampleRate,
		OutputFormat: opts.OutputFormat, OutputSampleRate: opts.OutputSampleRate, TextOnly: opts.TextOnly,
		Tier: opts.Tier, Plan: plan, Voice: opts.Voice, Speed: opts.Speed, Language: opts.Language,
		VAD: vad, Clock: s.voiceLimits.Clock, Logger: s.log,
	}
	if s.cfg.Voice != nil {
		cfg.Router = s.cfg.Voice
	}
	pipe, err := voice.NewPipeline(cfg)
	if err != nil {
		release()
		if apiErr, ok := voiceError(err); ok {
			return nil, apiErr
		}
		return nil, err
	}
	vs := &voiceSession{srv: s, conv: conv, opts: opts, pipe: pipe, responder: responder, release: release,
		bytesPerSec: s.voiceLimits.AudioRateFactor * float64(inputBytesPerSecond(opts.InputFormat, opts.InputSampleRate))}
	vs.allowance = vs.bytesPerSec
	s.metrics.voiceSessions.WithLabelValues(opts.Transport).Inc()
	return vs, nil
}

// mergeVAD takes every field the client set over the gateway's defaults.
func mergeVAD(base, over voice.VADConfig) voice.VADConfig {
	if over.ThresholdDB != 0 {
		base.ThresholdDB = over.ThresholdDB
	}
	if over.PrefixPadding != 0 {
		base.PrefixPadding = over.PrefixPadding
	}
	if over.SilenceDuration != 0 {
		base.SilenceDuration = over.SilenceDuration
	}
	if over.MinSpeech != 0 {
		base.MinSpeech = over.MinSpeech
	}
	return base
}

// inputBytesPerSecond is the real-time byte rate of an input format; Opus is bounded by its
// highest bitrate (510 kbit/s).
func inputBytesPerSecond(format string, rate int) int {
	switch format {
	case voice.FormatULaw, voice.FormatALaw:
		return 8000
	case voice.FormatOpus:
		return 510_000 / 8
	}
	if rate == 0 {
		rate = 16000
	}
	return 2 * rate
}

// Run runs the pipeline until ctx ends, the session's time is up, or the pipeline stops (its
// consumer stalled); it returns the reason.
func (vs *voiceSession) Run(ctx context.Context) error {
	ctx, cancel := context.WithTimeoutCause(ctx, vs.srv.voiceLimits.MaxDuration, errSessionExpired)
	defer cancel()
	err := vs.pipe.Run(ctx)
	if errors.Is(context.Cause(ctx), errSessionExpired) {
		return errSessionExpired
	}
	return err
}

var errSessionExpired = errors.New("voice session: maximum duration reached")

// Close stops the pipeline and frees the user's session slot; it may be called more than once.
func (vs *voiceSession) Close() {
	vs.pipe.Close()
	vs.inMu.Lock()
	release := vs.release
	vs.release = nil
	vs.inMu.Unlock()
	if release != nil {
		release()
		// Counted when the session ends, so a client that stopped reading (whose turns never
		// reach response.done) is counted too.
		vs.srv.metrics.droppedAudio.Add(float64(vs.pipe.Stats().DroppedAudio))
		vs.srv.metrics.voiceSessions.WithLabelValues(vs.opts.Transport).Dec()
	}
}

// Push takes one input frame. A frame over the audio rate is dropped and counted
// (CodeAudioRateExceeded); a frame that is not the declared format is refused (CodeBadAudio).
// Either way the session goes on.
func (vs *voiceSession) Push(frame []byte) error {
	if err := vs.checkDeclaredFormat(frame); err != nil {
		vs.srv.metrics.badAudio.Inc()
		return err
	}
	vs.inMu.Lock()
	now := time.Now()
	if !vs.lastPush.IsZero() {
		vs.allowance = min(vs.bytesPerSec, vs.allowance+now.Sub(vs.lastPush).Seconds()*vs.bytesPerSec)
	}
	vs.lastPush = now
	over := float64(len(frame)) > vs.allowance
	if over {
		vs.droppedIn++
	} else {
		vs.allowance -= float64(len(frame))
	}
	dropped := vs.droppedIn
	vs.inMu.Unlock()
	if over {
		vs.srv.metrics.droppedInput.Inc()
		return &APIError{Status: http.StatusTooManyRequests, Code: CodeAudioRateExceeded,
			Message: fmt.Sprintf("audio is arriving faster than %.0f× real time; %d frames dropped so far", vs.srv.voiceLimits.AudioRateFactor, dropped)}
	}
	if err := vs.pipe.Push(frame); err != nil {
		if errors.Is(err, voice.ErrBadAudio) {
			vs.srv.metrics.badAudio.Inc()
			return &APIError{Status: http.StatusBadRequest, Code: CodeBadAudio, Message: err.Error(), cause: err}
		}
		return vs.apiError(err)
	}
	return nil
}

// checkDeclaredFormat refuses frames that are files rather than raw frames of the declared
// format: the most common client mistake (sending a WAV or MP3 as "pcm16").
func (vs *voiceSession) checkDeclaredFormat(frame []byte) error {
	container := audio.Detect(frame)
	if container == "" || (container == audio.FormatMP3 &&
		(vs.opts.InputFormat == voice.FormatOpus || vs.opts.InputFormat == voice.FormatULaw || vs.opts.InputFormat == voice.FormatALaw)) {
		return nil // an Opus packet or a short G.711 frame may begin like an MP3 frame header
	}
	declared := vs.opts.InputFormat
	if declared == "" {
		declared = voice.FormatPCM16
	}
	return newAPIError(http.StatusBadRequest, CodeBadAudio,
		"the frame is a %s file, but the session declared raw %s frames: send the samples without a container, or declare the format you send", container, declared)
}

// PushText starts a turn from text (a typed message, or the device's transcript).
func (vs *voiceSession) PushText(text string) error { return vs.apiError(vs.pipe.PushText(text)) }

// Drain stops taking input and waits until the turn in progress has delivered its last event
// (see voice.Pipeline.Drain).
func (vs *voiceSession) Drain(ctx context.Context) error { return vs.pipe.Drain(ctx) }

// Commit ends the utterance in progress now; false when there was none.
func (vs *voiceSession) Commit() bool { return vs.pipe.Commit() }

// ClearInput drops the utterance in progress.
func (vs *voiceSession) ClearInput() { vs.pipe.ClearInput() }

// Interrupt cancels the running turn; false when there was none.
func (vs *voiceSession) Interrupt() bool { return vs.pipe.Interrupt() }

// Stats reports the pipeline's counters plus the input frames dropped for the rate.
func (vs *voiceSession) Stats() (voice.PipelineStats, int64) {
	vs.inMu.Lock()
	defer vs.inMu.Unlock()
	return vs.pipe.Stats(), vs.droppedIn
}

func (vs *voiceSession) apiError(err error) error {
	if err == nil {
		return nil
	}
	if apiErr, ok := voiceError(err); ok {
		return apiErr
	}
	if errors.Is(err, voice.ErrPipelineClosed) {
		return newAPIError(http.StatusGone, CodeSessionExpired, "the voice session has ended")
	}
	if errors.Is(err, voice.ErrDraining) {
		return newAPIError(http.StatusServiceUnavailable, CodeShuttingDown, "the gateway is shutting down: the reply in progress finishes, then reconnect")
	}
	return err
}

// Events yields the pipeline's events in order until it stops, after doing what the gateway
// owes each one: an interrupted reply's stored message is cut to what was played, and
// finished turns are measured.
func (vs *voiceSession) Events() iter.Seq[voice.Event] {
	return func(yield func(voice.Event) bool) {
		m := vs.srv.metrics
		for ev := range vs.pipe.Events() {
			switch ev := ev.(type) {
			case voice.ResponseDone:
				vs.responder.forget(ev.Turn)
				m.observeTurn("done", ev.Latency)
				vs.srv.observeVoiceReply(vs.conv, vs.opts.Tier, "done", ev.Info, ev.Speech)
			case voice.ResponseInterrupted:
				vs.responder.cutTo(context.WithoutCancel(vs.srv.hardStop), ev.Turn, ev.PlayedText)
				m.observeTurn("interrupted", ev.Latency)
				vs.srv.observeVoiceReply(vs.conv, vs.opts.Tier, "interrupted", nil, ev.Speech)
			case voice.Error:
				vs.responder.forget(ev.Turn)
				m.voiceTurns.WithLabelValues("error").Inc()
			}
			if !yield(ev) {
				return
			}
		}
	}
}

// eventError gives a pipeline Error event the gateway's code: the responder's errors (budget,
// rate limit, provider) keep theirs.
func eventError(ev voice.Error) *APIError {
	if ev.Err != nil {
		if apiErr := toAPIError(ev.Err); apiErr.Code != CodeInternal {
			return apiErr
		}
	}
	return &APIError{Status: http.StatusBadGateway, Code: ev.Code, Message: ev.Message}
}

// engineResponder answers a voice session's turns through the agent engine, and cuts a
// stored reply to what was played when the user interrupts it.
type engineResponder struct {
	engine  *agents.Engine
	conv    agents.Conversation
	context map[string]any
	admit   func(context.Context) error
	log     *slog.Logger
	onReply func(turn int64, res agents.Result)

	mu      sync.Mutex
	results map[int64]agents.Result // replies stored, by pipeline turn, until the turn ends
	cut     map[int64]string        // played text of turns interrupted before their reply was stored
}

var _ voice.Responder = (*engineResponder)(nil)

func (r *engineResponder) Respond(ctx context.Context, text string, onDelta func(string) error) (voice.Reply, error) {
	if r.admit != nil {
		if err := r.admit(ctx); err != nil {
			return voice.Reply{}, err
		}
	}
	t, err := r.engine.Start(ctx, agents.Request{AgentID: r.conv.AgentID, SessionID: r.conv.SessionID, UserID: r.conv.UserID, Message: text, Context: r.context})
	if err != nil {
		return voice.Reply{}, err
	}
	res, err := t.Run(ctx, onDelta)
	turn, _ := voice.TurnID(ctx)
	r.mu.Lock()
	played, interrupted := r.cut[turn]
	delete(r.cut, turn)
	if !interrupted && res.MessageID != "" {
		r.results[turn] = res
	}
	r.mu.Unlock()
	if interrupted {
		r.truncate(context.WithoutCancel(ctx), res, played)
	}
	if r.onReply != nil && res.MessageID != "" {
		r.onReply(turn, res)
	}
	return voice.Reply{Text: res.Content, Info: res}, err
}

// cutTo keeps only the played text of the turn's stored reply, now or, when the reply is not
// stored yet, as soon as Respond has stored it.
func (r *engineResponder) cutTo(ctx context.Context, turn int64, played string) {
	r.mu.Lock()
	res, stored := r.results[turn]
	delete(r.results, turn)
	if !stored {
		r.cut[turn] = played
	}
	r.mu.Unlock()
	if stored {
		r.truncate(ctx, res, played)
	}
}

func (r *engineResponder) truncate(ctx context.Context, res agents.Result, played string) {
	if res.MessageID == "" || played == res.Content {
		return
	}
	if err := r.engine.TruncateReply(ctx, r.conv.UserID, res.SessionID, res.MessageID, played); err != nil {
		r.log.Warn("interrupted reply not truncated", "session", res.SessionID, "message", res.MessageID, "err", err)
	}
}

func (r *engineResponder) forget(turn int64) {
	r.mu.Lock()
	delete(r.results, turn)
	delete(r.cut, turn)
	r.mu.Unlock()
}

// voiceSlots counts each user's live voice sessions on this replica.
type voiceSlots struct {
	mu    sync.Mutex
	count map[string]int
}

func (v *voiceSlots) acquire(userID string, limit int) (release func(), err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.count == nil {
		v.count = map[string]int{}
	}
	if v.count[userID] >= limit {
		return nil, newAPIError(http.StatusTooManyRequests, CodeTooManySessions,
			"user %q already has %d live voice sessions, the most allowed; end one first", userID, limit)
	}
	v.count[userID]++
	var once sync.Once
	return func() {
		once.Do(func() {
			v.mu.Lock()
			defer v.mu.Unlock()
			if v.count[userID]--; v.count[userID] <= 0 {
				delete(v.count, userID)
			}
		})
	}, nil
}

// turnAdmission is the rate limit of a caller's voice turns, for openVoiceSession's admit;
// nil without a limiter.
func (s *Server) turnAdmission(key string, limit Limit) func(context.Context) error {
	if s.cfg.RateLimiter == nil {
		return nil
	}
	return func(ctx context.Context) error {
		if d, ok := s.checkRate(ctx, key, limit); ok && !d.Allowed {
			return rateLimitedError(d, limit)
		}
		return nil
	}
}
