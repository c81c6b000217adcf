package llm

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"
)

// wire is one provider with its streaming format, for the behaviour all providers share.
type wire struct {
	name     string
	provider func(baseURL string, client *http.Client) Provider
	opening  []string // what the API streams before the first token
	token    func(text string) string
}

var wires = []wire{
	{
		name: "openai",
		provider: func(baseURL string, client *http.Client) Provider {
			return NewOpenAI(OpenAIConfig{APIKey: "sk-test", BaseURL: baseURL + "/v1", HTTPClient: client})
		},
		opening: []string{oaRole},
		token:   oaText,
	},
	{
		name: "anthropic",
		provider: func(baseURL string, client *http.Client) Provider {
			return NewAnthropic(AnthropicConfig{APIKey: "ak-test", BaseURL: baseURL, HTTPClient: client})
		},
		opening: []string{anStart(10, 0, 0), anBlockStart, anPing},
		token:   anText,
	},
}

// quietChain is a chain that logs nowhere.
func quietChain(cfg ChainConfig, providers ...Provider) *Chain {
	cfg.Logger = slog.New(slog.DiscardHandler)
	return NewChain(cfg, providers...)
}

func TestProviderNames(t *testing.T) {
	for _, tc := range []struct {
		p    Provider
		want string
	}{
		{NewOpenAI(OpenAIConfig{}), "openai"},
		{NewOpenAI(OpenAIConfig{Name: "vllm"}), "vllm"},
		{NewAnthropic(AnthropicConfig{}), "anthropic"},
		{NewAnthropic(AnthropicConfig{Name: "claude-eu"}), "claude-eu"},
		{NewChain(ChainConfig{}), "chain"},
	} {
		if got := tc.p.Name(); got != tc.want {
			t.Errorf("%T named %q, want %q", tc.p, got, tc.want)
		}
	}
}

// A caller that stops reading must stop the request upstream, directly or through a chain.
func TestProvidersStopWhenTheCallerStops(t *testing.T) {
	for _, w := range wires {
		for _, chained := range []bool{false, true} {
			name := w.name
			if chained {
				name += " in a chain"
			}
			t.Run(name, func(t *testing.T) {
				handler, gone := holdOpen(slices.Concat(w.opening, []string{w.token("first")})...)
				api := startAPI(t, handler)
				p := w.provider(api.URL, api.Client())
				if chained {
					p = quietChain(ChainConfig{}, p)
				}
				var got []Chunk
				for c, err := range p.Stream(context.Background(), userTurn) {
					if err != nil {
						t.Fatalf("unexpected error %v", err)
					}
					got = append(got, c)
					break
				}
				if len(got) != 1 || got[0].Text != "first" {
					t.Errorf("got %+v, want the first token", got)
				}
				waitFor(t, gone, "the API to see its client go away")
			})
		}
	}
}

func TestProvidersStopWhenTheContextEnds(t *testing.T) {
	for _, w := range wires {
		t.Run(w.name, func(t *testing.T) {
			handler, gone := holdOpen(slices.Concat(w.opening, []string{w.token("first")})...)
			api := startAPI(t, handler)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var got []string
			var err error
			for c, e := range w.provider(api.URL, api.Client()).Stream(ctx, userTurn) {
				if e != nil {
					err = e
					break
				}
				got = append(got, c.Text)
				cancel()
			}
			if len(got) != 1 || got[0] != "first" {
				t.Errorf("got %q, want the first token only", got)
			}
			if pe := asProviderError(t, err); !errors.Is(pe, context.Canceled) {
				t.Errorf("got %v, want one wrapping context.Canceled", pe)
			}
			waitFor(t, gone, "the API to see its client go away")
		})
	}
}

func TestProvidersReportTransportErrors(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	for _, w := range wires {
		t.Run(w.name, func(t *testing.T) {
			chunks, err := collect(t, w.provider(closed.URL, closed.Client()).Stream(context.Background(), userTurn))
			if len(chunks) != 0 {
				t.Errorf("chunks from nowhere: %+v", chunks)
			}
			pe := asProviderError(t, err)
			if pe.Provider != w.name || pe.StatusCode != 0 || pe.Err == nil || !pe.Retryable() {
				t.Errorf("got %#v, want a retryable transport error with its cause", pe)
			}
		})
	}
}

// httpErrorCase is an API refusing a request with an error status.
type httpErrorCase struct {
	name       string
	handler    http.HandlerFunc
	status     int
	message    string
	retryAfter time.Duration
	retryable  bool
}

// checkHTTPErrors asserts that each refusal comes out as the provider's *Error, alone, after a
// single request: retries belong to the chain, not to the provider.
func checkHTTPErrors(t *testing.T, name string, provider func(*fakeAPI) Provider, cases []httpErrorCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			api := startAPI(t, tc.handler)
			chunks, err := collect(t, provider(api).Stream(context.Background(), userTurn))
			if len(chunks) != 0 {
				t.Errorf("chunks before the error: %+v", chunks)
			}
			pe := asProviderError(t, err)
			if pe.Provider != name || pe.StatusCode != tc.status || pe.Message != tc.message || pe.RetryAfter != tc.retryAfter {
				t.Errorf("got %#v, want %s status %d message %q retry after %s", pe, name, tc.status, tc.message, tc.retryAfter)
			}
			if pe.Retryable() != tc.retryable {
				t.Errorf("Retryable() = %v, want %v", pe.Retryable(), tc.retryable)
			}
			api.onlyRequest(t)
		})
	}
}
