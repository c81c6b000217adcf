// Package llmtest has local servers that speak the providers' real wire formats, for tests and
// benchmarks that must not reach a paid API.
package llmtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"unicode/utf8"
)

// Reply is what a fake server streams back.
type Reply struct {
	Chunks []string
	// InputTokens is reported as the provider does: OpenAI's prompt_tokens includes the cached
	// tokens, Anthropic's input_tokens does not.
	InputTokens  int64
	CachedTokens int64
	// CacheWriteTokens is Anthropic's cache_creation_input_tokens.
	CacheWriteTokens int64
	OutputTokens     int64
	// Status, when not 0 or 200, is returned with an error body instead of a stream.
	Status int
	// CutAfter, when > 0, drops the connection after that many content chunks, as an upstream
	// that dies mid-stream does.
	CutAfter int
	// ToolCalls are streamed after the content chunks, as OpenAI streams them (the id and
	// name first, the arguments in fragments), and the reply finishes with "tool_calls".
	// The Anthropic fake ignores them.
	ToolCalls []ToolCall
}

// ToolCall is a function call a fake server answers with.
type ToolCall struct {
	ID        string
	Name      string
	Arguments string // JSON, sent as is
}

// Server is a fake provider endpoint that records the requests it got.
type Server struct {
	*httptest.Server
	mu       sync.Mutex
	requests []Recorded
	reply    func(n int) Reply
}

// Recorded is one request the fake received.
type Recorded struct {
	Path   string
	Header http.Header
	Body   map[string]any
}

// ToolNames lists the names of the function tools a recorded OpenAI request offered, in order.
func (r Recorded) ToolNames() []string {
	tools, _ := r.Body["tools"].([]any)
	var names []string
	for _, t := range tools {
		tool, _ := t.(map[string]any)
		fn, _ := tool["function"].(map[string]any)
		name, _ := fn["name"].(string)
		names = append(names, name)
	}
	return names
}

// Requests returns what the server received so far.
func (s *Server) Requests() []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Recorded(nil), s.requests...)
}

func (s *Server) record(r *http.Request) (int, error) {
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, Recorded{Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
	return len(s.requests) - 1, nil
}

// NewOpenAI starts a server for POST /v1/chat/completions streaming like OpenAI: a role chunk,
// content chunks, tool call fragments, a finish_reason chunk, a usage-only chunk, then [DONE]. reply gets the
// 0-based number of the request.
func NewOpenAI(reply func(n int) Reply) *Server {
	s := &Server{reply: reply}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
			http.Error(w, `{"error":{"message":"unknown path","type":"invalid_request_error"}}`, http.StatusNotFound)
			return
		}
		n, err := s.record(r)
		if err != nil {
			http.Error(w, `{"error":{"message":"bad json","type":"invalid_request_error"}}`, http.StatusBadRequest)
			return
		}
		rep := s.reply(n)
		if rep.Status != 0 && rep.Status != http.StatusOK {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(rep.Status)
			fmt.Fprintf(w, `{"error":{"message":"fake failure %d","type":"server_error","param":null,"code":null}}`, rep.Status)
			return
		}
		model, _ := s.Requests()[n].Body["model"].(string)
		w.Header().Set("Content-Type", "text/event-stream")
		flusher := w.(http.Flusher)
		send := func(v any) {
			b, _ := json.Marshal(v)
			fmt.Fprintf(w, "data: %s\n\n", b)
			flusher.Flush()
		}
		chunk := func(delta map[string]any, finish any) map[string]any {
			return map[string]any{"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": model,
				"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}}
		}
		send(chunk(map[string]any{"role": "assistant", "content": ""}, nil))
		for i, c := range rep.Chunks {
			if rep.CutAfter > 0 && i == rep.CutAfter {
				panic(http.ErrAbortHandler)
			}
			send(chunk(map[string]any{"content": c}, nil))
		}
		finish := "stop"
		for i, call := range rep.ToolCalls {
			finish = "tool_calls"
			send(chunk(map[string]any{"tool_calls": []any{map[string]any{"index": i, "id": call.ID, "type": "function",
				"function": map[string]any{"name": call.Name, "arguments": ""}}}}, nil))
			half := len(call.Arguments) / 2
			for half > 0 && !utf8.RuneStart(call.Arguments[half]) {
				half--
			}
			for _, frag := range []string{call.Arguments[:half], call.Arguments[half:]} {
				send(chunk(map[string]any{"tool_calls": []any{map[string]any{"index": i, "function": map[string]any{"arguments": frag}}}}, nil))
			}
		}
		send(chunk(map[string]any{}, finish))
		send(map[string]any{"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": model, "choices": []any{},
			"usage": map[string]any{"prompt_tokens": rep.InputTokens, "completion_tokens": rep.OutputTokens, "total_tokens": rep.InputTokens + rep.OutputTokens,
				"prompt_tokens_details": map[string]any{"cached_tokens": rep.CachedTokens}}})
		fmt.Fprint(w, "data: [DONE]\n\n")
		flusher.Flush()
	}))
	return s
}

// NewAnthropic starts a server for POST /v1/messages streaming like the Messages API.
func NewAnthropic(reply func(n int) Reply) *Server {
	s := &Server{reply: reply}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/messages" {
			http.Error(w, `{"type":"error","error":{"type":"not_found_error","message":"unknown path"}}`, http.StatusNotFound)
			return
		}
		n, err := s.record(r)
		if err != nil {
			http.Error(w, `{"type":"error","error":{"type":"invalid_request_error","message":"bad json"}}`, http.StatusBadRequest)
			return
		}
		rep := s.reply(n)
		if rep.Status != 0 && rep.Status != http.StatusOK {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(rep.Status)
			fmt.Fprintf(w, `{"type":"error","error":{"type":"api_error","message":"fake failure %d"}}`, rep.Status)
			return
		}
		model, _ := s.Requests()[n].Body["model"].(string)
		w.Header().Set("Content-Type", "text/event-stream")
		flusher := w.(http.Flusher)
		send := func(event string, v any) {
			b, _ := json.Marshal(v)
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b)
			flusher.Flush()
		}
		send("message_start", map[string]any{"type": "message_start", "message": map[string]any{
			"id": "msg_1", "type": "message", "role": "assistant", "content": []any{}, "model": model,
			"stop_reason": nil, "usage": map[string]any{"input_tokens": rep.InputTokens, "cache_read_input_tokens": rep.CachedTokens,
				"cache_creation_input_tokens": rep.CacheWriteTokens, "output_tokens": 1}}})
		send("content_block_start", map[string]any{"type": "content_block_start", "index": 0, "content_block": map[string]any{"type": "text", "text": ""}})
		send("ping", map[string]any{"type": "ping"})
		for i, c := range rep.Chunks {
			if rep.CutAfter > 0 && i == rep.CutAfter {
				panic(http.ErrAbortHandler)
			}
			send("content_block_delta", map[string]any{"type": "content_block_delta", "index": 0, "delta": map[string]any{"type": "text_delta", "text": c}})
		}
		send("content_block_stop", map[string]any{"type": "content_block_stop", "index": 0})
		send("message_delta", map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": "end_turn", "stop_sequence": nil},
			"usage": map[string]any{"output_tokens": rep.OutputTokens}})
		send("message_stop", map[string]any{"type": "message_stop"})
	}))
	return s
}
