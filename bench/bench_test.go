package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/dartmouth-gw/dartmouth/agents/llm"
	"go.uber.org/goleak"
)

// These tests check the bench's own parts (parsers, the fake provider's wire format, the raw
// WebSocket client, the table's arithmetic) quickly; the bench itself runs with `make bench`.

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseBenchOutput(t *testing.T) {
	out := []byte(`goos: linux
goarch: amd64
pkg: github.com/dartmouth-gw/dartmouth/voice
cpu: AMD EPYC
BenchmarkTTSCacheHit-2   	   20000	     51234 ns/op	         0.8000 hit-rate	     45000 ns/first-byte	     41000 ns/first-byte-p50	    190000 ns/first-byte-p99
BenchmarkMP3DecodeResample16k 	      57	  20828069 ns/op	   1.54 MB/s	        96.02 x-realtime
--- FAIL: BenchmarkPipelineEndOfSpeechToFirstAudio-2
    pipeline_test.go:1320: median end of speech to first audio 16ms, over the 15 ms target
BenchmarkPipelineEndOfSpeechToFirstAudio-2   	     100	  16000000 ns/op	        16.10 median-ms	        22.50 p99-ms
BenchmarkBroken-2  	 garbage line
FAIL
`)
	got := parseBenchOutput(out)
	want := []benchLine{
		{Name: "BenchmarkTTSCacheHit", Iterations: 20000, Metrics: map[string]float64{"ns/op": 51234, "hit-rate": 0.8, "ns/first-byte": 45000, "ns/first-byte-p50": 41000, "ns/first-byte-p99": 190000}},
		{Name: "BenchmarkMP3DecodeResample16k", Iterations: 57, Metrics: map[string]float64{"ns/op": 20828069, "MB/s": 1.54, "x-realtime": 96.02}},
		{Name: "BenchmarkPipelineEndOfSpeechToFirstAudio", Iterations: 100, Metrics: map[string]float64{"ns/op": 16000000, "median-ms": 16.1, "p99-ms": 22.5}},
	}
	if len(got) != len(want) {
		t.Fatalf("parsed %d lines, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i].Name != want[i].Name || got[i].Iterations != want[i].Iterations || len(got[i].Metrics) != len(want[i].Metrics) {
			t.Errorf("line %d = %+v, want %+v", i, got[i], want[i])
			continue
		}
		for unit, v := range want[i].Metrics {
			if got[i].Metrics[unit] != v {
				t.Errorf("line %d %s = %v, want %v", i, unit, got[i].Metrics[unit], v)
			}
		}
	}
}

func TestFailureReason(t *testing.T) {
	out := []byte("goos: linux\n--- FAIL: BenchmarkVoiceWSSessionsAtTarget\n    loadbench_test.go:34: internal_error: internal error\nFAIL\n")
	if got := failureReason(out); got != " (loadbench_test.go:34: internal_error: internal error)" {
		t.Errorf("failureReason = %q", got)
	}
	if got := failureReason([]byte("FAIL\n")); got != "" {
		t.Errorf("failureReason without a message = %q", got)
	}
}

func TestTrimCPUSuffix(t *testing.T) {
	for in, want := range map[string]string{
		"BenchmarkX-2":        "BenchmarkX",
		"BenchmarkX":          "BenchmarkX",
		"BenchmarkVoice-WS-8": "BenchmarkVoice-WS",
		"BenchmarkVoice-WS":   "BenchmarkVoice-WS",
	} {
		if got := trimCPUSuffix(in); got != want {
			t.Errorf("trimCPUSuffix(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestQuantileAndMedian(t *testing.T) {
	sorted := make([]float64, 100)
	for i := range sorted {
		sorted[i] = float64(i + 1)
	}
	for _, tc := range []struct {
		q, want float64
	}{{.5, 50}, {.99, 99}, {1, 100}, {0, 1}} {
		if got := quantile(sorted, tc.q); got != tc.want {
			t.Errorf("quantile(1..100, %v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if !math.IsNaN(quantile(nil, .5)) {
		t.Error("quantile of nothing is not NaN")
	}
	if got := median([]float64{3, math.NaN(), 1, 2}); got != 2 {
		t.Errorf("median skipping NaN = %v, want 2", got)
	}
	if got := median([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("median of an even count = %v, want 2.5", got)
	}
}

func TestFigureSettle(t *testing.T) {
	relay := func(m, p99 float64) bool { return m < 0.3 && p99 < 2 }
	tests := []struct {
		name   string
		runs   [][2]float64 // median, p99; NaN median marks a failed run
		check  func(m, p99 float64) bool
		result string
		median float64
	}{
		{"median of runs passes", [][2]float64{{0.2, 1}, {0.9, 5}, {0.25, 1.5}}, relay, "PASS", 0.25},
		{"p99 misses", [][2]float64{{0.2, 3}, {0.1, 2.5}, {0.2, 1}}, relay, "FAIL", 0.2},
		{"failed runs are left out", [][2]float64{{math.NaN(), 0}, {0.1, 1}}, relay, "PASS", 0.1},
		{"every run failed", [][2]float64{{math.NaN(), 0}}, relay, "ERROR", math.NaN()},
		{"no target", [][2]float64{{53.2, math.NaN()}}, nil, "report", 53.2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &figure{Unit: "ms", check: tt.check}
			for _, r := range tt.runs {
				if math.IsNaN(r[0]) {
					f.fail(io.ErrUnexpectedEOF)
					continue
				}
				f.add(r[0], r[1])
			}
			f.settle()
			if f.Result != tt.result {
				t.Errorf("result %s, want %s", f.Result, tt.result)
			}
			if got := float64(f.Median); got != tt.median && !(math.IsNaN(got) && math.IsNaN(tt.median)) {
				t.Errorf("median %v, want %v", got, tt.median)
			}
			data, err := json.Marshal(f)
			if err != nil {
				t.Fatalf("a figure with NaN values must still be JSON: %v", err)
			}
			if math.IsNaN(tt.median) && !bytes.Contains(data, []byte(`"median":null`)) {
				t.Errorf("NaN median not stored as null: %s", data)
			}
		})
	}
}

func TestPrintTable(t *testing.T) {
	f := &figure{Name: "SSE token relay throughput", Unit: "tokens/s", Target: ">= 200,000 tokens/s", check: func(m, _ float64) bool { return m >= 200000 }}
	f.add(1234567, math.NaN())
	f.note("the fake alone streams faster")
	f.settle()
	var buf bytes.Buffer
	printTable(&buf, []*figure{f}, true)
	for _, want := range []string{"| figure | median | p99 | target | result |", "| SSE token relay throughput | 1,234,567 tokens/s | — | >= 200,000 tokens/s | PASS |", "- SSE token relay throughput: the fake alone streams faster"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestParseFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"-quick", "-ws-sessions", "5000"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Runs != 1 || cfg.IdleSessions != 5000 || cfg.RelayRequests != 400 {
		t.Errorf("-quick with -ws-sessions 5000 gave %+v: want one run, the explicit 5000 sessions, 400 requests", cfg)
	}
	cfg, err = parseFlags(nil, io.Discard)
	if err != nil || cfg.Runs != 3 || cfg.IdleSessions != 50000 || cfg.RelayConcurrency != 8 || cfg.VoiceSessions != 500 {
		t.Errorf("defaults %+v (%v): want 3 runs, 50,000 idle sessions, concurrency 8, 500 voice sessions", cfg, err)
	}
	for _, bad := range [][]string{{"-runs", "0"}, {"-ws-sessions", "10"}, {"-relay-concurrency", "-1"}} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
}

func TestParseOpenFileLimit(t *testing.T) {
	limits := []byte("Limit                     Soft Limit           Hard Limit           Units     \n" +
		"Max stack size            8388608              unlimited            bytes     \n" +
		"Max open files            19999                20000                files     \n")
	if n, err := parseOpenFileLimit(limits); err != nil || n != 19999 {
		t.Errorf("parseOpenFileLimit = %d, %v; want the soft limit 19999", n, err)
	}
	if _, err := parseOpenFileLimit([]byte("Max processes 10 10 processes\n")); err == nil {
		t.Error("limits without open files accepted")
	}
}

func TestParseGauges(t *testing.T) {
	text := "# HELP go_goroutines Number of goroutines.\n# TYPE go_goroutines gauge\ngo_goroutines 42\n" +
		"go_memstats_heap_inuse_bytes 1.048576e+06\ngo_gc_duration_seconds{quantile=\"0.5\"} 1e-05\n"
	got, err := parseGauges(strings.NewReader(text), "go_goroutines", "go_memstats_heap_inuse_bytes")
	if err != nil || got["go_goroutines"] != 42 || got["go_memstats_heap_inuse_bytes"] != 1048576 {
		t.Errorf("parseGauges = %v, %v", got, err)
	}
	if _, err := parseGauges(strings.NewReader(text), "go_memstats_stack_inuse_bytes"); err == nil {
		t.Error("a missing gauge was not reported")
	}
}

// TestFakeProviderSpeaksChatCompletions drives the fake with the gateway's own OpenAI provider
// (the official SDK underneath), so the relay figures are of a stream the gateway really
// parses, and checks the non-streamed reply and the direct calls the bench times.
func TestFakeProviderSpeaksChatCompletions(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fake, err := startFakeProvider(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()

	p := llm.NewOpenAI(llm.OpenAIConfig{BaseURL: fake.URL, Model: sseModelPre + "1000"})
	var text strings.Builder
	var usage *llm.Usage
	for chunk, err := range p.Stream(ctx, llm.Request{Messages: []llm.Message{{Role: "user", Content: "hi"}}}) {
		if err != nil {
			t.Fatalf("the SDK refused the fake's stream: %v", err)
		}
		text.WriteString(chunk.Text)
		if chunk.Usage != nil {
			usage = chunk.Usage
		}
	}
	if text.String() != strings.Repeat(token, 1000) {
		t.Errorf("streamed %d bytes, want 1000 tokens of %q", text.Len(), token)
	}
	if usage == nil || usage.OutputTokens != 1000 {
		t.Errorf("usage %+v, want 1000 output tokens", usage)
	}

	client := newLoopbackClient(1)
	defer client.CloseIdleConnections()
	for _, stream := range []bool{false, true} {
		body := `{"model":"bench-relay","stream":` + map[bool]string{false: "false", true: "true"}[stream] + `,"messages":[{"role":"user","content":"x"}]}`
		if _, err := timeCompletion(ctx, client, fake.URL+"/chat/completions", body, stream); err != nil {
			t.Errorf("stream=%t: %v", stream, err)
		}
	}
	rate, err := measureSSE(ctx, client, fake.URL+"/chat/completions", 5000)
	if err != nil || rate <= 0 {
		t.Errorf("measureSSE against the fake: %v tokens/s, %v", rate, err)
	}

	resp, err := client.Post(fake.URL+"/chat/completions", "application/json", strings.NewReader(`{"model":"bench-sse-x","messages":[{"role":"user","content":"x"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("a malformed bench model got %d, want 404", resp.StatusCode)
	}
}

func TestCountStreamedTokens(t *testing.T) {
	// A relay may regroup tokens into fewer frames; every token is counted.
	stream := "data: {\"choices\":[{\"delta\":{\"content\":\" blip blip\"}}],\"usage\":{\"completion_tokens\":3}}\n\n" +
		"data: {\"choices\":[{\"delta\":{\"content\":\" blip\"}}]}\n\ndata: [DONE]\n\n"
	n, done, err := countStreamedTokens(strings.NewReader(stream))
	if err != nil || n != 3 || !done {
		t.Errorf("countStreamedTokens = %d, %t, %v; want 3, true", n, done, err)
	}
	_, _, err = countStreamedTokens(strings.NewReader("data: {\"error\":{\"message\":\"upstream cut\"}}\n\n"))
	if err == nil {
		t.Error("an error frame in the stream was not reported")
	}
}

// TestIdleSessionClient checks the raw client against a real WebSocket server (coder/websocket,
// as the gateway uses): the handshake, the masked session.start frame, the reply, and the
// source address it was asked to use.
func TestIdleSessionClient(t *testing.T) {
	got := make(chan string, 1)
	remote := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v2/ws" {
			http.NotFound(w, r)
			return
		}
		remote <- r.RemoteAddr
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer conn.CloseNow()
		typ, data, err := conn.Read(r.Context())
		if err != nil || typ != websocket.MessageText {
			got <- "bad frame"
			return
		}
		got <- string(data)
		conn.Write(r.Context(), websocket.MessageText, []byte(`{"type":"session.started","sessionId":"ses_1"}`))
		conn.Read(r.Context()) // until the client closes
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := dialIdleSession(ctx, addr, sourceAddr(sessionsPerSourceAddr+1), "idle-7")
	if err != nil {
		t.Fatal(err)
	}
	if frame := <-got; frame != `{"type":"session.start","id":"s","agentId":"fam","userId":"idle-7"}` {
		t.Errorf("server read %q", frame)
	}
	if host, _, _ := net.SplitHostPort(<-remote); host != "127.0.0.3" {
		t.Errorf("connected from %s, want the second source address 127.0.0.3", host)
	}
	c.Close()
}

func TestMaskedTextFrameLengths(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		payload := bytes.Repeat([]byte("a"), n)
		frame := maskedTextFrame(payload)
		// Read it back as a server would: unmask with the key after the length.
		br := bufio.NewReader(bytes.NewReader(frame))
		head := make([]byte, 2)
		io.ReadFull(br, head)
		if head[0] != 0x81 || head[1]&0x80 == 0 {
			t.Fatalf("n=%d: header %x, want a final masked text frame", n, head)
		}
		length := int(head[1] & 0x7f)
		switch length {
		case 126:
			ext := make([]byte, 2)
			io.ReadFull(br, ext)
			length = int(ext[0])<<8 | int(ext[1])
		case 127:
			ext := make([]byte, 8)
			io.ReadFull(br, ext)
			length = 0
			for _, b := range ext {
				length = length<<8 | int(b)
			}
		}
		if length != n {
			t.Errorf("n=%d: encoded length %d", n, length)
		}
		mask := make([]byte, 4)
		io.ReadFull(br, mask)
		body, _ := io.ReadAll(br)
		for i := range body {
			body[i] ^= mask[i%4]
		}
		if !bytes.Equal(body, payload) {
			t.Errorf("n=%d: payload does not unmask to the original", n)
		}
	}
}
