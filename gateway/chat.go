package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/labstack/echo/v4"
)

// chatRequest is the body of POST /api/v2/chat and /api/v2/chat/stream.
type chatRequest struct {
	AgentID   string         `json:"agentId"`
	Message   string         `json:"message"`
	SessionID string         `json:"sessionId,omitempty"`
	UserID    string         `json:"userId,omitempty"`
	Context   map[string]any `json:"context,omitempty"`
}

func (r chatRequest) toEngine() agents.Request {
	return agents.Request{AgentID: r.AgentID, Message: r.Message, SessionID: r.SessionID, UserID: r.UserID, Context: r.Context}
}

// decodeJSON reads one JSON object from the body with errors a client can act on.
func decodeJSON(c echo.Context, into any) error {
	// curl -d sends application/x-www-form-urlencoded; the body is JSON all the same, so only
	// types that cannot be JSON are refused.
	ct := strings.ToLower(c.Request().Header.Get(echo.HeaderContentType))
	if strings.HasPrefix(ct, "multipart/") || strings.HasPrefix(ct, "audio/") || strings.HasPrefix(ct, "image/") {
		return newAPIError(http.StatusUnsupportedMediaType, CodeValidation, "Content-Type must be application/json, not %q", ct)
	}
	dec := json.NewDecoder(c.Request().Body)
	if err := dec.Decode(into); err != nil {
		var maxBytes *http.MaxBytesError
		var syntaxErr *json.SyntaxError
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &maxBytes):
			return err
		case errors.Is(err, io.EOF):
			return newAPIError(http.StatusBadRequest, CodeInvalidJSON, "the request body is empty; send a JSON object")
		case errors.As(err, &syntaxErr):
			return newAPIError(http.StatusBadRequest, CodeInvalidJSON, "malformed JSON at byte %d: %v", syntaxErr.Offset, err)
		case errors.As(err, &typeErr):
			return newAPIError(http.StatusBadRequest, CodeInvalidJSON, "field %q must be a %s", typeErr.Field, typeErr.Type)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return newAPIError(http.StatusBadRequest, CodeInvalidJSON, "malformed JSON: the body ends too early")
		}
		return newAPIError(http.StatusBadRequest, CodeInvalidJSON, "malformed JSON: %v", err)
	}
	if dec.More() {
		return newAPIError(http.StatusBadRequest, CodeInvalidJSON, "the body must hold exactly one JSON object")
	}
	return nil
}

// chat answers with the whole reply as JSON.
func (s *Server) chat(c echo.Context) error {
	var body chatRequest
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	user, err := s.callerUser(c, body.UserID)
	if err != nil {
		return err
	}
	body.UserID = user
	ctx := c.Request().Context()
	turn, err := s.cfg.Engine.Start(ctx, body.toEngine())
	if err != nil {
		return err
	}
	c.Response().Header().Set("X-Session-Id", turn.SessionID())
	res, err := turn.Run(ctx, func(string) error { return nil })
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}

// chatStream answers as server-sent events, flushed per delta. Errors found before the stream
// begins are plain JSON errors; after that they arrive as an "error" event.
func (s *Server) chatStream(c echo.Context) error {
	start := time.Now()
	var body chatRequest
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	user, err := s.callerUser(c, body.UserID)
	if err != nil {
		return err
	}
	body.UserID = user
	ctx := c.Request().Context()
	turn, err := s.cfg.Engine.Start(ctx, body.toEngine())
	if err != nil {
		return err
	}
	sse, err := newSSEWriter(c.Response())
	if err != nil {
		return err
	}
	defer sse.close()
	c.Response().Header().Set("X-Session-Id", turn.SessionID())
	if err := sse.start(); err != nil {
		return nil // client gone before the first byte
	}
	firstToken := true
	res, err := turn.Run(ctx, func(text string) error {
		if firstToken {
			firstToken = false
			s.metrics.chatFirstToken.Observe(time.Since(start).Seconds())
		}
		return sse.event("delta", map[string]string{"text": text})
	})
	if err != nil {
		if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil // the client left; nobody to tell
		}
		apiErr := toAPIError(err)
		apiErr.RequestID = requestID(c)
		_ = sse.event("error", apiErr)
		return nil
	}
	_ = sse.event("done", res)
	return nil
}

type messageView struct {
	ID        string         `json:"id"`
	Role      string         `json:"role"`
	Content   string         `json:"content"`
	CreatedAt time.Time      `json:"createdAt"`
	Metadata  map[string]any `json:"metadata,omitempty"`
}

// sessionMessages returns a session's stored history.
func (s *Server) sessionMessages(c echo.Context) error {
	user, err := s.callerUser(c, c.QueryParam("userId"))
	if err != nil {
		return err
	}
	msgs, err := s.cfg.Engine.History(c.Request().Context(), user, c.Param("id"))
	if err != nil {
		return err
	}
	out := make([]messageView, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, messageView{ID: m.ID, Role: m.Role, Content: m.Content, CreatedAt: m.CreatedAt.UTC(), Metadata: m.Metadata})
	}
	return c.JSON(http.StatusOK, map[string]any{"sessionId": c.Param("id"), "messages": out})
}

func (s *Server) listAgents(c echo.Context) error {
	list := s.publicAgents()
	return c.JSON(http.StatusOK, map[string]any{"agents": list, "total": len(list)})
}
