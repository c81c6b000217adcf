package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/llm"
	"github.com/dartmouth-gw/dartmouth/session"
	"github.com/labstack/echo/v4"
)

// Error codes clients can switch on. They are part of the public surface.
const (
	CodeInvalidJSON      = "invalid_json"
	CodeValidation       = "validation_error"
	CodeBodyTooLarge     = "body_too_large"
	CodeAgentNotFound    = "agent_not_found"
	CodeSessionNotFound  = "session_not_found"
	CodeSessionConflict  = "session_agent_mismatch"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeTimeout          = "timeout"
	CodeProviderError    = "provider_error"
	CodeInternal         = "internal_error"
	CodeUnavailable      = "service_unavailable"
	CodeForbiddenOrigin  = "origin_not_allowed"
	CodeBudgetExceeded   = "budget_exceeded"
	CodeRateLimited      = "rate_limited"
	// WebSocket-only codes.
	CodeUnknownType      = "unknown_type"
	CodeFrameTooLarge    = "frame_too_large"
	CodeNotStarted       = "session_not_started"
	CodeAlreadyStarted   = "session_already_started"
	CodeTurnInProgress   = "turn_in_progress"
	CodeUnsupportedFrame = "unsupported_frame"
	CodeShuttingDown     = "shutting_down"
)

// CodeUnsupportedMediaType: an upload in a format the endpoint does not read (415).
const CodeUnsupportedMediaType = "unsupported_media_type"

// APIError is the one error type that leaves the gateway, as
// {"error":{"code","message","requestId","details"}}.
type APIError struct {
	Status  int            `json:"-"`
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details,omitempty"`
	// RequestID is filled in at the edge.
	RequestID string `json:"requestId,omitempty"`
	// RetryAfter, when set, is sent as the Retry-After header.
	RetryAfter time.Duration `json:"-"`
	cause      error
}

func (e *APIError) Error() string { return e.Code + ": " + e.Message }

func (e *APIError) Unwrap() error { return e.cause }

func newAPIError(status int, code, format string, args ...any) *APIError {
	return &APIError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

type errorEnvelope struct {
	Error *APIError `json:"error"`
}

// toAPIError maps any error to the envelope: domain errors get their own code, anything
// unexpected becomes a 500 whose message does not leak internals.
func toAPIError(err error) *APIError {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr
	}
	if ve, ok := voiceError(err); ok {
		return ve
	}
	var valErr *agents.ValidationError
	var maxBytes *http.MaxBytesError
	var httpErr *echo.HTTPError
	var budgetErr *agents.BudgetError
	switch {
	case errors.As(err, &valErr):
		return &APIError{Status: http.StatusBadRequest, Code: CodeValidation, Message: valErr.Error(), Details: map[string]any{"field": valErr.Field}, cause: err}
	case errors.As(err, &maxBytes):
		return &APIError{Status: http.StatusRequestEntityTooLarge, Code: CodeBodyTooLarge, Message: fmt.Sprintf("request body is over the limit of %d bytes", maxBytes.Limit), cause: err}
	case errors.Is(err, agents.ErrAgentNotFound):
		return &APIError{Status: http.StatusNotFound, Code: CodeAgentNotFound, Message: err.Error(), cause: err}
	case errors.Is(err, agents.ErrSessionNotFound):
		return &APIError{Status: http.StatusNotFound, Code: CodeSessionNotFound, Message: err.Error(), cause: err}
	case errors.Is(err, agents.ErrSessionAgent):
		return &APIError{Status: http.StatusConflict, Code: CodeSessionConflict, Message: err.Error(), cause: err}
	case errors.As(err, &budgetErr):
		return &APIError{Status: http.StatusTooManyRequests, Code: CodeBudgetExceeded, Message: budgetErr.Error(),
			Details: map[string]any{"scope": budgetErr.Scope, "resetAt": budgetErr.ResetAt}, RetryAfter: time.Until(budgetErr.ResetAt), cause: err}
	case errors.Is(err, session.ErrUnavailable):
		return &APIError{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "the database is unavailable; the request was not stored, retry shortly",
			RetryAfter: 5 * time.Second, cause: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &APIError{Status: http.StatusGatewayTimeout, Code: CodeTimeout, Message: "the request took longer than its deadline", cause: err}
	case errors.As(err, &httpErr):
		return fromEchoError(httpErr)
	case isProviderError(err):
		return &APIError{Status: http.StatusBadGateway, Code: CodeProviderError, Message: err.Error(), cause: err}
	}
	return &APIError{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error", cause: err}
}

func fromEchoError(he *echo.HTTPError) *APIError {
	msg := http.StatusText(he.Code)
	if s, ok := he.Message.(string); ok && s != "" {
		msg = s
	}
	code := CodeInternal
	switch he.Code {
	case http.StatusNotFound:
		code = CodeNotFound
	case http.StatusMethodNotAllowed:
		code = CodeMethodNotAllowed
	case http.StatusRequestEntityTooLarge:
		code = CodeBodyTooLarge
	case http.StatusForbidden:
		code = CodeForbiddenOrigin
	default:
		if he.Code >= 400 && he.Code < 500 {
			code = CodeValidation
		}
	}
	return &APIError{Status: he.Code, Code: code, Message: msg, cause: he}
}

func isProviderError(err error) bool {
	var pe *llm.Error
	return errors.As(err, &pe) || errors.Is(err, llm.ErrAllProvidersFailed) || errors.Is(err, llm.ErrNoProviders)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func strconvQuote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strconv.Quote(s)
}
