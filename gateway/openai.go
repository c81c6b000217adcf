package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/llm"
	"github.com/labstack/echo/v4"
)

// The OpenAI-compatible surface: POST /v1/chat/completions and GET /v1/models, so the official
// OpenAI SDKs (and anything built on them) can use the gateway by changing only the base URL.
//
// A request's "model" picks what answers: an agent id ("fam") runs that agent; any other name
// runs the passthrough agent (agents.PassthroughID) with that model, which hands the client's
// conversation to the provider chain unchanged. OpenAI clients are stateless and send the whole
// conversation every time, so each call is a new session (named in X-Session-Id) whose history
// is the one the client sent.

// CodeModelNotFound is the /v1 code for a model that is neither an agent nor servable by the
// passthrough agent.
const CodeModelNotFound = "model_not_found"

// Model is a model name GET /v1/models lists besides the agents.
type Model struct {
	ID string
	// OwnedBy is reported as owned_by. Default "dartmouth".
	OwnedBy string
}

// openAIChatRequest is the part of the Chat Completions body the gateway reads. Fields it does
// not know are ignored (top_p, seed, metadata ...); fields it knows but cannot honour are refused
// with a 400 naming them (see toTurn).
type openAIChatRequest struct {
	Model         string              `json:"model"`
	Messages      []openAIChatMessage `json:"messages"`
	Stream        bool                `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	Temperature         *float64        `json:"temperature"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	User                string          `json:"user"`
	SafetyIdentifier    string          `json:"safety_identifier"`
	N                   *int            `json:"n"`
	Tools               json.RawMessage `json:"tools"`
	Functions           json.RawMessage `json:"functions"`
	ToolChoice          json.RawMessage `json:"tool_choice"`
	FunctionCall        json.RawMessage `json:"function_call"`
	ResponseFormat      *struct {
		Type string `json:"type"`
	} `json:"response_format"`
	Logprobs   bool            `json:"logprobs"`
	Stop       json.RawMessage `json:"stop"`
	Modalities []string        `json:"modalities"`
	Audio      json.RawMessage `json:"audio"`
}

type openAIChatMessage struct {
	Role         string          `json:"role"`
	Content      json.RawMessage `json:"content"`
	ToolCalls    json.RawMessage `json:"tool_calls"`
	FunctionCall json.RawMessage `json:"function_call"`
}

// present reports whether an optional JSON value was sent as something other than null or an
// empty array/object/string.
func present(raw json.RawMessage) bool {
	switch string(bytes.TrimSpace(raw)) {
	case "", "null", "[]", "{}", `""`:
		return false
	}
	return true
}

// invalidParam is a 400 that names the offending request field, as OpenAI's "param" does.
func invalidParam(param, format string, args ...any) *APIError {
	e := newAPIError(http.StatusBadRequest, CodeValidation, format, args...)
	e.Details = map[string]any{"field": param}
	return e
}

// openAITurn is a validated Chat Completions request mapped onto the engine.
type openAITurn struct {
	req          agents.Request
	model        string // as the client named it; echoed in every response
	stream       bool
	includeUsage bool
}

// toTurn validates the body and maps it onto an engine request.
func (s *Server) toTurn(body openAIChatRequest) (openAITurn, error) {
	var out openAITurn
	model := strings.TrimSpace(body.Model)
	if model == "" {
		return out, invalidParam("model", "model is required: an agent id such as %q, or a model name for the configured provider", "fam")
	}
	switch {
	case present(body.Tools) || present(body.Functions):
		return out, invalidParam("tools", "tools and function calling are not supported by this gateway")
	case present(body.ToolChoice) && !slices.Contains([]string{`"none"`, `"auto"`}, string(bytes.TrimSpace(body.ToolChoice))):
		return out, invalidParam("tool_choice", "tools and function calling are not supported by this gateway")
	case present(body.FunctionCall) && string(bytes.TrimSpace(body.FunctionCall)) != `"none"`:
		return out, invalidParam("function_call", "tools and function calling are not supported by this gateway")
	case body.N != nil && *body.N != 1:
		return out, invalidParam("n", "only n=1 is supported (got %d)", *body.N)
	case body.ResponseFormat != nil && body.ResponseFormat.Type != "" && body.ResponseFormat.Type != "text":
		return out, invalidParam("response_format", "response_format %q is not supported; only text replies are", body.ResponseFormat.Type)
	case body.Logprobs:
		return out, invalidParam("logprobs", "logprobs are not supported")
	case present(body.Stop):
		return out, invalidParam("stop", "stop sequences are not supported")
	case present(body.Audio) || (len(body.Modalities) > 0 && !(len(body.Modalities) == 1 && body.Modalities[0] == "text")):
		return out, invalidParam("modalities", "only text output is supported here; use /api/v2/ws for voice")
	case body.Temperature != nil && (*body.Temperature < 0 || *body.Temperature > 2):
		return out, invalidParam("temperature", "temperature must be between 0 and 2")
	}
	maxTokens := 0
	for _, mt := range []struct {
		name string
		v    *int
	}{{"max_completion_tokens", body.MaxCompletionTokens}, {"max_tokens", body.MaxTokens}} {
		if mt.v == nil {
			continue
		}
		if *mt.v < 1 {
			return out, invalidParam(mt.name, "%s must be at least 1", mt.name)
		}
		if maxTokens == 0 {
			maxTokens = *mt.v // max_completion_tokens wins when both are sent
		}
	}

	if len(body.Messages) == 0 {
		return out, invalidParam("messages", "messages must hold at least one message")
	}
	var system []string
	history := []llm.Message{}
	last := len(body.Messages) - 1
	for i, m := range body.Messages {
		if present(m.ToolCalls) || present(m.FunctionCall) {
			return out, invalidParam("messages", "messages[%d]: tool calls are not supported by this gateway", i)
		}
		text, err := messageText(i, m)
		if err != nil {
			return out, err
		}
		switch m.Role {
		case "system", "developer":
			if i == last {
				return out, invalidParam("messages", "the last message must be from the user, not %q", m.Role)
			}
			if strings.TrimSpace(text) != "" {
				system = append(system, text)
			}
		case "user", "assistant":
			if i == last {
				if m.Role != "user" {
					return out, invalidParam("messages", "the last message must be from the user, not %q", m.Role)
				}
				if strings.TrimSpace(text) == "" {
					return out, invalidParam("messages", "messages[%d]: the last user message is empty", i)
				}
				out.req.Message = text
				continue
			}
			if text == "" {
				continue // an empty turn (an assistant reply that was only a refusal) adds nothing
			}
			history = append(history, llm.Message{Role: m.Role, Content: text})
		case "tool", "function":
			return out, invalidParam("messages", "messages[%d]: %q messages are not supported (tools are not supported by this gateway)", i, m.Role)
		default:
			return out, invalidParam("messages", "messages[%d]: unknown role %q; use system, developer, user or assistant", i, m.Role)
		}
	}

	agentID, opts := model, agents.Options{}
	if _, ok := s.cfg.Engine.Registry().Get(model); !ok {
		if _, ok := s.cfg.Engine.Registry().Get(agents.PassthroughID); !ok {
			return out, newAPIError(http.StatusNotFound, CodeModelNotFound, "the model %q does not exist: it is not an agent of this gateway (see GET /v1/models)", model)
		}
		agentID, opts.Model = agents.PassthroughID, model
	}
	opts.System = strings.Join(system, "\n\n")
	opts.Temperature = body.Temperature
	opts.MaxTokens = maxTokens
	user := body.User
	if user == "" {
		user = body.SafetyIdentifier
	}
	if !agents.ValidUserID(user) {
		user = "" // the engine's anonymous user
	}
	out.req.AgentID, out.req.UserID, out.req.History, out.req.Options = agentID, user, history, opts
	out.model, out.stream = model, body.Stream
	out.includeUsage = body.Stream && body.StreamOptions != nil && body.StreamOptions.IncludeUsage
	return out, nil
}

// messageText reads a message's content: a string, or an array of text parts.
func messageText(i int, m openAIChatMessage) (string, error) {
	raw := bytes.TrimSpace(m.Content)
	if len(raw) == 0 || string(raw) == "null" {
		if m.Role == "assistant" {
			return "", nil
		}
		return "", invalidParam("messages", "messages[%d].content is required", i)
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", invalidParam("messages", "messages[%d].content: %v", i, err)
		}
		return s, nil
	case '[':
		var parts []struct {
			Type string  `json:"type"`
			Text *string `json:"text"`
		}
		if err := json.Unmarshal(raw, &parts); err != nil {
			return "", invalidParam("messages", "messages[%d].content must be a string or an array of content parts", i)
		}
		texts := make([]string, 0, len(parts))
		for j, p := range parts {
			if p.Type != "text" {
				return "", invalidParam("messages", "messages[%d].content[%d]: %q parts are not supported; send text", i, j, p.Type)
			}
			if p.Text == nil {
				return "", invalidParam("messages", "messages[%d].content[%d].text is required", i, j)
			}
			texts = append(texts, *p.Text)
		}
		return strings.Join(texts, "\n"), nil
	}
	return "", invalidParam("messages", "messages[%d].content must be a string or an array of content parts", i)
}

// Response shapes, as the Chat Completions API sends them.
type (
	openAICompletion struct {
		ID      string         `json:"id"`
		Object  string         `json:"object"`
		Created int64          `json:"created"`
		Model   string         `json:"model"`
		Choices []openAIChoice `json:"choices"`
		Usage   openAIUsage    `json:"usage"`
	}
	openAIChoice struct {
		Index        int              `json:"index"`
		Message      openAIMessageOut `json:"message"`
		Logprobs     *struct{}        `json:"logprobs"`
		FinishReason string           `json:"finish_reason"`
	}
	openAIMessageOut struct {
		Role    string  `json:"role"`
		Content string  `json:"content"`
		Refusal *string `json:"refusal"`
	}
	openAIUsage struct {
		PromptTokens        int64 `json:"prompt_tokens"`
		CompletionTokens    int64 `json:"completion_tokens"`
		TotalTokens         int64 `json:"total_tokens"`
		PromptTokensDetails struct {
			CachedTokens int64 `json:"cached_tokens"`
		} `json:"prompt_tokens_details"`
	}
	openAIChunk struct {
		ID      string              `json:"id"`
		Object  string              `json:"object"`
		Created int64               `json:"created"`
		Model   string              `json:"model"`
		Choices []openAIChunkChoice `json:"choices"`
		// Usage is omitted unless the client asked for it; then it is null on every chunk but
		// the last, as OpenAI sends it.
		Usage any `json:"usage,omitempty"`
	}
	openAIChunkChoice struct {
		Index        int         `json:"index"`
		Delta        openAIDelta `json:"delta"`
		Logprobs     *struct{}   `json:"logprobs"`
		FinishReason *string     `json:"finish_reason"`
	}
	openAIDelta struct {
		Role    string  `json:"role,omitempty"`
		Content *string `json:"content,omitempty"`
	}
	openAIModel struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	}
	// openAIError is the /v1 error body: OpenAI's fields, plus the gateway's requestId and
	// details, so it is still the project's envelope.
	openAIError struct {
		Message   string         `json:"message"`
		Type      string         `json:"type"`
		Code      string         `json:"code"`
		Param     *string        `json:"param"`
		RequestID string         `json:"requestId,omitempty"`
		Details   map[string]any `json:"details,omitempty"`
	}
)

func usageOf(t agents.Tokens) openAIUsage {
	u := openAIUsage{PromptTokens: t.Input + t.CachedInput, CompletionTokens: t.Output}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	u.PromptTokensDetails.CachedTokens = t.CachedInput
	return u
}

func newCompletionID() string { return "chatcmpl-" + rand.Text() }

// isOpenAIRoute reports whether a request is on the OpenAI-compatible surface, whose errors
// take OpenAI's shape.
func isOpenAIRoute(c echo.Context) bool {
	return strings.HasPrefix(c.Request().URL.Path, "/v1/")
}

// openAIErrorBody turns the gateway's error into OpenAI's {"error":{message,type,code,param}},
// keeping requestId and details.
func openAIErrorBody(e *APIError) map[string]*openAIError {
	out := &openAIError{Message: e.Message, Code: e.Code, RequestID: e.RequestID, Details: e.Details}
	if field, ok := e.Details["field"].(string); ok && field != "" {
		out.Param = &field
	}
	if out.Code == CodeAgentNotFound {
		out.Code = CodeModelNotFound
	}
	switch {
	case e.Status == http.StatusUnauthorized:
		out.Type = "authentication_error"
	case e.Status == http.StatusForbidden:
		out.Type = "permission_error"
	case e.Status == http.StatusTooManyRequests:
		out.Type = "rate_limit_error"
	case e.Status >= 500:
		out.Type = "server_error"
	default:
		out.Type = "invalid_request_error"
	}
	return map[string]*openAIError{"error": out}
}

// chatCompletions is POST /v1/chat/completions.
func (s *Server) chatCompletions(c echo.Context) error {
	var body openAIChatRequest
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	turnReq, err := s.toTurn(body)
	if err != nil {
		return err
	}
	// OpenAI's "user" is a client's own label for its end user, not this gateway's tenant: with
	// authentication on, the caller's user owns the session whatever the label says.
	user, err := s.callerUser(c, "")
	if err != nil {
		return err
	}
	if user != "" {
		turnReq.req.UserID = user
	}
	ctx := c.Request().Context()
	turn, err := s.cfg.Engine.Start(ctx, turnReq.req)
	if err != nil {
		var valErr *agents.ValidationError
		if errors.As(err, &valErr) && valErr.Field == "message" {
			return invalidParam("messages", "the last user message %s", valErr.Message)
		}
		return err
	}
	c.Response().Header().Set("X-Session-Id", turn.SessionID())
	id, created := newCompletionID(), time.Now().Unix()
	if turnReq.stream {
		return s.streamCompletion(c, turn, turnReq, id, created)
	}
	res, err := turn.Run(ctx, func(string) error { return nil })
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, openAICompletion{
		ID: id, Object: "chat.completion", Created: created, Model: turnReq.model,
		Choices: []openAIChoice{{Message: openAIMessageOut{Role: "assistant", Content: res.Content}, FinishReason: "stop"}},
		Usage:   usageOf(res.Metadata.Tokens),
	})
}

// streamCompletion answers as chat.completion.chunk frames. The stream opens with the first
// generated text, so a turn that fails before producing anything is a plain HTTP error with
// its real status; once open, a failure is sent as a data frame holding an error object and
// the stream ends without finish_reason or [DONE], so no client takes it for a whole reply.
func (s *Server) streamCompletion(c echo.Context, turn *agents.Turn, tr openAITurn, id string, created int64) error {
	sse, err := newSSEWriter(c.Response())
	if err != nil {
		return err
	}
	defer sse.close()
	chunk := func(delta openAIDelta, finish *string) openAIChunk {
		ch := openAIChunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: tr.model,
			Choices: []openAIChunkChoice{{Delta: delta, FinishReason: finish}}}
		if tr.includeUsage {
			ch.Usage = json.RawMessage("null")
		}
		return ch
	}
	opened := false
	open := func() error {
		if opened {
			return nil
		}
		opened = true
		sse.begin()
		empty := ""
		return sse.data(chunk(openAIDelta{Role: "assistant", Content: &empty}, nil))
	}
	ctx := c.Request().Context()
	delta, err := newContentChunkTemplate(chunk)
	if err != nil {
		return err
	}
	res, err := turn.Run(ctx, func(text string) error {
		if err := open(); err != nil {
			return err
		}
		return sse.write(func(b []byte) []byte { return delta.appendFrame(b, text) }, false)
	})
	if err != nil {
		if !opened {
			return err // nothing sent yet: the error handler answers with the status
		}
		if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil // the client left; nobody to tell
		}
		apiErr := toAPIError(err)
		apiErr.RequestID = requestID(c)
		_ = sse.data(openAIErrorBody(apiErr))
		return nil
	}
	if err := open(); err != nil {
		return nil
	}
	stop := "stop"
	if err := sse.data(chunk(openAIDelta{}, &stop)); err != nil {
		return nil
	}
	if tr.includeUsage {
		final := chunk(openAIDelta{}, nil)
		final.Choices, final.Usage = []openAIChunkChoice{}, usageOf(res.Metadata.Tokens)
		if err := sse.data(final); err != nil {
			return nil
		}
	}
	_ = sse.done()
	return nil
}

// publicAgents lists the agents clients pick from: every registered agent but the passthrough,
// which is plumbing for model names rather than an agent of its own.
func (s *Server) publicAgents() []agents.Info {
	list := s.cfg.Engine.Registry().List()
	out := list[:0]
	for _, a := range list {
		if a.ID != agents.PassthroughID {
			out = append(out, a)
		}
	}
	return out
}

// models is what GET /v1/models lists: the agents, then the configured Models.
func (s *Server) models() []openAIModel {
	created := s.started.Unix()
	var out []openAIModel
	seen := map[string]bool{}
	for _, a := range s.publicAgents() {
		out = append(out, openAIModel{ID: a.ID, Object: "model", Created: created, OwnedBy: "dartmouth"})
		seen[a.ID] = true
	}
	for _, m := range s.cfg.Models {
		if m.ID == "" || seen[m.ID] || m.ID == agents.PassthroughID {
			continue
		}
		seen[m.ID] = true
		owner := m.OwnedBy
		if owner == "" {
			owner = "dartmouth"
		}
		out = append(out, openAIModel{ID: m.ID, Object: "model", Created: created, OwnedBy: owner})
	}
	return out
}

// listModels is GET /v1/models.
func (s *Server) listModels(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"object": "list", "data": s.models()})
}

// getModel is GET /v1/models/{model}; model ids may hold slashes ("org/model").
func (s *Server) getModel(c echo.Context) error {
	id := c.Param("*")
	if unescaped, err := url.PathUnescape(id); err == nil {
		id = unescaped // SDKs escape the slash of "org/model"; echo leaves the param escaped
	}
	for _, m := range s.models() {
		if m.ID == id {
			return c.JSON(http.StatusOK, m)
		}
	}
	return newAPIError(http.StatusNotFound, CodeModelNotFound, "the model %q is not listed by this gateway", id)
}

// contentChunkTemplate renders the stream's text chunks, which differ only in their text, as
// the JSON around the text marshalled once plus the text: byte for byte what marshalling the
// whole chunk gives, without walking the chunk by reflection for every token.
type contentChunkTemplate struct {
	prefix, suffix []byte // "data: " and the chunk up to its content string; the rest and "\n\n"
}

// contentMarker stands for the text in the chunk marshalled once; it cannot occur in JSON that
// encoding/json writes from the chunk's other fields (ids, model names, numbers), because its
// NUL is always escaped.
const contentMarker = "\x00dartmouth-content\x00"

func newContentChunkTemplate(chunk func(openAIDelta, *string) openAIChunk) (contentChunkTemplate, error) {
	marker := contentMarker
	whole, err := json.Marshal(chunk(openAIDelta{Content: &marker}, nil))
	if err != nil {
		return contentChunkTemplate{}, err
	}
	quoted, _ := json.Marshal(marker)
	before, after, ok := bytes.Cut(whole, quoted)
	if !ok {
		return contentChunkTemplate{}, errors.New("openai stream: the content marker is not in the marshalled chunk")
	}
	return contentChunkTemplate{
		prefix: append([]byte("data: "), before...),
		suffix: append(append([]byte(nil), after...), "\n\n"...),
	}, nil
}

// appendFrame appends the "data:" frame of the chunk holding text.
func (t contentChunkTemplate) appendFrame(b []byte, text string) []byte {
	b = append(b, t.prefix...)
	b = appendJSONString(b, text)
	return append(b, t.suffix...)
}

// appendJSONString appends s as encoding/json writes it. Text of plain printable ASCII (most
// tokens) is written as is; anything else goes through encoding/json, so the escaping (HTML
// characters, U+2028, invalid UTF-8) stays exactly the library's.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			quoted, _ := json.Marshal(s) // a string always marshals
			return append(b, quoted...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
