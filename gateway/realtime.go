package gateway

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/coder/websocket"
	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/session"
	"github.com/dartmouth-gw/dartmouth/voice"
	"github.com/labstack/echo/v4"
)

// GET /v1/realtime speaks a subset of OpenAI's Realtime GA event protocol over a WebSocket, so
// existing Realtime clients (the OpenAI SDKs' realtime connections, browser demos, telephony
// bridges) can talk to the gateway's agents by voice.
//
// The query's model names the agent (an agent id such as "fam"; any other name gets the
// default agent, fam). Two extensions: session_id resumes a stored conversation (it is the
// id session.created reports), user_id names the user in open mode. The connection is a voice
// session of the shared voice layer (voicesession.go): input audio goes to the pipeline's VAD
// and STT, the agent's reply comes back as text deltas and 20 ms audio frames in the session's
// output format, and speech during a reply cuts it (barge-in).
//
// The pipeline is built from the session's settings, so a session.update that changes any of
// them (formats, turn detection, voice, modalities, instructions) closes the pipeline and opens
// a new one on the same conversation; it is refused while a response is in progress.
//
// With turn detection off (turn_detection null) or create_response false, a committed
// utterance is transcribed at once but answered only when the client sends response.create:
// the pipeline's turn waits at its admission until then.

// Realtime audio formats (session.audio.input/output.format.type) and their only rate.
const (
	realtimePCM  = "audio/pcm"
	realtimePCMU = "audio/pcmu"
	realtimePCMA = "audio/pcma"
	realtimeRate = 24000
)

// Error codes of the Realtime endpoint; the first three are OpenAI's own.
const (
	CodeCommitEmpty        = "input_audio_buffer_commit_empty"
	CodeActiveResponse     = "conversation_already_has_active_response"
	CodeNoActiveResponse   = "response_cancel_not_active"
	CodeBetaShapeDisabled  = "beta_api_shape_disabled"
	CodeItemNotFound       = "item_not_found"
	CodeUnsupportedFeature = "unsupported_feature"
	CodeNothingToAnswer    = "no_input_to_answer"
)

// realtimeDefaultAgent answers when the query's model is not an agent id.
const realtimeDefaultAgent = "fam"

// rtEvent is a server event as it goes on the wire; emit stamps its event_id.
type rtEvent map[string]any

// rtClientEvent is any client event; each type uses its own fields.
type rtClientEvent struct {
	Type         string          `json:"type"`
	EventID      string          `json:"event_id"`
	Session      json.RawMessage `json:"session"`
	Audio        *string         `json:"audio"`
	Item         json.RawMessage `json:"item"`
	ItemID       string          `json:"item_id"`
	ContentIndex int             `json:"content_index"`
	AudioEndMs   *int64          `json:"audio_end_ms"`
	ResponseID   string          `json:"response_id"`
}

// rtFormat is a Realtime audio format.
type rtFormat struct {
	Type string `json:"type"`
	Rate int    `json:"rate,omitempty"`
}

// pipeline names the format in the voice layer's terms.
func (f rtFormat) pipeline() (format string, rate int) {
	switch f.Type {
	case realtimePCMU:
		return voice.FormatULaw, 8000
	case realtimePCMA:
		return voice.FormatALaw, 8000
	}
	return voice.FormatPCM16, realtimeRate
}

func parseRealtimeFormat(f rtFormat, param string) (rtFormat, *APIError) {
	switch f.Type {
	case realtimePCM:
		if f.Rate != 0 && f.Rate != realtimeRate {
			return f, invalidParam(param+".rate", "audio/pcm is 24000 Hz, not %d", f.Rate)
		}
		return rtFormat{Type: realtimePCM, Rate: realtimeRate}, nil
	case realtimePCMU, realtimePCMA:
		return rtFormat{Type: f.Type}, nil
	}
	return f, invalidParam(param+".type", "audio format %s: want audio/pcm (24 kHz PCM16), audio/pcmu or audio/pcma", strconvQuote(f.Type))
}

// rtVAD is server_vad turn detection as session.updated reports it.
type rtVAD struct {
	Type              string  `json:"type"`
	Threshold         float64 `json:"threshold"`
	PrefixPaddingMs   int     `json:"prefix_padding_ms"`
	SilenceDurationMs int     `json:"silence_duration_ms"`
	CreateResponse    bool    `json:"create_response"`
	// InterruptResponse is always true: speech during a reply always cuts it.
	InterruptResponse bool `json:"interrupt_response"`
	IdleTimeoutMs     *int `json:"idle_timeout_ms"`
}

// thresholdDBPerUnit maps OpenAI's threshold (0..1, default 0.5) onto the VAD's margin over
// the noise floor: 0.5 is the VAD's default 12 dB.
const thresholdDBPerUnit = 24

// rtConfig is a connection's effective session settings; the pipeline is built from them.
type rtConfig struct {
	inFormat, outFormat rtFormat
	voice               string
	speed               float64
	language            string
	textOnly            bool
	instructions        string
	manual              bool // turn_detection null: the client commits
	vad                 rtVAD
}

// gated reports whether committed audio waits for response.create.
func (c rtConfig) gated() bool { return c.manual || !c.vad.CreateResponse }

func (s *Server) defaultRealtimeVAD() rtVAD {
	base := s.voiceLimits.VAD
	v := rtVAD{Type: "server_vad", Threshold: 0.5, PrefixPaddingMs: 300, SilenceDurationMs: 500, CreateResponse: true, InterruptResponse: true}
	if base.ThresholdDB > 0 {
		v.Threshold = base.ThresholdDB / thresholdDBPerUnit
	}
	if base.PrefixPadding > 0 {
		v.PrefixPaddingMs = int(base.PrefixPadding.Milliseconds())
	}
	if base.SilenceDuration > 0 {
		v.SilenceDurationMs = int(base.SilenceDuration.Milliseconds())
	}
	return v
}

func (s *Server) defaultRealtimeConfig() rtConfig {
	pcm := rtFormat{Type: realtimePCM, Rate: realtimeRate}
	return rtConfig{inFormat: pcm, outFormat: pcm, vad: s.defaultRealtimeVAD(), textOnly: s.cfg.Voice == nil}
}

// realtimeVoiceOptions builds the voice session's options from the settings.
func (s *Server) realtimeVoiceOptions(c rtConfig) voiceOptions {
	o := voiceOptions{Transport: "realtime", Voice: c.voice, Speed: c.speed, Language: c.language, TextOnly: c.textOnly}
	o.InputFormat, o.InputSampleRate = c.inFormat.pipeline()
	o.OutputFormat, o.OutputSampleRate = c.outFormat.pipeline()
	if c.instructions != "" {
		o.Context = map[string]any{"instructions": c.instructions}
	}
	if s.cfg.Voice == nil {
		o.Tier, o.TextOnly = string(voice.TierNative), true
	}
	if c.manual {
		// Only the client ends an utterance: the silence that would end it is as long as the
		// VAD allows (an utterance still ends at MaxUtterance).
		maxUtterance := cmp.Or(s.voiceLimits.VAD.MaxUtterance, 30*time.Second)
		if silence := maxUtterance - s.voiceLimits.VAD.MinSpeech - voice.FrameDuration; silence > 0 {
			o.VAD.SilenceDuration = silence
		}
		return o
	}
	o.VAD = voice.VADConfig{ThresholdDB: c.vad.Threshold * thresholdDBPerUnit,
		PrefixPadding: ms(c.vad.PrefixPaddingMs), SilenceDuration: ms(c.vad.SilenceDurationMs)}
	return o
}

// rtSessionUpdate is session.update's session; absent fields keep their value.
type rtSessionUpdate struct {
	Type             string   `json:"type"`
	Instructions     *string  `json:"instructions"`
	OutputModalities []string `json:"output_modalities"`
	Audio            *struct {
		Input *struct {
			Format        *rtFormat       `json:"format"`
			TurnDetection json.RawMessage `json:"turn_detection"`
			Transcription *struct {
				Language string `json:"language"`
			} `json:"transcription"`
		} `json:"input"`
		Output *struct {
			Format *rtFormat       `json:"format"`
			Voice  json.RawMessage `json:"voice"`
			Speed  *float64        `json:"speed"`
		} `json:"output"`
	} `json:"audio"`
	Tools json.RawMessage `json:"tools"`
	// The beta protocol's flat fields, refused with the GA name to use.
	Modalities        json.RawMessage `json:"modalities"`
	InputAudioFormat  json.RawMessage `json:"input_audio_format"`
	OutputAudioFormat json.RawMessage `json:"output_audio_format"`
	TurnDetection     json.RawMessage `json:"turn_detection"`
	Voice             json.RawMessage `json:"voice"`
}

// hasJSON reports whether a field was sent with a value other than null.
func hasJSON(raw json.RawMessage) bool {
	t := strings.TrimSpace(string(raw))
	return t != "" && t != "null"
}

// applyRealtimeUpdate returns the settings after u, or the error naming the offending field.
func (s *Server) applyRealtimeUpdate(c rtConfig, u rtSessionUpdate) (rtConfig, *APIError) {
	if u.Type != "" && u.Type != "realtime" {
		return c, unsupported("session.type", "session type %s is not supported; this endpoint runs realtime sessions (type \"realtime\")", strconvQuote(u.Type))
	}
	for _, beta := range []struct {
		raw      json.RawMessage
		name, ga string
	}{
		{u.Modalities, "modalities", "output_modalities"}, {u.InputAudioFormat, "input_audio_format", "audio.input.format"},
		{u.OutputAudioFormat, "output_audio_format", "audio.output.format"}, {u.TurnDetection, "turn_detection", "audio.input.turn_detection"},
		{u.Voice, "voice", "audio.output.voice"},
	} {
		if hasJSON(beta.raw) {
			return c, invalidParam("session."+beta.name, "session.%s is the beta protocol's; this endpoint speaks the GA one: use session.%s", beta.name, beta.ga)
		}
	}
	if present(u.Tools) {
		return c, unsupported("session.tools", "tools and function calling are not supported by this gateway")
	}
	if u.Instructions != nil {
		c.instructions = strings.TrimSpace(*u.Instructions)
	}
	if u.OutputModalities != nil {
		switch {
		case len(u.OutputModalities) == 1 && u.OutputModalities[0] == "audio":
			if s.cfg.Voice == nil {
				return c, newAPIError(http.StatusServiceUnavailable, CodeVoiceDisabled, "voice is not configured on this gateway: only output_modalities [\"text\"] is available")
			}
			c.textOnly = false
		case len(u.OutputModalities) == 1 && u.OutputModalities[0] == "text":
			c.textOnly = true
		default:
			return c, invalidParam("session.output_modalities", "output_modalities must be [\"audio\"] (with its transcript) or [\"text\"], not %v", u.OutputModalities)
		}
	}
	if u.Audio == nil {
		return c, nil
	}
	if in := u.Audio.Input; in != nil {
		if in.Format != nil {
			f, err := parseRealtimeFormat(*in.Format, "session.audio.input.format")
			if err != nil {
				return c, err
			}
			c.inFormat = f
		}
		if in.TurnDetection != nil {
			if !hasJSON(in.TurnDetection) {
				c.manual = true
			} else {
				v, err := s.parseTurnDetection(in.TurnDetection)
				if err != nil {
					return c, err
				}
				c.manual, c.vad = false, v
			}
		}
		if in.Transcription != nil {
			c.language = strings.TrimSpace(in.Transcription.Language)
		}
	}
	if out := u.Audio.Output; out != nil {
		if out.Format != nil {
			f, err := parseRealtimeFormat(*out.Format, "session.audio.output.format")
			if err != nil {
				return c, err
			}
			c.outFormat = f
		}
		if hasJSON(out.Voice) {
			var name string
			var custom struct {
				ID string `json:"id"`
			}
			if json.Unmarshal(out.Voice, &name) != nil {
				if err := json.Unmarshal(out.Voice, &custom); err != nil || custom.ID == "" {
					return c, invalidParam("session.audio.output.voice", "voice must be a name or {\"id\": …}")
				}
				name = custom.ID
			}
			c.voice = strings.TrimSpace(name)
		}
		if out.Speed != nil {
			if sp := *out.Speed; sp < 0.25 || sp > 1.5 || math.IsNaN(sp) {
				return c, invalidParam("session.audio.output.speed", "speed must be between 0.25 and 1.5, not %v", sp)
			}
			c.speed = *out.Speed
			if c.speed == 1 {
				c.speed = 0 // the providers' own pace
			}
		}
	}
	return c, nil
}

func (s *Server) parseTurnDetection(raw json.RawMessage) (rtVAD, *APIError) {
	var td struct {
		Type              string   `json:"type"`
		Threshold         *float64 `json:"threshold"`
		PrefixPaddingMs   *int     `json:"prefix_padding_ms"`
		SilenceDurationMs *int     `json:"silence_duration_ms"`
		CreateResponse    *bool    `json:"create_response"`
	}
	const param = "session.audio.input.turn_detection"
	if err := json.Unmarshal(raw, &td); err != nil {
		return rtVAD{}, invalidParam(param, "turn_detection must be null or a server_vad object: %v", err)
	}
	// semantic_vad is answered by the same VAD: the gateway has no semantic turn model.
	if td.Type != "server_vad" && td.Type != "semantic_vad" {
		return rtVAD{}, invalidParam(param+".type", "turn detection %s: want server_vad (or null to commit by hand)", strconvQuote(td.Type))
	}
	v := s.defaultRealtimeVAD()
	if p := td.Threshold; p != nil {
		if *p <= 0 || *p > 1 || math.IsNaN(*p) {
			return v, invalidParam(param+".threshold", "threshold must be in (0, 1], not %v", *p)
		}
		v.Threshold = *p
	}
	for _, f := range []struct {
		in   *int
		out  *int
		name string
	}{{td.PrefixPaddingMs, &v.PrefixPaddingMs, "prefix_padding_ms"}, {td.SilenceDurationMs, &v.SilenceDurationMs, "silence_duration_ms"}} {
		if f.in == nil {
			continue
		}
		if *f.in < 0 || *f.in > 10_000 {
			return v, invalidParam(param+"."+f.name, "%s must be between 0 and 10000, not %d", f.name, *f.in)
		}
		if *f.in > 0 {
			*f.out = *f.in
		}
	}
	if td.CreateResponse != nil {
		v.CreateResponse = *td.CreateResponse
	}
	return v, nil
}

func unsupported(param, format string, args ...any) *APIError {
	e := newAPIError(http.StatusBadRequest, CodeUnsupportedFeature, format, args...)
	e.Details = map[string]any{"field": param}
	return e
}

// realtime is GET /v1/realtime.
func (s *Server) realtime(c echo.Context) error {
	r := c.Request()
	if !s.originAllowed(r) {
		return newAPIError(http.StatusForbidden, CodeForbiddenOrigin, "origin %q is not allowed", r.Header.Get("Origin"))
	}
	if s.draining() {
		return newAPIError(http.StatusServiceUnavailable, CodeShuttingDown, "the gateway is shutting down")
	}
	userID, err := s.callerUser(c, c.QueryParam("user_id"))
	if err != nil {
		return err
	}
	model := strings.TrimSpace(c.QueryParam("model"))
	agentID := realtimeDefaultAgent
	if _, ok := s.cfg.Engine.Registry().Get(model); ok {
		agentID = model
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	sess, _, err := s.cfg.Engine.OpenSession(ctx, agents.Conversation{AgentID: agentID, SessionID: c.QueryParam("session_id"), UserID: userID})
	cancel()
	if err != nil {
		return err
	}
	rt := &rtSession{srv: s, requestID: requestID(c), model: cmp.Or(model, agentID), opened: time.Now(),
		conv:    agents.Conversation{AgentID: sess.AgentID, SessionID: sess.ID, UserID: sess.UserID},
		changed: make(chan struct{}), items: map[string]*rtAssistantItem{}}
	rt.rateKey, rt.rateLimit = s.rateLimitFor(r)
	_, rt.plan = s.cfg.Identify(r)
	rt.cfg = s.defaultRealtimeConfig()
	// The pipeline opens before the upgrade, so a refusal (too many sessions) is an HTTP error.
	vs, err := rt.openVoice(rt.cfg)
	if err != nil {
		return err
	}
	conn, err := websocket.Accept(c.Response(), r, &websocket.AcceptOptions{
		InsecureSkipVerify: true, // the origin was checked above against the same list CORS uses
	})
	if err != nil {
		vs.Close()
		return nil // Accept has written the HTTP error
	}
	if !s.trackSocket() {
		vs.Close()
		conn.Close(websocket.StatusGoingAway, "server shutting down")
		return nil
	}
	defer s.sockets.Done()
	rt.conn = conn
	rt.serve(vs, strings.Contains(r.Header.Get("OpenAI-Beta"), "realtime=v1"))
	return nil
}

// rtSession is one Realtime connection. The read loop owns it and its voice session; the
// voice session's events are translated by its pump goroutine. State shared with the pump,
// the pipeline's turns and the drain watcher is under mu; sendMu orders the wire like the
// state: whoever changes the state writes the events of that change before anyone else
// writes.
type rtSession struct {
	srv       *Server
	conn      *websocket.Conn
	requestID string
	rateKey   string
	rateLimit Limit
	plan      string
	conv      agents.Conversation
	model     string
	opened    time.Time

	ctx    context.Context // ends with the connection
	cancel context.CancelFunc
	sendMu sync.Mutex

	// Owned by the read loop.
	vs        *voiceSession
	voiceDone sync.WaitGroup // the voice session's Run and pump

	mu  sync.Mutex
	cfg rtConfig
	gen int // the voice session's generation; a session.update that rebuilds it adds one
	// gated is cfg.gated() of the running voice session.
	gated bool
	// changed is closed and replaced whenever a response is requested, starts or ends.
	changed chan struct{}
	// requested is an unanswered response.create for committed audio (gated sessions).
	requested bool
	// pendingText holds the user's text items since the last response (and, in gated
	// sessions, transcripts of utterances the user spoke over before asking for an answer).
	pendingText []string
	// unseenCommits counts manual commits whose committed event the pump has not sent.
	unseenCommits int
	// pendingResponse is set from a response.create that started a text turn until its
	// response starts.
	pendingResponse bool
	resp            *rtResponse // the response in progress
	turns           map[int64]*rtTurn
	latestTurn      int64
	speechItem      string // the user item of the utterance being spoken
	lastItem        string // the conversation's last item, previous_item_id of the next
	items           map[string]*rtAssistantItem
	itemOrder       []string
	cuts            []rtCut // stored replies to cut, done outside the locks
}

// rtTurn is what the connection knows of one pipeline turn.
type rtTurn struct {
	id          int64
	userItem    string // the committed audio's item; "" for text turns
	audio       bool
	transcribed bool
	ended       bool
	released    bool // a gated turn that response.create let answer
	consumed    bool // a gated turn whose transcript response.create answered as text
	transcript  string
	utterMs     int64
	resp        *rtResponse
	stored      *agents.Result // the stored reply, from OnReply
}

// rtResponse is a response in progress.
type rtResponse struct {
	id   string
	item *rtAssistantItem
}

// rtAssistantItem is an assistant message of the connection, kept for truncation.
type rtAssistantItem struct {
	id        string
	audio     bool
	rate      int // sample rate of the TTS audio (pcm16 at the output rate)
	deltas    []string
	frames    int // audio frames delivered
	speech    []voice.SpeakResult
	final     bool
	content   string // what the conversation holds
	messageID string
	sessionID string
	truncAt   *int64 // audio_end_ms of a truncation not yet applied to the store
}

// rtCut is a stored reply to cut to what was heard.
type rtCut struct{ sessionID, messageID, text string }

// maxRealtimeItems bounds the assistant items a connection remembers for truncation.
const maxRealtimeItems = 64

func (rt *rtSession) serve(vs *voiceSession, betaShape bool) {
	s := rt.srv
	rt.ctx, rt.cancel = context.WithCancel(s.hardStop)
	defer rt.cancel()
	defer rt.conn.CloseNow()
	// Read up to twice the limit so an oversized frame can be told apart from a broken one
	// and answered with an error event before closing.
	rt.conn.SetReadLimit(2 * s.cfg.WSMaxFrameBytes)
	rt.emit(func() []rtEvent { return []rtEvent{{"type": "session.created", "session": rt.sessionObjectLocked()}} })
	rt.startVoice(vs)
	var watchers sync.WaitGroup
	watchers.Go(rt.closeOnDrain)
	defer watchers.Wait()
	defer rt.cancel()

	if betaShape {
		rt.sendError("", newAPIError(http.StatusBadRequest, CodeBetaShapeDisabled,
			"the beta Realtime protocol (OpenAI-Beta: realtime=v1) is not served; connect without that header and speak the GA events"))
		rt.conn.Close(websocket.StatusPolicyViolation, "beta protocol not supported")
	} else {
		rt.readLoop()
	}
	rt.endVoice()
}

func (rt *rtSession) readLoop() {
	s := rt.srv
	for {
		readCtx, cancelRead := context.WithTimeout(rt.ctx, s.cfg.WSIdleTimeout)
		typ, r, err := rt.conn.Reader(readCtx)
		if err != nil {
			cancelRead()
			if errors.Is(err, context.DeadlineExceeded) && rt.ctx.Err() == nil {
				rt.conn.Close(websocket.StatusPolicyViolation, "idle timeout")
			}
			return
		}
		data, err := io.ReadAll(io.LimitReader(r, s.cfg.WSMaxFrameBytes+1))
		cancelRead()
		if err != nil {
			return
		}
		if int64(len(data)) > s.cfg.WSMaxFrameBytes {
			rt.sendError("", newAPIError(http.StatusRequestEntityTooLarge, CodeFrameTooLarge,
				"event is over the limit of %d bytes: send audio in smaller input_audio_buffer.append events", s.cfg.WSMaxFrameBytes))
			rt.conn.Close(websocket.StatusMessageTooBig, "frame too large")
			return
		}
		if typ == websocket.MessageBinary {
			rt.sendError("", newAPIError(http.StatusBadRequest, CodeUnsupportedFrame,
				"binary frames are not part of the Realtime protocol: send audio base64-encoded in input_audio_buffer.append"))
			continue
		}
		rt.handle(data)
	}
}

// closeOnDrain ends the connection politely when the gateway shuts down: the response in
// progress finishes first, then the client is told to reconnect elsewhere.
func (rt *rtSession) closeOnDrain() {
	select {
	case <-rt.ctx.Done():
		return
	case <-rt.srv.drain:
	}
	for {
		rt.mu.Lock()
		busy := rt.resp != nil || rt.pendingResponse
		changed := rt.changed
		rt.mu.Unlock()
		if !busy {
			break
		}
		select {
		case <-changed:
		case <-rt.ctx.Done():
			return
		}
	}
	rt.conn.Close(websocket.StatusGoingAway, "server shutting down")
	rt.cancel()
}

// openVoice opens a voice session for the settings; the read loop owns it.
func (rt *rtSession) openVoice(cfg rtConfig) (*voiceSession, error) {
	rt.mu.Lock()
	rt.gen++
	gen, gated := rt.gen, cfg.gated()
	rt.gated, rt.turns, rt.latestTurn, rt.speechItem, rt.requested = gated, map[int64]*rtTurn{}, 0, "", false
	rt.mu.Unlock()
	opts := rt.srv.realtimeVoiceOptions(cfg)
	opts.OnReply = func(turn int64, res agents.Result) { rt.onReply(gen, turn, res) }
	rate := rt.srv.turnAdmission(rt.rateKey, rt.rateLimit)
	admit := func(ctx context.Context) error {
		if gated {
			if err := rt.awaitResponseRequest(ctx); err != nil {
				return err
			}
		}
		if rate != nil {
			return rate(ctx)
		}
		return nil
	}
	return rt.srv.openVoiceSession(rt.conv, rt.plan, opts, admit)
}

// startVoice runs the voice session: its pipeline and the pump of its events, both stopped by
// endVoice.
func (rt *rtSession) startVoice(vs *voiceSession) {
	rt.mu.Lock()
	gen := rt.gen
	rt.mu.Unlock()
	rt.vs = vs
	rt.voiceDone.Add(2)
	go func() {
		defer rt.voiceDone.Done()
		err := vs.Run(rt.ctx)
		switch {
		case errors.Is(err, errSessionExpired):
			rt.sendError("", newAPIError(http.StatusGone, CodeSessionExpired,
				"the session reached its maximum duration; reconnect with session_id=%s to go on", rt.conv.SessionID))
			rt.conn.Close(websocket.StatusPolicyViolation, "session expired")
			rt.cancel()
		case errors.Is(err, voice.ErrEventsStalled):
			rt.conn.Close(websocket.StatusPolicyViolation, "client stopped reading")
			rt.cancel()
		}
	}()
	go func() {
		defer rt.voiceDone.Done()
		for ev := range vs.Events() {
			rt.emit(func() []rtEvent { return rt.translateLocked(gen, ev) })
			rt.applyCuts()
		}
	}()
}

// endVoice closes the voice session and waits for its goroutines.
func (rt *rtSession) endVoice() {
	if rt.vs != nil {
		rt.vs.Close()
		rt.voiceDone.Wait()
		rt.vs = nil
	}
}

// rebuild replaces the voice session with one built from next; on failure the previous
// settings are restored.
func (rt *rtSession) rebuild(next rtConfig) error {
	rt.mu.Lock()
	prev := rt.cfg
	rt.mu.Unlock()
	rt.endVoice()
	vs, err := rt.openVoice(next)
	if err == nil {
		rt.mu.Lock()
		rt.cfg = next
		rt.mu.Unlock()
		rt.startVoice(vs)
		return nil
	}
	vs, prevErr := rt.openVoice(prev)
	if prevErr != nil {
		rt.sendError("", prevErr)
		rt.conn.Close(websocket.StatusInternalError, "voice session lost")
		rt.cancel()
		return err
	}
	rt.startVoice(vs)
	return err
}

// awaitResponseRequest holds a gated turn until response.create asks for its answer.
func (rt *rtSession) awaitResponseRequest(ctx context.Context) error {
	turn, _ := voice.TurnID(ctx)
	for {
		rt.mu.Lock()
		if err := ctx.Err(); err != nil {
			rt.mu.Unlock()
			return err
		}
		if rt.requested {
			rt.requested = false
			rt.turnLocked(turn).released = true
			rt.mu.Unlock()
			return nil
		}
		changed := rt.changed
		rt.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
		}
	}
}

// onReply learns the stored message of a turn's reply, and applies a truncation that was
// waiting for it.
func (rt *rtSession) onReply(gen int, turn int64, res agents.Result) {
	rt.mu.Lock()
	if gen == rt.gen {
		t := rt.turnLocked(turn)
		t.stored = &res
		if t.resp != nil {
			it := t.resp.item
			it.messageID, it.sessionID = res.MessageID, res.SessionID
			rt.queueCutLocked(it)
		}
	}
	rt.mu.Unlock()
	rt.applyCuts()
}

func (rt *rtSession) broadcastLocked() {
	close(rt.changed)
	rt.changed = make(chan struct{})
}

func (rt *rtSession) turnLocked(id int64) *rtTurn {
	if rt.turns[id] == nil {
		rt.turns[id] = &rtTurn{id: id}
		delete(rt.turns, id-maxRealtimeItems) // long-finished turns
	}
	rt.latestTurn = max(rt.latestTurn, id)
	return rt.turns[id]
}

// emit writes the events build returns, computed under mu, before any other writer's.
func (rt *rtSession) emit(build func() []rtEvent) {
	rt.sendMu.Lock()
	defer rt.sendMu.Unlock()
	rt.mu.Lock()
	events := build()
	rt.mu.Unlock()
	for _, ev := range events {
		ev["event_id"] = session.NewID("event")
		payload, err := json.Marshal(ev)
		if err != nil {
			rt.srv.log.Error("realtime event not encoded", "type", ev["type"], "err", err)
			continue
		}
		ctx, cancel := context.WithTimeout(rt.ctx, rt.srv.cfg.WSWriteTimeout)
		err = rt.conn.Write(ctx, websocket.MessageText, payload)
		cancel()
		if err != nil {
			rt.cancel() // a client that cannot take events in time is dropped
			return
		}
	}
}

func (rt *rtSession) sendError(clientEventID string, err error) {
	rt.emit(func() []rtEvent { return []rtEvent{rt.errorEvent(clientEventID, err)} })
}

// errorEvent is the error event of err, in OpenAI's shape: type invalid_request_error for a
// client's mistake, code the gateway's code.
func (rt *rtSession) errorEvent(clientEventID string, err error) rtEvent {
	apiErr := toAPIError(err)
	if apiErr.Status >= 500 {
		rt.srv.log.Error("realtime event failed", "requestId", rt.requestID, "err", err)
	}
	e := openAIErrorBody(apiErr)["error"]
	body := map[string]any{"type": e.Type, "code": e.Code, "message": e.Message, "param": e.Param, "event_id": nil}
	if clientEventID != "" {
		body["event_id"] = clientEventID
	}
	return rtEvent{"type": "error", "error": body}
}

// applyCuts stores the truncations that became possible.
func (rt *rtSession) applyCuts() {
	rt.mu.Lock()
	cuts := rt.cuts
	rt.cuts = nil
	rt.mu.Unlock()
	for _, c := range cuts {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(rt.ctx), rt.srv.cfg.RequestTimeout)
		if err := rt.srv.cfg.Engine.TruncateReply(ctx, rt.conv.UserID, c.sessionID, c.messageID, c.text); err != nil {
			rt.srv.log.Warn("realtime: truncated reply not stored", "session", c.sessionID, "message", c.messageID, "err", err)
		}
		cancel()
	}
}

func (rt *rtSession) handle(data []byte) {
	var head struct {
		Type    string `json:"type"`
		EventID string `json:"event_id"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		rt.sendError("", newAPIError(http.StatusBadRequest, CodeInvalidJSON, "malformed JSON event: %v", err))
		return
	}
	var ev rtClientEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		rt.sendError(head.EventID, newAPIError(http.StatusBadRequest, CodeValidation, "%s: %v", cmp.Or(head.Type, "event"), err))
		return
	}
	var err error
	switch ev.Type {
	case "session.update":
		err = rt.updateSession(ev)
	case "input_audio_buffer.append":
		err = rt.appendAudio(ev)
	case "input_audio_buffer.commit":
		err = rt.commit()
	case "input_audio_buffer.clear":
		err = rt.clearInput()
	case "conversation.item.create":
		err = rt.createItem(ev)
	case "conversation.item.truncate":
		err = rt.truncate(ev)
	case "response.create":
		err = rt.createResponse()
	case "response.cancel":
		err = rt.cancelResponse(ev)
	case "conversation.item.retrieve", "conversation.item.delete", "output_audio_buffer.clear", "transcription_session.update":
		err = newAPIError(http.StatusBadRequest, CodeUnsupportedFeature, "%s is not supported by this gateway", ev.Type)
	case "":
		err = newAPIError(http.StatusBadRequest, CodeValidation, "event has no type")
	default:
		err = newAPIError(http.StatusBadRequest, CodeUnknownType, "unknown event type %s", strconvQuote(ev.Type))
	}
	if err != nil {
		rt.sendError(ev.EventID, err)
	}
}

func (rt *rtSession) updateSession(ev rtClientEvent) error {
	if !hasJSON(ev.Session) {
		return invalidParam("session", "session.update needs a session object")
	}
	var u rtSessionUpdate
	if err := json.Unmarshal(ev.Session, &u); err != nil {
		return invalidParam("session", "session: %v", err)
	}
	rt.mu.Lock()
	cur, busy := rt.cfg, rt.resp != nil || rt.pendingResponse
	rt.mu.Unlock()
	next, apiErr := rt.srv.applyRealtimeUpdate(cur, u)
	if apiErr != nil {
		return apiErr
	}
	if next != cur {
		if busy {
			return newAPIError(http.StatusConflict, CodeActiveResponse,
				"session.update cannot change the session while a response is in progress: wait for response.done, or send response.cancel first")
		}
		if err := rt.rebuild(next); err != nil {
			return err
		}
	}
	rt.emit(func() []rtEvent { return []rtEvent{{"type": "session.updated", "session": rt.sessionObjectLocked()}} })
	return nil
}

func (rt *rtSession) appendAudio(ev rtClientEvent) error {
	if ev.Audio == nil {
		return invalidParam("audio", "input_audio_buffer.append needs audio: base64 of raw samples in the session's input format")
	}
	if rt.srv.cfg.Voice == nil {
		return newAPIError(http.StatusServiceUnavailable, CodeVoiceDisabled, "voice is not configured on this gateway: send text with conversation.item.create")
	}
	frame, err := base64.StdEncoding.DecodeString(*ev.Audio)
	if err != nil {
		return &APIError{Status: http.StatusBadRequest, Code: CodeBadAudio, Message: "audio is not valid base64: " + err.Error(),
			Details: map[string]any{"field": "audio"}, cause: err}
	}
	vs, err := rt.voice()
	if err != nil {
		return err
	}
	return vs.Push(frame)
}

func (rt *rtSession) commit() error {
	if rt.srv.cfg.Voice == nil {
		return newAPIError(http.StatusServiceUnavailable, CodeVoiceDisabled, "voice is not configured on this gateway: there is no audio to commit")
	}
	vs, err := rt.voice()
	if err != nil {
		return err
	}
	// Counted before the commit, whose committed event the pump may send before Commit returns.
	rt.mu.Lock()
	rt.unseenCommits++
	rt.mu.Unlock()
	if !vs.Commit() {
		rt.mu.Lock()
		rt.unseenCommits = max(rt.unseenCommits-1, 0)
		rt.mu.Unlock()
		return newAPIError(http.StatusBadRequest, CodeCommitEmpty, "no speech was heard in the input audio buffer since the last commit")
	}
	return nil
}

// voice is the running voice session; an error when it was lost (a failed rebuild).
func (rt *rtSession) voice() (*voiceSession, error) {
	if rt.vs == nil {
		return nil, newAPIError(http.StatusGone, CodeSessionExpired, "the voice session has ended")
	}
	return rt.vs, nil
}

func (rt *rtSession) clearInput() error {
	vs, err := rt.voice()
	if err != nil {
		return err
	}
	vs.ClearInput()
	rt.emit(func() []rtEvent {
		rt.speechItem = ""
		return []rtEvent{{"type": "input_audio_buffer.cleared"}}
	})
	return nil
}

// rtItemIn is conversation.item.create's item.
type rtItemIn struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Role    string `json:"role"`
	Content []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"content"`
}

func (rt *rtSession) createItem(ev rtClientEvent) error {
	if !hasJSON(ev.Item) {
		return invalidParam("item", "conversation.item.create needs an item")
	}
	var item rtItemIn
	if err := json.Unmarshal(ev.Item, &item); err != nil {
		return invalidParam("item", "item: %v", err)
	}
	if item.Type != "" && item.Type != "message" || item.Role != "user" {
		return unsupported("item", "only user messages can be added (type \"message\", role \"user\"), not %s %s", cmp.Or(item.Type, "message"), strconvQuote(item.Role))
	}
	var texts []string
	for i, part := range item.Content {
		if part.Type != "input_text" {
			return unsupported(fmt.Sprintf("item.content[%d].type", i), "only input_text content can be added, not %s", strconvQuote(part.Type))
		}
		if t := strings.TrimSpace(part.Text); t != "" {
			texts = append(texts, t)
		}
	}
	if len(texts) == 0 {
		return invalidParam("item.content", "the message has no text")
	}
	text := strings.Join(texts, "\n")
	id := cmp.Or(strings.TrimSpace(item.ID), session.NewID("item"))
	rt.emit(func() []rtEvent {
		rt.pendingText = append(rt.pendingText, text)
		prev := rt.lastItem
		rt.lastItem = id
		obj := rtMessage(id, "user", "completed", []any{map[string]any{"type": "input_text", "text": text}})
		return []rtEvent{
			{"type": "conversation.item.added", "previous_item_id": nullable(prev), "item": obj},
			{"type": "conversation.item.done", "previous_item_id": nullable(prev), "item": obj},
		}
	})
	return nil
}

// createResponse answers what the user said since the last response. Text items, and the
// transcript of committed audio waiting for this request (sessions where the client asks for
// responses), are answered together as one text turn; committed audio still being
// transcribed is let through the gate to answer itself.
func (rt *rtSession) createResponse() error {
	vs, err := rt.voice()
	if err != nil {
		return err
	}
	rt.mu.Lock()
	if rt.resp != nil || rt.pendingResponse {
		rt.mu.Unlock()
		return newAPIError(http.StatusConflict, CodeActiveResponse, "a response is already in progress: wait for response.done, or send response.cancel")
	}
	gated := rt.gated
	inputs := rt.pendingText
	held := rt.heldTurnLocked()
	switch {
	case gated && held != nil:
		held.consumed = true // PushText cancels it; its words go with the text
		inputs = append(inputs, held.transcript)
	case rt.unseenCommits > 0 || rt.transcribingLocked():
		// The committed audio answers itself once transcribed (text items wait for the next
		// response.create: a text turn now would cancel the transcription).
		if gated {
			rt.requested = true
			rt.broadcastLocked()
		}
		rt.mu.Unlock()
		return nil
	}
	text := strings.Join(inputs, "\n")
	if text == "" {
		rt.mu.Unlock()
		return newAPIError(http.StatusBadRequest, CodeNothingToAnswer,
			"nothing to respond to: add a user message with conversation.item.create, or commit audio, first (with server VAD, speech is answered without response.create)")
	}
	rt.pendingText, rt.pendingResponse = nil, true
	rt.broadcastLocked()
	rt.mu.Unlock()
	if err := vs.PushText(text); err != nil {
		rt.mu.Lock()
		rt.pendingResponse = false
		rt.broadcastLocked()
		rt.mu.Unlock()
		return err
	}
	if gated {
		// After PushText, which cancelled any turn held at the gate: the text turn is the one
		// left to take this.
		rt.mu.Lock()
		rt.requested = true
		rt.broadcastLocked()
		rt.mu.Unlock()
	}
	// The response is announced now rather than with its first text, so the client has its id
	// (to cancel it) while the agent thinks. The pipeline's turn count is the text turn's
	// number: only this goroutine starts turns (Push, Commit, PushText).
	if stats, _ := vs.Stats(); stats.Turns > 0 {
		rt.emit(func() []rtEvent {
			t := rt.turnLocked(stats.Turns)
			if t.audio || t.resp != nil || t.ended {
				return nil
			}
			return rt.startResponseLocked(t)
		})
	}
	return nil
}

// heldTurnLocked is the latest audio turn transcribed and waiting for response.create.
func (rt *rtSession) heldTurnLocked() *rtTurn {
	t := rt.turns[rt.latestTurn]
	if t == nil || !t.audio || !t.transcribed || t.ended || t.released || t.consumed || t.resp != nil || t.transcript == "" {
		return nil
	}
	return t
}

// transcribingLocked reports whether committed audio is still being transcribed.
func (rt *rtSession) transcribingLocked() bool {
	for _, t := range rt.turns {
		if t.audio && !t.transcribed && !t.ended {
			return true
		}
	}
	return false
}

func (rt *rtSession) cancelResponse(ev rtClientEvent) error {
	vs, err := rt.voice()
	if err != nil {
		return err
	}
	rt.mu.Lock()
	r, pending := rt.resp, rt.pendingResponse
	if r == nil && !pending && rt.requested {
		rt.requested = false // asked for, not started: nothing to tell
		rt.mu.Unlock()
		return nil
	}
	rt.mu.Unlock()
	switch {
	case r == nil && !pending:
		return newAPIError(http.StatusBadRequest, CodeNoActiveResponse, "there is no response in progress to cancel")
	case ev.ResponseID != "" && (r == nil || ev.ResponseID != r.id):
		return newAPIError(http.StatusBadRequest, CodeNoActiveResponse, "response %s is not in progress", strconvQuote(ev.ResponseID))
	}
	vs.Interrupt() // its response.done (cancelled) follows; false when it has just ended
	return nil
}

func (rt *rtSession) truncate(ev rtClientEvent) error {
	rt.mu.Lock()
	it := rt.items[ev.ItemID]
	var apiErr *APIError
	switch {
	case it == nil:
		apiErr = invalidParam("item_id", "no assistant item %s in this conversation", strconvQuote(ev.ItemID))
		apiErr.Code = CodeItemNotFound
	case ev.ContentIndex != 0:
		apiErr = invalidParam("content_index", "assistant items have one content part: content_index must be 0")
	case ev.AudioEndMs == nil || *ev.AudioEndMs < 0:
		apiErr = invalidParam("audio_end_ms", "audio_end_ms must be a position in the item's audio, in milliseconds")
	case !it.audio:
		apiErr = invalidParam("item_id", "item %s has no audio to truncate (a text response)", ev.ItemID)
	case it.final && *ev.AudioEndMs > it.audioMs():
		apiErr = invalidParam("audio_end_ms", "audio_end_ms %d is past the end of the item's audio (%d ms)", *ev.AudioEndMs, it.audioMs())
	}
	if apiErr != nil {
		rt.mu.Unlock()
		return apiErr
	}
	at := *ev.AudioEndMs
	it.truncAt = &at
	rt.queueCutLocked(it)
	rt.mu.Unlock()
	// The store is cut before the client hears it is (unless the reply is still being stored:
	// then as soon as it is).
	rt.applyCuts()
	rt.emit(func() []rtEvent {
		return []rtEvent{{"type": "conversation.item.truncated", "item_id": it.id, "content_index": 0, "audio_end_ms": at}}
	})
	return nil
}

// queueCutLocked queues the item's truncation once its audio is known and its message stored.
func (rt *rtSession) queueCutLocked(it *rtAssistantItem) {
	if it.truncAt == nil || !it.final || it.messageID == "" {
		return
	}
	it.content = it.heardText(*it.truncAt)
	it.truncAt = nil
	rt.cuts = append(rt.cuts, rtCut{sessionID: it.sessionID, messageID: it.messageID, text: it.content})
}

func (rt *rtSession) rememberLocked(it *rtAssistantItem) {
	rt.items[it.id] = it
	rt.itemOrder = append(rt.itemOrder, it.id)
	if len(rt.itemOrder) > maxRealtimeItems {
		delete(rt.items, rt.itemOrder[0])
		rt.itemOrder = rt.itemOrder[1:]
	}
}

// translateLocked turns a pipeline event into the Realtime events it means.
func (rt *rtSession) translateLocked(gen int, ev voice.Event) []rtEvent {
	if gen != rt.gen {
		return nil
	}
	switch ev := ev.(type) {
	case voice.SpeechStarted:
		out := rt.dropSupersededLocked(math.MaxInt64)
		rt.speechItem = session.NewID("item")
		if !rt.cfg.manual {
			out = append(out, rtEvent{"type": "input_audio_buffer.speech_started", "audio_start_ms": ev.AudioStartMs, "item_id": rt.speechItem})
		}
		return out
	case voice.SpeechStopped:
		out := rt.dropSupersededLocked(ev.Turn)
		id := cmp.Or(rt.speechItem, session.NewID("item"))
		rt.speechItem = ""
		t := rt.turnLocked(ev.Turn)
		t.userItem, t.audio, t.utterMs = id, true, ev.UtteranceMs
		rt.unseenCommits = max(rt.unseenCommits-1, 0)
		prev := rt.lastItem
		rt.lastItem = id
		if !rt.cfg.manual {
			out = append(out, rtEvent{"type": "input_audio_buffer.speech_stopped", "audio_end_ms": ev.AudioEndMs, "item_id": id})
		}
		return append(out,
			rtEvent{"type": "input_audio_buffer.committed", "previous_item_id": nullable(prev), "item_id": id},
			rtEvent{"type": "conversation.item.added", "previous_item_id": nullable(prev), "item": rtUserAudio(id, nil)})
	case voice.TranscriptFinal:
		t := rt.turnLocked(ev.Turn)
		t.transcribed, t.transcript = true, ev.Text
		text := ev.Text
		out := []rtEvent{
			{"type": "conversation.item.input_audio_transcription.completed", "item_id": t.userItem, "content_index": 0, "transcript": text,
				"usage": map[string]any{"type": "duration", "seconds": float64(t.utterMs) / 1000}},
			{"type": "conversation.item.done", "item": rtUserAudio(t.userItem, &text)},
		}
		if text == "" {
			rt.endTurnUnansweredLocked(t)
			return out
		}
		if !rt.gated {
			out = append(out, rt.startResponseLocked(t)...)
		}
		return out
	case voice.ResponseDelta:
		t := rt.turnLocked(ev.Turn)
		out := rt.ensureResponseLocked(t)
		r := t.resp
		r.item.deltas = append(r.item.deltas, ev.Text)
		typ := "response.output_text.delta"
		if r.item.audio {
			typ = "response.output_audio_transcript.delta"
		}
		return append(out, rtEvent{"type": typ, "response_id": r.id, "item_id": r.item.id, "output_index": 0, "content_index": 0, "delta": ev.Text})
	case voice.ResponseAudio:
		t := rt.turnLocked(ev.Turn)
		out := rt.ensureResponseLocked(t)
		r := t.resp
		r.item.frames++
		return append(out, rtEvent{"type": "response.output_audio.delta", "response_id": r.id, "item_id": r.item.id, "output_index": 0, "content_index": 0,
			"delta": base64.StdEncoding.EncodeToString(ev.Audio)})
	case voice.ResponseDone:
		t := rt.turnLocked(ev.Turn)
		out := rt.ensureResponseLocked(t)
		if res, ok := ev.Info.(agents.Result); ok {
			t.stored = &res
		}
		text := strings.Join(t.resp.item.deltas, "")
		return append(out, rt.finishResponseLocked(t, "completed", nil, text, ev.Speech)...)
	case voice.ResponseInterrupted:
		t := rt.turnLocked(ev.Turn)
		if rt.gated && !t.released && t.resp == nil {
			// A turn held for response.create and cancelled: no response was asked for. When
			// the user spoke over it, its words wait for the next response with the text items.
			if !t.consumed && t.transcript != "" {
				rt.pendingText = append(rt.pendingText, t.transcript)
			}
			rt.endTurnUnansweredLocked(t)
			return nil
		}
		out := rt.ensureResponseLocked(t)
		reason := "client_cancelled"
		if ev.Reason == voice.InterruptSpeech {
			reason = "turn_detected"
		}
		details := map[string]any{"type": "cancelled", "reason": reason}
		return append(out, rt.finishResponseLocked(t, "cancelled", details, ev.PlayedText, ev.Speech)...)
	case voice.Error:
		apiErr := eventError(ev)
		t := rt.turnLocked(ev.Turn)
		if ev.Code == voice.ErrorCodeSTT {
			rt.endTurnUnansweredLocked(t)
			return []rtEvent{{"type": "conversation.item.input_audio_transcription.failed", "item_id": t.userItem, "content_index": 0,
				"error": map[string]any{"type": "server_error", "code": apiErr.Code, "message": apiErr.Message}}}
		}
		out := rt.ensureResponseLocked(t)
		errEv := rt.errorEvent("", apiErr)
		details := map[string]any{"type": "failed", "error": errEv["error"]}
		out = append(out, errEv)
		return append(out, rt.finishResponseLocked(t, "failed", details, strings.Join(t.resp.item.deltas, ""), nil)...)
	}
	return nil
}

// dropSupersededLocked deletes the user items of turns before `before` that will never be
// transcribed: the pipeline cancels a transcription silently when new speech or a text turn
// supersedes it (and sends its audio again with the next utterance).
func (rt *rtSession) dropSupersededLocked(before int64) []rtEvent {
	var out []rtEvent
	for id, t := range rt.turns {
		if id < before && t.audio && !t.transcribed && !t.ended {
			t.ended = true
			out = append(out, rtEvent{"type": "conversation.item.deleted", "item_id": t.userItem})
		}
	}
	return out
}

// endTurnUnansweredLocked ends an audio turn that gets no response; an unanswered request for
// its answer lapses with it.
func (rt *rtSession) endTurnUnansweredLocked(t *rtTurn) {
	t.ended = true
	if t.id == rt.latestTurn {
		rt.requested = false
	}
}

func (rt *rtSession) ensureResponseLocked(t *rtTurn) []rtEvent {
	if t.resp != nil {
		return nil
	}
	return rt.startResponseLocked(t)
}

// startResponseLocked opens the turn's response: response.created and its output item.
func (rt *rtSession) startResponseLocked(t *rtTurn) []rtEvent {
	out := rt.dropSupersededLocked(t.id)
	c := rt.cfg
	_, rate := c.outFormat.pipeline()
	it := &rtAssistantItem{id: session.NewID("item"), audio: !c.textOnly && rt.srv.cfg.Voice != nil, rate: rate}
	r := &rtResponse{id: session.NewID("resp"), item: it}
	t.resp, rt.resp, rt.pendingResponse = r, r, false
	if t.stored != nil {
		it.messageID, it.sessionID = t.stored.MessageID, t.stored.SessionID
	}
	rt.rememberLocked(it)
	rt.broadcastLocked()
	prev := rt.lastItem
	rt.lastItem = it.id
	item := rtAssistant(it, "in_progress", "")
	item["content"] = []any{}
	part := map[string]any{"type": "text", "text": ""}
	if it.audio {
		part = map[string]any{"type": "audio", "transcript": ""}
	}
	return append(out, []rtEvent{
		{"type": "response.created", "response": rt.responseObject(r, "in_progress", nil, nil, nil)},
		{"type": "response.output_item.added", "response_id": r.id, "output_index": 0, "item": item},
		{"type": "conversation.item.added", "previous_item_id": nullable(prev), "item": item},
		{"type": "response.content_part.added", "response_id": r.id, "item_id": it.id, "output_index": 0, "content_index": 0, "part": part},
	}...)
}

// finishResponseLocked closes the turn's response with its done events; content is what the
// conversation keeps of it.
func (rt *rtSession) finishResponseLocked(t *rtTurn, status string, details map[string]any, content string, speech []voice.SpeakResult) []rtEvent {
	r := t.resp
	it := r.item
	t.ended = true
	it.final, it.content, it.speech = true, content, speech
	if t.stored != nil {
		it.messageID, it.sessionID = t.stored.MessageID, t.stored.SessionID
	}
	itemStatus := "completed"
	if status != "completed" {
		itemStatus = "incomplete"
	}
	item := rtAssistant(it, itemStatus, content)
	base := rtEvent{"response_id": r.id, "item_id": it.id, "output_index": 0, "content_index": 0}
	with := func(typ string, kv ...any) rtEvent {
		ev := rtEvent{"type": typ}
		for k, v := range base {
			ev[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			ev[kv[i].(string)] = kv[i+1]
		}
		return ev
	}
	var out []rtEvent
	if it.audio {
		out = append(out, with("response.output_audio.done"), with("response.output_audio_transcript.done", "transcript", content),
			with("response.content_part.done", "part", map[string]any{"type": "audio", "transcript": content}))
	} else {
		out = append(out, with("response.output_text.done", "text", content),
			with("response.content_part.done", "part", map[string]any{"type": "text", "text": content}))
	}
	out = append(out,
		rtEvent{"type": "response.output_item.done", "response_id": r.id, "output_index": 0, "item": item},
		rtEvent{"type": "conversation.item.done", "item": item},
		rtEvent{"type": "response.done", "response": rt.responseObject(r, status, details, []any{item}, t.stored)})
	if rt.resp == r {
		rt.resp = nil
	}
	rt.broadcastLocked()
	rt.queueCutLocked(it)
	return out
}

// responseObject is a realtime.response.
func (rt *rtSession) responseObject(r *rtResponse, status string, details map[string]any, output []any, res *agents.Result) map[string]any {
	modalities := []string{"text"}
	if r.item.audio {
		modalities = []string{"audio"}
	}
	if output == nil {
		output = []any{}
	}
	obj := map[string]any{"object": "realtime.response", "id": r.id, "status": status, "status_details": nil, "output": output,
		"output_modalities": modalities, "conversation_id": rt.conv.SessionID, "max_output_tokens": "inf", "metadata": nil, "usage": nil}
	if details != nil {
		obj["status_details"] = details
	}
	if res != nil {
		tk := res.Metadata.Tokens
		obj["usage"] = map[string]any{"total_tokens": tk.Input + tk.Output, "input_tokens": tk.Input, "output_tokens": tk.Output,
			"input_token_details":  map[string]any{"cached_tokens": tk.CachedInput, "text_tokens": tk.Input, "audio_tokens": 0},
			"output_token_details": map[string]any{"text_tokens": tk.Output, "audio_tokens": 0}}
	} else if status != "in_progress" {
		obj["usage"] = map[string]any{"total_tokens": 0, "input_tokens": 0, "output_tokens": 0}
	}
	return obj
}

// sessionObjectLocked is the session as session.created and session.updated report it.
func (rt *rtSession) sessionObjectLocked() map[string]any {
	c := rt.cfg
	var turnDetection any
	if !c.manual {
		turnDetection = c.vad
	}
	var transcription any
	if c.language != "" {
		transcription = map[string]any{"language": c.language}
	}
	output := map[string]any{"format": c.outFormat, "speed": cmp.Or(c.speed, 1)}
	if c.voice != "" {
		output["voice"] = c.voice
	}
	modalities := []string{"audio"}
	if c.textOnly {
		modalities = []string{"text"}
	}
	return map[string]any{
		"type": "realtime", "object": "realtime.session", "id": rt.conv.SessionID, "model": rt.model,
		"output_modalities": modalities, "instructions": c.instructions,
		"audio": map[string]any{
			"input":  map[string]any{"format": c.inFormat, "transcription": transcription, "noise_reduction": nil, "turn_detection": turnDetection},
			"output": output,
		},
		"tools": []any{}, "tool_choice": "auto", "max_output_tokens": "inf", "truncation": "auto", "tracing": nil, "prompt": nil,
		"expires_at": rt.opened.Add(rt.srv.voiceLimits.MaxDuration).Unix(),
	}
}

func rtMessage(id, role, status string, content []any) map[string]any {
	return map[string]any{"id": id, "object": "realtime.item", "type": "message", "role": role, "status": status, "content": content}
}

func rtUserAudio(id string, transcript *string) map[string]any {
	var tr any
	if transcript != nil {
		tr = *transcript
	}
	return rtMessage(id, "user", "completed", []any{map[string]any{"type": "input_audio", "transcript": tr}})
}

func rtAssistant(it *rtAssistantItem, status, content string) map[string]any {
	part := map[string]any{"type": "output_text", "text": content}
	if it.audio {
		part = map[string]any{"type": "output_audio", "transcript": content}
	}
	return rtMessage(it.id, "assistant", status, []any{part})
}

// nullable is a previous_item_id: null for the conversation's first item.
func nullable(id string) any {
	if id == "" {
		return nil
	}
	return id
}

// heardSpan is a chunk of a reply as the pipeline spoke it, and how long its audio is.
type heardSpan struct {
	text string
	ms   float64
	said bool // false once TTS stopped (an interruption, a failure): nothing from here was heard
}

// audioMs is how long the item's audio is: what TTS made of it when known, else what was
// delivered.
func (it *rtAssistantItem) audioMs() int64 {
	if spans, ok := it.spans(); ok {
		var total float64
		for _, s := range spans {
			total += s.ms
		}
		return int64(math.Round(total))
	}
	return int64(it.frames) * voice.FrameDuration.Milliseconds()
}

// spans rebuilds the reply's chunks as the pipeline cut them (the same chunker over the same
// deltas) and pairs each chunk that has something to say with its synthesis, whose byte count
// gives its length (padded to whole frames, as the pipeline sends it). ok is false when they
// do not pair up.
func (it *rtAssistantItem) spans() ([]heardSpan, bool) {
	if len(it.speech) == 0 {
		return nil, false
	}
	chunker := voice.NewChunker(voice.ChunkerConfig{})
	var chunks []string
	for _, d := range it.deltas {
		chunks = append(chunks, chunker.Push(d)...)
	}
	chunks = append(chunks, chunker.Flush()...)
	spans := make([]heardSpan, 0, len(chunks))
	next := 0
	for _, ch := range chunks {
		if !strings.ContainsFunc(ch, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) {
			spans = append(spans, heardSpan{text: ch, said: true}) // nothing to say (a rule, a lone symbol)
			continue
		}
		if next >= len(it.speech) {
			spans = append(spans, heardSpan{text: ch})
			continue
		}
		sp := it.speech[next]
		next++
		rate := cmp.Or(sp.SampleRate, it.rate)
		bytes := sp.Bytes
		if bytes == 0 {
			for _, p := range sp.Parts {
				bytes += p.Bytes
			}
		}
		frameSamples := int64(rate) * voice.FrameDuration.Milliseconds() / 1000
		frames := (bytes/2 + frameSamples - 1) / frameSamples
		spans = append(spans, heardSpan{text: ch, ms: float64(frames * voice.FrameDuration.Milliseconds()), said: true})
	}
	return spans, next == len(it.speech)
}

// heardText is what the first endMs of the item's audio say: the chunks heard whole, then the
// share of the words of the chunk being played that endMs reaches (rounded down). Without the
// chunks' audio lengths, it is that share of the whole reply's words.
func (it *rtAssistantItem) heardText(endMs int64) string {
	end := float64(endMs)
	spans, ok := it.spans()
	if !ok {
		words := strings.Fields(strings.Join(it.deltas, ""))
		total := float64(it.frames) * float64(voice.FrameDuration.Milliseconds())
		if total <= 0 || end >= total {
			return strings.Join(words, " ")
		}
		return strings.Join(words[:int(float64(len(words))*end/total)], " ")
	}
	var parts []string
	at := 0.0
	for _, s := range spans {
		if !s.said || (at >= end && s.ms > 0) {
			break
		}
		if at+s.ms <= end {
			parts = append(parts, s.text)
			at += s.ms
			continue
		}
		words := strings.Fields(s.text)
		if n := int(float64(len(words)) * (end - at) / s.ms); n > 0 {
			parts = append(parts, strings.Join(words[:n], " "))
		}
		break
	}
	return strings.Join(parts, " ")
}
