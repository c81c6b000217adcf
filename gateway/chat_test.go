package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents/llm"
	"github.com/dartmouth-gw/dartmouth/agents/llm/llmtest"
	"github.com/dartmouth-gw/dartmouth/agents/offline"
	"github.com/dartmouth-gw/dartmouth/gateway"
	"github.com/dartmouth-gw/dartmouth/session"
)

func TestChatGreetsAndKeepsTheSession(t *testing.T) {
	g := startGateway(t, nil)
	resp, first := postJSON(t, g.URL+"/api/v2/chat", `{"agentId":"fam","message":"Hello!"}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %v", resp.StatusCode, first)
	}
	sid, _ := first["sessionId"].(string)
	if !strings.HasPrefix(sid, "ses_") || first["intent"] != "greeting" {
		t.Fatalf("want a session and a greeting intent, got %v", first)
	}
	if content, _ := first["content"].(string); !strings.HasPrefix(content, "Hello!") {
		t.Fatalf("want a greeting, got %q", content)
	}
	meta := first["metadata"].(map[string]any)
	if meta["provider"] != "offline" || meta["model"] != offline.ModelName {
		t.Fatalf("metadata should name the offline engine: %v", meta)
	}

	_, second := postJSON(t, g.URL+"/api/v2/chat", fmt.Sprintf(`{"agentId":"fam","message":"what is 6 * 7?","sessionId":%q}`, sid))
	if second["sessionId"] != sid || !strings.Contains(second["content"].(string), "42") {
		t.Fatalf("follow-up should stay in %s and compute 42: %v", sid, second)
	}
	msgs, err := g.Store.ListMessages(context.Background(), session.AnonymousUserID, sid, 0)
	if err != nil {
		t.Fatal(err)
	}
	roles := []string{}
	for _, m := range msgs {
		roles = append(roles, m.Role)
	}
	if got := strings.Join(roles, ","); got != "user,assistant,user,assistant" {
		t.Fatalf("stored roles %s", got)
	}

	// Another call without a sessionId never lands in the same session.
	_, other := postJSON(t, g.URL+"/api/v2/chat", `{"agentId":"fam","message":"Hello!"}`)
	if other["sessionId"] == sid {
		t.Fatal("two callers shared one session")
	}
	// The history endpoint shows what was stored, and only to the session's user.
	resp, hist := getJSON(t, g.URL+"/api/v2/sessions/"+sid+"/messages")
	if resp.StatusCode != http.StatusOK || len(hist["messages"].([]any)) != 4 {
		t.Fatalf("history: %d %v", resp.StatusCode, hist)
	}
	resp, hist = getJSON(t, g.URL+"/api/v2/sessions/"+sid+"/messages?userId=mallory")
	if resp.StatusCode != http.StatusNotFound || errCode(hist) != gateway.CodeSessionNotFound {
		t.Fatalf("another user must not read the session: %d %v", resp.StatusCode, hist)
	}
}

func getJSON(t *testing.T, url string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	return doJSON(t, req)
}

func doJSON(t *testing.T, req *http.Request) (*http.Response, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := jsonDecode(resp.Body, &out); err != nil {
		t.Fatalf("response is not JSON (%d): %v", resp.StatusCode, err)
	}
	return resp, out
}

func errCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

func TestBadHTTPInputGetsTheEnvelope(t *testing.T) {
	g := startGateway(t, nil, func(c *gateway.Config) { c.BodyLimit = 1024 })
	_, started := postJSON(t, g.URL+"/api/v2/chat", `{"agentId":"fam","message":"hi"}`)
	sid := started["sessionId"].(string)
	big := `{"agentId":"fam","message":"` + strings.Repeat("a", 2000) + `"}`
	cases := []struct {
		name, method, path, contentType, body string
		chunked                               bool
		status                                int
		code                                  string
	}{
		{"malformed json", "POST", "/api/v2/chat", "application/json", `{"agentId":`, false, 400, gateway.CodeInvalidJSON},
		{"not an object", "POST", "/api/v2/chat", "application/json", `[1,2]`, false, 400, gateway.CodeInvalidJSON},
		{"two objects", "POST", "/api/v2/chat", "application/json", `{"agentId":"fam","message":"a"}{}`, false, 400, gateway.CodeInvalidJSON},
		{"empty body", "POST", "/api/v2/chat", "application/json", ``, false, 400, gateway.CodeInvalidJSON},
		{"wrong type", "POST", "/api/v2/chat", "application/json", `{"agentId":"fam","message":5}`, false, 400, gateway.CodeInvalidJSON},
		{"missing agent", "POST", "/api/v2/chat", "application/json", `{"message":"hi"}`, false, 400, gateway.CodeValidation},
		{"missing message", "POST", "/api/v2/chat", "application/json", `{"agentId":"fam"}`, false, 400, gateway.CodeValidation},
		{"blank message", "POST", "/api/v2/chat", "application/json", `{"agentId":"fam","message":"   "}`, false, 400, gateway.CodeValidation},
		{"bad user id", "POST", "/api/v2/chat", "application/json", `{"agentId":"fam","message":"hi","userId":"a b/c"}`, false, 400, gateway.CodeValidation},
		{"unknown agent", "POST", "/api/v2/chat", "application/json", `{"agentId":"nobody","message":"hi"}`, false, 404, gateway.CodeAgentNotFound},
		{"unknown session", "POST", "/api/v2/chat", "application/json", `{"agentId":"fam","message":"hi","sessionId":"ses_nope"}`, false, 404, gateway.CodeSessionNotFound},
		{"session of another user", "POST", "/api/v2/chat", "application/json", `{"agentId":"fam","message":"hi","userId":"eve","sessionId":"` + sid + `"}`, false, 404, gateway.CodeSessionNotFound},
		{"body over the limit", "POST", "/api/v2/chat", "application/json", big, false, 413, gateway.CodeBodyTooLarge},
		{"chunked body over the limit", "POST", "/api/v2/chat", "application/json", big, true, 413, gateway.CodeBodyTooLarge},
		{"multipart body", "POST", "/api/v2/chat", "multipart/form-data; boundary=x", `--x--`, false, 415, gateway.CodeValidation},
		{"stream malformed json", "POST", "/api/v2/chat/stream", "application/json", `{`, false, 400, gateway.CodeInvalidJSON},
		{"stream unknown agent", "POST", "/api/v2/chat/stream", "application/json", `{"agentId":"nobody","message":"hi"}`, false, 404, gateway.CodeAgentNotFound},
		{"stream body over the limit", "POST", "/api/v2/chat/stream", "application/json", big, true, 413, gateway.CodeBodyTooLarge},
		{"unknown route", "GET", "/api/v2/nothing-here", "", ``, false, 404, gateway.CodeNotFound},
		{"wrong method", "GET", "/api/v2/chat", "", ``, false, 405, gateway.CodeMethodNotAllowed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(tc.body)
			if tc.chunked {
				body = io.MultiReader(strings.NewReader(tc.body)) // unknown length: sent chunked
			}
			req, _ := http.NewRequest(tc.method, g.URL+tc.path, body)
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			resp, out := doJSON(t, req)
			if resp.StatusCode != tc.status || errCode(out) != tc.code {
				t.Fatalf("got %d %v, want %d %s", resp.StatusCode, out, tc.status, tc.code)
			}
			e := out["error"].(map[string]any)
			if e["message"] == "" || e["requestId"] == "" || e["requestId"] != resp.Header.Get("X-Request-Id") {
				t.Fatalf("envelope needs a message and the request id: %v", out)
			}
		})
	}
	// After all of that the server still answers.
	if resp, _ := postJSON(t, g.URL+"/api/v2/chat", `{"agentId":"fam","message":"hi"}`); resp.StatusCode != 200 {
		t.Fatalf("server unhealthy after bad input: %d", resp.StatusCode)
	}
}

func TestRequestDeadline(t *testing.T) {
	p := newScripted()
	g := startGateway(t, p, func(c *gateway.Config) { c.RequestTimeout = 200 * time.Millisecond })
	resp, out := postJSON(t, g.URL+"/api/v2/chat", `{"agentId":"fam","message":"take forever"}`)
	if resp.StatusCode != http.StatusGatewayTimeout || errCode(out) != gateway.CodeTimeout {
		t.Fatalf("got %d %v", resp.StatusCode, out)
	}
	within(t, p.cancelled, "the provider call to be cancelled")
}

func TestFallbackNamesTheProviderThatAnswered(t *testing.T) {
	for _, tc := range []struct {
		name    string
		primary llmtest.Reply
		hang    bool
	}{
		{name: "primary 500", primary: llmtest.Reply{Status: 500}},
		{name: "primary silent past the first-token timeout", hang: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			var openai *llmtest.Server
			if tc.hang {
				openai = llmtest.NewOpenAI(func(int) llmtest.Reply { <-release; return llmtest.Reply{Chunks: []string{"late"}} })
			} else {
				openai = llmtest.NewOpenAI(func(int) llmtest.Reply { return tc.primary })
			}
			defer openai.Close()
			defer close(release) // runs before Close, which waits for the hanging handler
			anthropic := llmtest.NewAnthropic(func(int) llmtest.Reply {
				return llmtest.Reply{Chunks: []string{"Hi ", "from ", "Claude."}, InputTokens: 12, OutputTokens: 4}
			})
			defer anthropic.Close()
			chain := llm.NewChain(llm.ChainConfig{FirstTokenTimeout: 300 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)},
				llm.NewOpenAI(llm.OpenAIConfig{APIKey: "sk-test", BaseURL: openai.URL + "/v1"}),
				llm.NewAnthropic(llm.AnthropicConfig{APIKey: "ak-test", BaseURL: anthropic.URL}))
			g := startGateway(t, chain)
			resp, out := postJSON(t, g.URL+"/api/v2/chat", `{"agentId":"fam","message":"Who are you?"}`)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d %v", resp.StatusCode, out)
			}
			meta := out["metadata"].(map[string]any)
			if out["content"] != "Hi from Claude." || meta["provider"] != "anthropic" || meta["model"] != "claude-haiku-4-5" {
				t.Fatalf("want Claude's answer named as anthropic, got %v", out)
			}
			if tokens := meta["tokens"].(map[string]any); tokens["input"] != 12.0 || tokens["output"] != 4.0 {
				t.Fatalf("tokens %v", tokens)
			}
			// A 500 is retried once before falling back; a silent provider is not retried.
			if n, want := len(openai.Requests()), map[bool]int{true: 1, false: 2}[tc.hang]; n != want {
				t.Fatalf("primary asked %d times, want %d", n, want)
			}
			got := anthropic.Requests()[0]
			if got.Header.Get("x-api-key") != "ak-test" || got.Body["stream"] != true {
				t.Fatalf("anthropic request %v %v", got.Header, got.Body)
			}
			msgs := got.Body["messages"].([]any)
			if last := msgs[len(msgs)-1].(map[string]any); last["role"] != "user" || last["content"] != "Who are you?" {
				t.Fatalf("anthropic messages %v", msgs)
			}
			// FAM marks its stable rules for Anthropic's prompt cache: the first system block.
			blocks, _ := got.Body["system"].([]any)
			if len(blocks) != 2 {
				t.Fatalf("want the system prompt as a cached prefix and the turn's context, got %v", got.Body["system"])
			}
			first := blocks[0].(map[string]any)
			if text, _ := first["text"].(string); !strings.Contains(text, "Business Rules") || first["cache_control"] == nil {
				t.Fatalf("FAM's rules should be the cached prefix: %v", first)
			}
		})
	}
}

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }
