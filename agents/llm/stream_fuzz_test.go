package llm

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
)

// The providers' streams are untrusted input too: a broken or hostile upstream (or a proxy in
// between) decides every byte. OpenAI's stream is read by openai-go's own SSE decoder
// (packages/ssestream), Anthropic's by readSSE (FuzzReadSSE); these targets drive each
// provider's whole Stream over fuzzed bodies, served from memory.

// bodyTransport answers every request with body as a 200 text/event-stream.
type bodyTransport []byte

func (b bodyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body.Close()
	}
	return &http.Response{
		StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:  http.Header{"Content-Type": {"text/event-stream; charset=utf-8"}},
		Body:    io.NopCloser(bytes.NewReader(b)),
		Request: req,
	}, nil
}

// checkStream consumes a provider's stream over body and checks the iterator's contract: an
// error, if any, is the last thing it yields and is an *Error of the provider; usage comes
// once, last, and only after complete; and a consumer that stops early is let go. It reports
// whether the stream ended in success.
func checkStream(t *testing.T, name string, p Provider) (ok bool) {
	t.Helper()
	req := Request{Messages: []Message{{Role: "user", Content: "hi"}}}
	var done, failed bool
	for c, err := range p.Stream(context.Background(), req) {
		if done || failed {
			t.Fatalf("yielded %+v, %v after the stream ended", c, err)
		}
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || pe.Provider != name {
				t.Fatalf("error %v (%T) is not an *Error of %s", err, err, name)
			}
			failed = true
			continue
		}
		if c.Usage != nil {
			done = true
		}
	}
	if !done && !failed {
		t.Fatal("stream ended with neither usage nor an error: a silent truncation")
	}
	// Stopping after the first chunk must not make the provider yield again (which would
	// panic in the range loop).
	for range p.Stream(context.Background(), req) {
		break
	}
	return done
}

// FuzzOpenAIStream: whatever the body, OpenAI.Stream ends in usage or an error, and ends in
// usage only when some chunk carried a finish reason (a cut-off body is an error, never a
// shorter reply passed on as complete).
func FuzzOpenAIStream(f *testing.F) {
	for _, seed := range []string{
		oaRole + oaText("Hello") + oaStop + oaUsage(10, 2, 3) + oaDone,
		oaRole + oaText("Hello") + oaUsage(10, 2, 3) + oaDone, // no finish reason
		oaRole + oaText("cut"),
		oaRole + oaToolDelta(`{"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":"{\"ci"}}`) +
			oaToolDelta(`{"index":0,"function":{"arguments":"ty\":\"Oslo\"}"}}`) + oaDelta(`{}`, `"tool_calls"`) + oaDone,
		oaToolDelta(`{"index":-1,"function":{"name":"x"}}`) + oaToolDelta(`{"index":99999999999,"function":{"name":"x"}}`),
		`data: {"error":{"message":"overloaded","type":"server_error","code":null}}` + "\n\n",
		"event: error\ndata: {\"message\":\"boom\"}\n\n",
		`data: {"choices":[{"index":0,"delta":{"content":7},"finish_reason":5}]}` + "\n\n" + oaDone,
		"data: [DONE]\n\n",
		": keep-alive\r\n\r\ndata: {}\r\n\r\n",
		"data: {\"choices\":[{\"delta\":{\"content\":\"a\"},\"finish_reason\":\"stop\"}]}\n",
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p := NewOpenAI(OpenAIConfig{BaseURL: "http://upstream.invalid/v1", HTTPClient: &http.Client{Transport: bodyTransport(body)}})
		if checkStream(t, "openai", p) && !bytes.Contains(body, []byte("finish_reason")) {
			t.Fatalf("a body without a finish reason ended in success: %q", body)
		}
	})
}

// FuzzAnthropicStream: the same for Anthropic, whose reply is complete only at message_stop.
func FuzzAnthropicStream(f *testing.F) {
	for _, seed := range []string{
		anStart(25, 0, 0) + anBlockStart + anPing + anText("Hi") + anBlockStop + anMessageDelta(2) + anStop,
		anStart(25, 0, 0) + anBlockStart + anText("cut"),
		anEvent("error", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`),
		anEvent("message_start", `{"type":"message_start","message":{"usage":{"input_tokens":-5}}}`) + anStop,
		anEvent("content_block_delta", `{"type":"content_block_delta","delta":{"type":"text_delta","text":7}}`),
		"event: message_stop\ndata: {\"type\":\"message_stop\"}",
		"data: {\"type\":\"message_stop\"}\r\n\r\n",
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p := NewAnthropic(AnthropicConfig{APIKey: "k", BaseURL: "http://upstream.invalid", HTTPClient: &http.Client{Transport: bodyTransport(body)}})
		if checkStream(t, "anthropic", p) && !bytes.Contains(body, []byte("message_stop")) {
			t.Fatalf("a body without message_stop ended in success: %q", body)
		}
	})
}
