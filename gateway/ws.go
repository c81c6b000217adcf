package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/labstack/echo/v4"
)

// clientFrame is any JSON control frame a client sends on /api/v2/ws.
type clientFrame struct {
	Type      string         `json:"type"`
	ID        string         `json:"id,omitempty"`
	AgentID   string         `json:"agentId,omitempty"`
	SessionID string         `json:"sessionId,omitempty"`
	UserID    string         `json:"userId,omitempty"`
	Text      string         `json:"text,omitempty"`
	Context   map[string]any `json:"context,omitempty"`
	// Audio and Voice in session.start make it a voice session (see voicews.go).
	Audio         *wsAudioSpec     `json:"audio,omitempty"`
	Voice         *wsVoiceSpec     `json:"voice,omitempty"`
	TurnDetection *wsTurnDetection `json:"turnDetection,omitempty"`
}

// serverFrame is a JSON frame the gateway sends. Fields not used by a type stay empty.
type serverFrame struct {
	Type      string           `json:"type"`
	ID        string           `json:"id,omitempty"`
	SessionID string           `json:"sessionId,omitempty"`
	AgentID   string           `json:"agentId,omitempty"`
	Resumed   *bool            `json:"resumed,omitempty"`
	Text      string           `json:"text,omitempty"`
	MessageID string           `json:"messageId,omitempty"`
	Result    *agents.Result   `json:"result,omitempty"`
	Metadata  *agents.Metadata `json:"metadata,omitempty"`
	Code      string           `json:"code,omitempty"`
	Message   string           `json:"message,omitempty"`
	// RetryAfter is how many seconds a rate_limited client should wait.
	RetryAfter int `json:"retryAfter,omitempty"`
	// Audio, in session.started of a voice session, is the format of the audio it will send.
	Audio *wsAudioFormat `json:"audio,omitempty"`
}

// originAllowed accepts clients that send no Origin (apps, servers), the gateway's own pages,
// and the configured browser origins.
func (s *Server) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if slices.Contains(s.cfg.AllowedOrigins, origin) {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

func (s *Server) websocket(c echo.Context) error {
	r := c.Request()
	if !s.originAllowed(r) {
		return newAPIError(http.StatusForbidden, CodeForbiddenOrigin, "origin %q is not allowed", r.Header.Get("Origin"))
	}
	if s.draining() {
		return newAPIError(http.StatusServiceUnavailable, CodeShuttingDown, "the gateway is shutting down")
	}
	conn, err := websocket.Accept(c.Response(), r, &websocket.AcceptOptions{
		// The origin was checked above against the same list CORS uses.
		InsecureSkipVerify: true,
	})
	if err != nil {
		return nil // Accept has written the HTTP error
	}
	if !s.trackSocket() {
		conn.Close(websocket.StatusGoingAway, "server shutting down")
		return nil
	}
	ws := &wsSession{srv: s, conn: conn, requestID: requestID(c)}
	ws.caller, ws.authenticated = CallerFromContext(r.Context())
	ws.rateKey, ws.rateLimit = s.rateLimitFor(r)
	_, ws.plan = s.cfg.Identify(r)
	// The session runs on a goroutine of its own and the handler returns: the upgrade's
	// goroutine has grown its stack through the middleware, and an idle connection would keep
	// it. Nothing here touches c after this point (echo reuses it), so the report a panic
	// would make is filled in now; the recover middleware no longer covers the session.
	report := s.errorReport(c, nil, http.StatusInternalServerError, CodeInternal, true)
	go func() {
		defer s.sockets.Done()
		defer s.recoverSession(ws.conn, report)
		ws.serve()
	}()
	return nil
}

// recoverSession is the recover middleware of a WebSocket session's goroutine: the panic is
// logged and reported, the client gets an internal-error close, and the gateway goes on.
func (s *Server) recoverSession(conn *websocket.Conn, report ErrorReport) {
	r := recover()
	if r == nil {
		return
	}
	err, ok := r.(error)
	if !ok {
		err = fmt.Errorf("%v", r)
	}
	s.log.Error("panic", "err", err, "requestId", report.RequestID, "stack", string(debug.Stack()))
	if s.cfg.ErrorReporter != nil {
		report.Err = err
		s.cfg.ErrorReporter.Report(report)
	}
	conn.Close(websocket.StatusInternalError, "internal error")
}

// wsSession is one WebSocket connection. The read loop owns it; a turn runs in its own
// goroutine so pings and interrupts are handled while a reply streams.
type wsSession struct {
	srv       *Server
	conn      *websocket.Conn
	requestID string
	// caller is who the upgrade request was authenticated as (keys mode).
	caller        Caller
	authenticated bool
	// rateKey and rateLimit identify the caller for the per-turn rate limit (ratelimit.go).
	rateKey   string
	rateLimit Limit
	plan      string // the caller's plan, for the voice tiers it may use

	ctx    context.Context // ends with the connection
	cancel context.CancelFunc

	mu        sync.Mutex
	conv      *agents.Conversation // set by session.start
	turn      *runningTurn
	closing   bool // no new turns once set
	turnsDone sync.WaitGroup

	// voice is set by a session.start that asks for audio; its goroutines are voiceDone.
	voice       *voiceSession
	audioBase64 bool
	voiceDone   sync.WaitGroup
	// leaveUser removes the connection from the user's open sessions (DeliverToUser).
	leaveUser func()
}

type runningTurn struct {
	id     string
	cancel context.CancelFunc
}

func (ws *wsSession) serve() {
	s := ws.srv
	ws.ctx, ws.cancel = context.WithCancel(s.hardStop)
	// No goroutine per session waits for the drain: an idle connection costs its memory
	// alone. A closeOnDrain that has begun is waited for last, after the connection is shut.
	drainDone := make(chan struct{})
	stopDrainWatch := context.AfterFunc(s.drainCtx, func() {
		defer close(drainDone)
		ws.closeOnDrain()
	})
	defer func() {
		if !stopDrainWatch() {
			<-drainDone
		}
	}()
	defer ws.cancel()
	defer ws.conn.CloseNow()
	// Read up to twice the limit so an oversized frame can be told apart from a broken one
	// and answered with an error frame before closing.
	ws.conn.SetReadLimit(2 * s.cfg.WSMaxFrameBytes)

	for {
		readCtx, cancelRead := context.WithTimeout(ws.ctx, s.cfg.WSIdleTimeout)
		typ, r, err := ws.conn.Reader(readCtx)
		if err != nil {
			cancelRead()
			if errors.Is(err, context.DeadlineExceeded) && ws.ctx.Err() == nil {
				ws.conn.Close(websocket.StatusPolicyViolation, "idle timeout")
			}
			break
		}
		data, err := io.ReadAll(io.LimitReader(r, s.cfg.WSMaxFrameBytes+1))
		cancelRead()
		if err != nil {
			break
		}
		if int64(len(data)) > s.cfg.WSMaxFrameBytes {
			ws.sendError("", CodeFrameTooLarge, "frame is over the limit of "+itoa(s.cfg.WSMaxFrameBytes)+" bytes")
			ws.conn.Close(websocket.StatusMessageTooBig, "frame too large")
			break
		}
		if typ == websocket.MessageBinary {
			ws.pushAudio(data)
			continue
		}
		ws.handle(data)
	}
	ws.endVoice()
	ws.mu.Lock()
	if ws.leaveUser != nil {
		ws.leaveUser()
	}
	ws.mu.Unlock()
	// The connection is gone: stop any turn and wait for it to store what it generated.
	ws.mu.Lock()
	ws.closing = true
	if ws.turn != nil {
		ws.turn.cancel()
	}
	ws.mu.Unlock()
	ws.turnsDone.Wait()
}

// closeOnDrain ends the session politely when the gateway shuts down: a running turn finishes
// first (a voice reply too, and the reply to speech the user had just finished), then the
// client is told to reconnect elsewhere. The shutdown grace bounds the wait: ws.ctx ends
// with hardStop.
func (ws *wsSession) closeOnDrain() {
	ws.mu.Lock()
	ws.closing = true
	vs := ws.voice
	ws.mu.Unlock()
	ws.turnsDone.Wait()
	if vs != nil {
		_ = vs.Drain(ws.ctx)
		ws.endVoice() // every event was taken: the writer sends them all before it returns
	}
	ws.conn.Close(websocket.StatusGoingAway, "server shutting down")
	ws.cancel()
}

// parseClientFrame decodes one JSON control frame; a frame that is not JSON or has no known
// type comes back as the error frame to answer instead. It touches no connection state, so
// it can be fuzzed on its own.
func parseClientFrame(data []byte) (clientFrame, *serverFrame) {
	var f clientFrame
	if err := json.Unmarshal(data, &f); err != nil {
		return f, &serverFrame{Type: "error", Code: CodeInvalidJSON, Message: "malformed JSON frame: " + err.Error()}
	}
	switch f.Type {
	case "ping", "session.start", "text", "interrupt", "audio.end":
		return f, nil
	case "":
		return f, &serverFrame{Type: "error", ID: f.ID, Code: CodeValidation, Message: "frame has no type"}
	default:
		return f, &serverFrame{Type: "error", ID: f.ID, Code: CodeUnknownType, Message: "unknown frame type " + strconvQuote(f.Type)}
	}
}

func (ws *wsSession) handle(data []byte) {
	f, refused := parseClientFrame(data)
	if refused != nil {
		ws.send(*refused)
		return
	}
	switch f.Type {
	case "ping":
		ws.send(serverFrame{Type: "pong", ID: f.ID})
	case "session.start":
		// On a goroutine of its own, waited for: opening the session goes deep into the store
		// (SQLite's frames are large), and the read loop's goroutine, which lives as long as
		// the connection, would keep that stack while the connection idles.
		done := make(chan struct{})
		var panicked any
		go func() {
			defer close(done)
			defer func() { panicked = recover() }()
			ws.startSession(f)
		}()
		<-done
		if panicked != nil {
			panic(panicked) // on the session's goroutine, where recoverSession takes it
		}
	case "text":
		if vs := ws.voiceSession(); vs != nil {
			ws.voiceText(vs, f)
			return
		}
		ws.startTurn(f)
	case "interrupt":
		if vs := ws.voiceSession(); vs != nil {
			vs.Interrupt()
			return
		}
		ws.mu.Lock()
		if ws.turn != nil {
			ws.turn.cancel()
		}
		ws.mu.Unlock()
	case "audio.end":
		ws.endAudio(f)
	}
}

func (ws *wsSession) startSession(f clientFrame) {
	ws.mu.Lock()
	started := ws.conv != nil
	ws.mu.Unlock()
	if started {
		ws.sendError(f.ID, CodeAlreadyStarted, "this connection already has a session; open another connection for another one")
		return
	}
	ctx, cancel := context.WithTimeout(ws.ctx, ws.srv.cfg.RequestTimeout)
	defer cancel()
	userID, err := ws.srv.socketUser(ws.caller, ws.authenticated, f.UserID)
	if err != nil {
		ws.sendAPIError(f.ID, err)
		return
	}
	conv := agents.Conversation{AgentID: f.AgentID, SessionID: f.SessionID, UserID: userID}
	sess, created, err := ws.srv.cfg.Engine.OpenSession(ctx, conv)
	if err != nil {
		ws.sendAPIError(f.ID, err)
		return
	}
	conv.SessionID, conv.UserID, conv.AgentID = sess.ID, sess.UserID, sess.AgentID
	var vs *voiceSession
	if f.Audio != nil || f.Voice != nil {
		if vs, err = ws.openVoice(conv, f); err != nil {
			ws.sendAPIError(f.ID, err)
			return
		}
	}
	ws.mu.Lock()
	ws.conv = &conv
	ws.voice = vs
	ws.leaveUser = ws.srv.users.add(conv.UserID, ws)
	ws.mu.Unlock()
	resumed := !created
	ws.send(serverFrame{Type: "session.started", ID: f.ID, SessionID: sess.ID, AgentID: sess.AgentID, Resumed: &resumed, Audio: vs.outputSpec()})
	if vs != nil {
		ws.runVoice(vs)
	}
}

func (ws *wsSession) startTurn(f clientFrame) {
	if !ws.allowTurn(f) {
		return
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.closing {
		ws.sendError(f.ID, CodeShuttingDown, "the gateway is shutting down; reconnect to continue")
		return
	}
	if ws.conv == nil {
		ws.sendError(f.ID, CodeNotStarted, "send session.start before text")
		return
	}
	if ws.turn != nil {
		ws.sendError(f.ID, CodeTurnInProgress, "a reply is still streaming; send interrupt to stop it")
		return
	}
	ctx, cancel := context.WithTimeout(ws.ctx, ws.srv.cfg.RequestTimeout)
	turn := &runningTurn{id: f.ID, cancel: cancel}
	ws.turn = turn
	conv := *ws.conv
	ws.turnsDone.Add(1)
	go func() {
		defer ws.turnsDone.Done()
		defer cancel()
		last := ws.runTurn(ctx, f, conv)
		// The turn is over before its last frame goes out, so a client that answers the
		// frame at once is not told a turn is still in progress.
		ws.mu.Lock()
		ws.turn = nil
		ws.mu.Unlock()
		if last != nil && ws.ctx.Err() == nil {
			ws.send(*last)
		}
	}()
}

// runTurn streams one reply and returns the frame that ends it (nil when nobody is left to
// tell).
func (ws *wsSession) runTurn(ctx context.Context, f clientFrame, conv agents.Conversation) *serverFrame {
	t, err := ws.srv.cfg.Engine.Start(ctx, agents.Request{
		AgentID: conv.AgentID, SessionID: conv.SessionID, UserID: conv.UserID, Message: f.Text, Context: f.Context,
	})
	if err != nil {
		switch {
		case ws.ctx.Err() != nil:
			return nil
		case errors.Is(err, context.Canceled):
			// An interrupt that lands while the turn is still starting (found by
			// FuzzWebSocketFrames): nothing was generated or stored, and it is no server fault.
			return &serverFrame{Type: "response.interrupted", ID: f.ID, SessionID: conv.SessionID}
		}
		return ws.errorFrame(f.ID, err)
	}
	res, err := t.Run(ctx, func(text string) error {
		return ws.send(serverFrame{Type: "response.delta", ID: f.ID, Text: text})
	})
	switch {
	case err == nil:
		return &serverFrame{Type: "response.done", ID: f.ID, SessionID: res.SessionID, MessageID: res.MessageID, Result: &res, Metadata: &res.Metadata}
	case ws.ctx.Err() != nil:
		return nil // the connection is gone; the partial reply is stored
	case errors.Is(err, context.Canceled):
		return &serverFrame{Type: "response.interrupted", ID: f.ID, SessionID: res.SessionID, MessageID: res.MessageID, Metadata: &res.Metadata}
	default:
		return ws.errorFrame(f.ID, err)
	}
}

// send writes one frame; a client that cannot take it within WSWriteTimeout is dropped.
func (ws *wsSession) send(f any) error {
	payload, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return ws.write(websocket.MessageText, payload)
}

func (ws *wsSession) write(typ websocket.MessageType, payload []byte) error {
	ctx, cancel := context.WithTimeout(ws.ctx, ws.srv.cfg.WSWriteTimeout)
	defer cancel()
	if err := ws.conn.Write(ctx, typ, payload); err != nil {
		ws.cancel()
		return err
	}
	return nil
}

// pushEvent delivers an event pushed to the user (DeliverToUser); a client that cannot take
// it within the caller's deadline misses it rather than holding the sender.
func (ws *wsSession) pushEvent(ctx context.Context, payload []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return ws.conn.Write(ctx, websocket.MessageText, payload)
}

func (ws *wsSession) sendError(id, code, message string) {
	ws.send(serverFrame{Type: "error", ID: id, Code: code, Message: message})
}

func (ws *wsSession) sendAPIError(id string, err error) {
	ws.send(*ws.errorFrame(id, err))
}

func (ws *wsSession) errorFrame(id string, err error) *serverFrame {
	apiErr := toAPIError(err)
	if apiErr.Status >= 500 {
		ws.srv.log.Error("websocket turn failed", "requestId", ws.requestID, "err", err)
	}
	return &serverFrame{Type: "error", ID: id, Code: apiErr.Code, Message: apiErr.Message}
}
