package rag

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fakeOpenAI speaks the /v1/embeddings wire format and records the requests.
type fakeOpenAI struct {
	mu       sync.Mutex
	requests []map[string]any
	headers  []http.Header
	paths    []string
	// status, when set, is returned with an OpenAI error body instead of vectors.
	status int
	// base64 answers with base64 vectors, as OpenAI does when asked for them.
	base64 bool
	// reversed returns the data out of order, which the API allows (each item has an index).
	reversed bool
}

func (f *fakeOpenAI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	f.mu.Lock()
	f.requests = append(f.requests, body)
	f.headers = append(f.headers, r.Header.Clone())
	f.paths = append(f.paths, r.Method+" "+r.URL.Path)
	status, b64, reversed := f.status, f.base64, f.reversed
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if status != 0 {
		w.WriteHeader(status)
		fmt.Fprint(w, `{"error":{"message":"Incorrect API key provided: sk-bad.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`)
		return
	}
	inputs, _ := body["input"].([]any)
	type item struct {
		Object    string `json:"object"`
		Index     int    `json:"index"`
		Embedding any    `json:"embedding"`
	}
	data := make([]item, len(inputs))
	for i, in := range inputs {
		// Vector: [len(text), index, 0.5]
		vec := []float32{float32(len(in.(string))), float32(i), 0.5}
		var emb any = vec
		if b64 {
			buf := make([]byte, 4*len(vec))
			for j, x := range vec {
				binary.LittleEndian.PutUint32(buf[4*j:], math.Float32bits(x))
			}
			emb = base64.StdEncoding.EncodeToString(buf)
		}
		data[i] = item{Object: "embedding", Index: i, Embedding: emb}
	}
	if reversed {
		for i, j := 0, len(data)-1; i < j; i, j = i+1, j-1 {
			data[i], data[j] = data[j], data[i]
		}
	}
	_ = json.NewEncoder(w).Encode(map[string]any{
		"object": "list", "data": data, "model": body["model"],
		"usage": map[string]any{"prompt_tokens": 5, "total_tokens": 5},
	})
}

func TestOpenAIEmbedderSpeaksTheEmbeddingsAPI(t *testing.T) {
	fake := &fakeOpenAI{reversed: true}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	e := NewOpenAIEmbedder(OpenAIEmbedderConfig{APIKey: "sk-test", BaseURL: srv.URL + "/v1", HTTPClient: srv.Client()})
	if e.Model() != "text-embedding-3-small" || e.DefaultThreshold() != 0.3 {
		t.Fatalf("defaults: %s %v", e.Model(), e.DefaultThreshold())
	}
	vecs, err := e.Embed(t.Context(), []string{"hello", "refund policy"})
	if err != nil {
		t.Fatal(err)
	}
	// Each vector lands at its input's position, whatever order the data came in.
	if len(vecs) != 2 || vecs[0][0] != 5 || vecs[0][1] != 0 || vecs[1][0] != 13 || vecs[1][1] != 1 || vecs[1][2] != 0.5 {
		t.Fatalf("vectors %v", vecs)
	}
	if len(fake.paths) != 1 || fake.paths[0] != "POST /v1/embeddings" {
		t.Fatalf("requests %v", fake.paths)
	}
	if got := fake.headers[0].Get("Authorization"); got != "Bearer sk-test" {
		t.Fatalf("Authorization %q", got)
	}
	if ct := fake.headers[0].Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q", ct)
	}
	body := fake.requests[0]
	input, _ := body["input"].([]any)
	if body["model"] != "text-embedding-3-small" || body["encoding_format"] != "float" || len(input) != 2 || input[0] != "hello" || input[1] != "refund policy" {
		t.Fatalf("request body %v", body)
	}
	if _, ok := body["dimensions"]; ok {
		t.Fatalf("dimensions sent without being asked for: %v", body)
	}
}

func TestOpenAIEmbedderOptionsAndBase64(t *testing.T) {
	fake := &fakeOpenAI{base64: true}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	e := NewOpenAIEmbedder(OpenAIEmbedderConfig{BaseURL: srv.URL + "/v1/", Model: "nomic-embed-text", Dimensions: 256, HTTPClient: srv.Client()})
	if e.Model() != "nomic-embed-text@256" {
		t.Fatalf("model %q", e.Model())
	}
	vecs, err := e.Embed(t.Context(), []string{"abc"})
	if err != nil {
		t.Fatal(err)
	}
	if len(vecs) != 1 || vecs[0][0] != 3 || vecs[0][2] != 0.5 {
		t.Fatalf("vectors %v", vecs)
	}
	body := fake.requests[0]
	if body["model"] != "nomic-embed-text" || body["dimensions"] != float64(256) {
		t.Fatalf("request body %v", body)
	}
	if fake.paths[0] != "POST /v1/embeddings" {
		t.Fatalf("path %v (a trailing slash on the base URL must not double)", fake.paths)
	}
}

func TestOpenAIEmbedderErrors(t *testing.T) {
	fake := &fakeOpenAI{status: http.StatusUnauthorized}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	e := NewOpenAIEmbedder(OpenAIEmbedderConfig{APIKey: "sk-bad", BaseURL: srv.URL + "/v1", HTTPClient: srv.Client(), MaxRetries: -1})
	_, err := e.Embed(t.Context(), []string{"x"})
	if err == nil || !strings.Contains(err.Error(), "Incorrect API key") || !strings.Contains(err.Error(), "401") {
		t.Fatalf("want the API's message and status, got %v", err)
	}
	if len(fake.requests) != 1 {
		t.Fatalf("%d requests with retries off", len(fake.requests))
	}
	if _, err := e.Embed(t.Context(), []string{"ok", " "}); err == nil {
		t.Fatal("an empty text must be refused before calling the API")
	}
	if vecs, err := e.Embed(t.Context(), nil); err != nil || vecs != nil {
		t.Fatalf("no texts: %v %v", vecs, err)
	}
	if len(fake.requests) != 1 {
		t.Fatal("refused input reached the API")
	}
}

// Index over the OpenAI embedder: ingest embeds each chunk once, in one batch; the second
// ingest of the same document makes no call at all.
func TestIndexWithOpenAIEmbedderCachesEmbeddings(t *testing.T) {
	fake := &fakeOpenAI{}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	e := NewOpenAIEmbedder(OpenAIEmbedderConfig{APIKey: "sk-test", BaseURL: srv.URL + "/v1", HTTPClient: srv.Client()})
	ix := newIndex(t, Config{Store: openStore(t), Embedder: e, Chunking: ChunkConfig{MinTokens: 1}})
	doc := Document{Name: "a.md", Content: "## One\nFirst.\n## Two\nSecond."}
	if res, err := ix.Ingest(t.Context(), DefaultKB, doc); err != nil || res.Embedded != 2 {
		t.Fatalf("first: %+v %v", res, err)
	}
	if len(fake.requests) != 1 || len(fake.requests[0]["input"].([]any)) != 2 {
		t.Fatalf("want one batched request, got %v", fake.requests)
	}
	if res, err := ix.Ingest(t.Context(), DefaultKB, doc); err != nil || !res.Unchanged {
		t.Fatalf("second: %+v %v", res, err)
	}
	if len(fake.requests) != 1 {
		t.Fatalf("re-ingest called the API: %d requests", len(fake.requests))
	}
}
