package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The instant OpenAI-compatible provider the gateway is pointed at (OPENAI_BASE_URL), so the
// figures are the gateway's own cost. It answers POST /v1/chat/completions, streamed or not,
// at once; the model name says how long the reply is: "bench-sse-N" streams N tokens, any
// other model gets a short reply of shortReplyTokens tokens.

const (
	shortReplyTokens = 8
	// token is one token of every reply. Its word appears nowhere else in a response (not in
	// a field name, and ids are upper case), so a client counts tokens by counting it.
	token       = " blip"
	sseModelPre = "bench-sse-"
)

// replyTokens is how many tokens the fake answers a model with.
func replyTokens(model string) (int, error) {
	rest, ok := strings.CutPrefix(model, sseModelPre)
	if !ok {
		return shortReplyTokens, nil
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("model %q: want %sN with N a positive token count", model, sseModelPre)
	}
	return n, nil
}

type fakeRequest struct {
	Model    string `json:"model"`
	Stream   bool   `json:"stream"`
	Messages []struct {
		Role string `json:"role"`
	} `json:"messages"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

// fakeProvider serves the fake on a loopback port until its context ends.
type fakeProvider struct {
	URL string // base URL with /v1, as OPENAI_BASE_URL wants it
	srv *http.Server
}

func startFakeProvider(ctx context.Context) (*fakeProvider, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fake provider: %w", err)
	}
	f := &fakeProvider{URL: "http://" + ln.Addr().String() + "/v1"}
	f.srv = &http.Server{Handler: http.HandlerFunc(serveFakeCompletion), ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	go func() {
		if err := f.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Println("fake provider:", err)
		}
	}()
	return f, nil
}

func (f *fakeProvider) Close() error { return f.srv.Close() }

func serveFakeCompletion(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
		http.Error(w, `{"error":{"message":"unknown path","type":"invalid_request_error"}}`, http.StatusNotFound)
		return
	}
	var req fakeRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Messages) == 0 {
		http.Error(w, `{"error":{"message":"bad request body","type":"invalid_request_error"}}`, http.StatusBadRequest)
		return
	}
	n, err := replyTokens(req.Model)
	if err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": err.Error(), "type": "invalid_request_error"}})
		return
	}
	model, _ := json.Marshal(req.Model)
	usage := fmt.Sprintf(`{"prompt_tokens":12,"completion_tokens":%d,"total_tokens":%d,"prompt_tokens_details":{"cached_tokens":0}}`, n, n+12)
	if !req.Stream {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"chatcmpl-BENCH","object":"chat.completion","created":1,"model":%s,"choices":[{"index":0,"message":{"role":"assistant","content":%q,"refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":%s}`,
			model, strings.Repeat(token, n), usage)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	// The response writer's buffer sends full 4 KiB segments; the stream is flushed once at
	// the end, so the fake streams as fast as the connection takes it.
	bw := bufio.NewWriterSize(w, 32<<10)
	head := `data: {"id":"chatcmpl-BENCH","object":"chat.completion.chunk","created":1,"model":` + string(model) + `,"choices":[`
	fmt.Fprintf(bw, "%s{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n", head)
	chunk := head + `{"index":0,"delta":{"content":"` + token + `"},"logprobs":null,"finish_reason":null}]}` + "\n\n"
	for range n {
		if _, err := bw.WriteString(chunk); err != nil {
			return // the client went away
		}
	}
	fmt.Fprintf(bw, "%s{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}]}\n\n", head)
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		fmt.Fprintf(bw, `data: {"id":"chatcmpl-BENCH","object":"chat.completion.chunk","created":1,"model":%s,"choices":[],"usage":%s}`+"\n\n", model, usage)
	}
	bw.WriteString("data: [DONE]\n\n")
	bw.Flush()
}
