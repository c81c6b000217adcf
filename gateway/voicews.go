package gateway

import (
	"encoding/base64"
	"errors"
	"time"

	"github.com/coder/websocket"
	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/voice"
)

// Voice on /api/v2/ws: a session.start with "audio" (and/or "voice") makes the connection a
// voice session. The client then sends binary frames of raw audio in the declared format (any
// length; 20 ms is usual), and may still send "text" (spoken back), "audio.end" (end the
// utterance now, push-to-talk) and "interrupt". The server sends the JSON events of
// voiceFrame and the reply's audio as binary frames of 20 ms in the output format (or as
// JSON "response.audio" frames with base64 audio when audio.base64 is set). Audio frames a
// client cannot take in time are dropped and counted (response.done droppedFrames); text
// frames never are.

// wsAudioFormat is a format and sample rate, as session.start and session.started carry it.
type wsAudioFormat struct {
	Format     string `json:"format,omitempty"`     // pcm16 (default), g711_ulaw, g711_alaw, opus
	SampleRate int    `json:"sampleRate,omitempty"` // pcm16 16000 (default), 24000, 48000...; G.711 8000
}

// wsAudioSpec is session.start's "audio".
type wsAudioSpec struct {
	wsAudioFormat
	// Output is the format of the reply audio. Default: the input's (Opus at 48 kHz).
	Output *wsAudioFormat `json:"output,omitempty"`
	// Base64 sends reply audio as JSON frames instead of binary ones.
	Base64 bool `json:"base64,omitempty"`
}

// wsVoiceSpec is session.start's "voice".
type wsVoiceSpec struct {
	Tier     string  `json:"tier,omitempty"` // auto (default), native, local, cheap, premium...
	Voice    string  `json:"voice,omitempty"`
	Speed    float64 `json:"speed,omitempty"`
	Language string  `json:"language,omitempty"`
	// TextOnly answers in text only (the client speaks it).
	TextOnly bool `json:"textOnly,omitempty"`
}

// wsTurnDetection is session.start's "turnDetection", in OpenAI's terms.
type wsTurnDetection struct {
	ThresholdDB       float64 `json:"thresholdDb,omitempty"`
	PrefixPaddingMs   int     `json:"prefixPaddingMs,omitempty"`
	SilenceDurationMs int     `json:"silenceDurationMs,omitempty"`
	MinSpeechMs       int     `json:"minSpeechMs,omitempty"`
}

// voiceFrame is a JSON event of a voice session. Fields not used by a type stay empty.
type voiceFrame struct {
	Type string `json:"type"`
	Turn int64  `json:"turn,omitempty"`
	Text string `json:"text,omitempty"`
	// speech.started / speech.stopped
	AudioStartMs  *int64 `json:"audioStartMs,omitempty"`
	SpeechStartMs *int64 `json:"speechStartMs,omitempty"`
	AudioEndMs    *int64 `json:"audioEndMs,omitempty"`
	UtteranceMs   *int64 `json:"utteranceMs,omitempty"`
	// transcript.final
	STT *voice.TranscribeResult `json:"stt,omitempty"`
	// response.audio (base64 mode)
	Seq        int    `json:"seq,omitempty"`
	Audio      string `json:"audio,omitempty"`
	Format     string `json:"format,omitempty"`
	SampleRate int    `json:"sampleRate,omitempty"`
	// response.done / response.interrupted
	SessionID     string              `json:"sessionId,omitempty"`
	MessageID     string              `json:"messageId,omitempty"`
	Metadata      *agents.Metadata    `json:"metadata,omitempty"`
	Latency       *voice.TurnLatency  `json:"latency,omitempty"`
	AudioMs       *int64              `json:"audioMs,omitempty"`
	DroppedFrames *int                `json:"droppedFrames,omitempty"`
	Speech        []voice.SpeakResult `json:"speech,omitempty"`
	Reason        string              `json:"reason,omitempty"`
	PlayedMs      *int64              `json:"playedMs,omitempty"`
	PlayedText    *string             `json:"playedText,omitempty"`
	// error
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

func (ws *wsSession) voiceSession() *voiceSession {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.voice
}

func (ws *wsSession) openVoice(conv agents.Conversation, f clientFrame) (*voiceSession, error) {
	opts := voiceOptions{Transport: "websocket", Context: f.Context}
	if a := f.Audio; a != nil {
		opts.InputFormat, opts.InputSampleRate = a.Format, a.SampleRate
		opts.OutputFormat, opts.OutputSampleRate = a.Format, a.SampleRate
		if a.Output != nil {
			opts.OutputFormat, opts.OutputSampleRate = a.Output.Format, a.Output.SampleRate
		}
		ws.audioBase64 = a.Base64
	}
	if v := f.Voice; v != nil {
		opts.Tier, opts.Voice, opts.Speed, opts.Language, opts.TextOnly = v.Tier, v.Voice, v.Speed, v.Language, v.TextOnly
	}
	if td := f.TurnDetection; td != nil {
		opts.VAD = voice.VADConfig{ThresholdDB: td.ThresholdDB, PrefixPadding: ms(td.PrefixPaddingMs),
			SilenceDuration: ms(td.SilenceDurationMs), MinSpeech: ms(td.MinSpeechMs)}
	}
	return ws.srv.openVoiceSession(conv, ws.plan, opts, ws.srv.turnAdmission(ws.rateKey, ws.rateLimit))
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// outputSpec is the reply audio's format for session.started; nil without audio.
func (vs *voiceSession) outputSpec() *wsAudioFormat {
	if vs == nil || vs.opts.TextOnly || vs.opts.Tier == string(voice.TierNative) {
		return nil
	}
	f := wsAudioFormat{Format: vs.opts.OutputFormat, SampleRate: vs.opts.OutputSampleRate}
	switch {
	case f.Format == "" || f.Format == voice.FormatPCM16:
		f.Format = voice.FormatPCM16
		if f.SampleRate == 0 {
			f.SampleRate = 24000
		}
	case f.Format == voice.FormatOpus && f.SampleRate == 0:
		f.SampleRate = 48000
	case f.Format == voice.FormatULaw || f.Format == voice.FormatALaw:
		f.SampleRate = 8000
	}
	return &f
}

// runVoice starts the session's pipeline and the writer of its events, both owned by the
// connection (endVoice stops them).
func (ws *wsSession) runVoice(vs *voiceSession) {
	ws.voiceDone.Add(2)
	go func() {
		defer ws.voiceDone.Done()
		err := vs.Run(ws.ctx)
		switch {
		case errors.Is(err, errSessionExpired):
			ws.send(voiceFrame{Type: "error", Code: CodeSessionExpired, Message: "the voice session reached its maximum duration; reconnect with its sessionId to go on"})
			ws.conn.Close(websocket.StatusPolicyViolation, "session expired")
			ws.cancel()
		case errors.Is(err, voice.ErrEventsStalled):
			ws.conn.Close(websocket.StatusPolicyViolation, "client stopped reading")
			ws.cancel()
		}
	}()
	go func() {
		defer ws.voiceDone.Done()
		for ev := range vs.Events() {
			ws.sendVoiceEvent(ev)
		}
	}()
}

// endVoice stops the voice session, if any, and waits for its goroutines.
func (ws *wsSession) endVoice() {
	if vs := ws.voiceSession(); vs != nil {
		vs.Close()
		ws.voiceDone.Wait()
	}
}

func (ws *wsSession) pushAudio(frame []byte) {
	vs := ws.voiceSession()
	if vs == nil {
		ws.sendError("", CodeUnsupportedFrame, "binary audio frames need a voice session: send session.start with \"audio\" first")
		return
	}
	if err := vs.Push(frame); err != nil {
		var apiErr *APIError
		if errors.As(err, &apiErr) && apiErr.Code == CodeShuttingDown {
			return // the microphone goes on while the session drains; one frame after another is no news
		}
		ws.sendAPIError("", err)
	}
}

func (ws *wsSession) voiceText(vs *voiceSession, f clientFrame) {
	ctx := ws.ctx
	if admit := ws.srv.turnAdmission(ws.rateKey, ws.rateLimit); admit != nil {
		if err := admit(ctx); err != nil {
			ws.sendAPIError(f.ID, err)
			return
		}
	}
	if err := vs.PushText(f.Text); err != nil {
		ws.sendAPIError(f.ID, err)
	}
}

func (ws *wsSession) endAudio(f clientFrame) {
	vs := ws.voiceSession()
	if vs == nil {
		ws.sendError(f.ID, CodeUnsupportedFrame, "audio.end needs a voice session: send session.start with \"audio\" first")
		return
	}
	if !vs.Commit() {
		ws.sendError(f.ID, CodeNoSpeech, "audio.end: no speech was heard since the last turn")
	}
}

func (ws *wsSession) sendVoiceEvent(ev voice.Event) {
	if a, ok := ev.(voice.ResponseAudio); ok {
		if !ws.audioBase64 {
			ws.write(websocket.MessageBinary, a.Audio)
			return
		}
		ws.send(voiceFrame{Type: "response.audio", Turn: a.Turn, Seq: a.Seq, Format: a.Format, SampleRate: a.SampleRate,
			Audio: base64.StdEncoding.EncodeToString(a.Audio)})
		return
	}
	if f, ok := voiceEventFrame(ev); ok {
		ws.send(f)
	}
}

// voiceEventFrame is the JSON frame of a pipeline event, as the WebSocket and the WebRTC data
// channel send it; ok is false for audio, which each transport carries its own way.
func voiceEventFrame(ev voice.Event) (f voiceFrame, ok bool) {
	switch ev := ev.(type) {
	case voice.SpeechStarted:
		return voiceFrame{Type: "speech.started", AudioStartMs: &ev.AudioStartMs, SpeechStartMs: &ev.SpeechStartMs}, true
	case voice.SpeechStopped:
		return voiceFrame{Type: "speech.stopped", Turn: ev.Turn, AudioEndMs: &ev.AudioEndMs, UtteranceMs: &ev.UtteranceMs}, true
	case voice.TranscriptFinal:
		return voiceFrame{Type: "transcript.final", Turn: ev.Turn, Text: ev.Text, STT: ev.Result}, true
	case voice.ResponseDelta:
		return voiceFrame{Type: "response.delta", Turn: ev.Turn, Text: ev.Text}, true
	case voice.ResponseDone:
		f := voiceFrame{Type: "response.done", Turn: ev.Turn, Text: ev.Text, Latency: &ev.Latency, AudioMs: &ev.AudioMs,
			DroppedFrames: &ev.DroppedFrames, Speech: ev.Speech}
		if res, ok := ev.Info.(agents.Result); ok {
			f.SessionID, f.MessageID, f.Metadata = res.SessionID, res.MessageID, &res.Metadata
		}
		return f, true
	case voice.ResponseInterrupted:
		return voiceFrame{Type: "response.interrupted", Turn: ev.Turn, Reason: ev.Reason, PlayedMs: &ev.PlayedMs,
			PlayedText: &ev.PlayedText, Latency: &ev.Latency}, true
	case voice.Error:
		apiErr := eventError(ev)
		return voiceFrame{Type: "error", Turn: ev.Turn, Code: apiErr.Code, Message: apiErr.Message}, true
	}
	return voiceFrame{}, false
}
