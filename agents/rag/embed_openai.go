package rag

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// OpenAIEmbedderConfig configures the OpenAI embedder; any server speaking the same
// /v1/embeddings API (vLLM, llama.cpp, Ollama) works through BaseURL and Model.
type OpenAIEmbedderConfig struct {
	// APIKey is sent as a Bearer token. May be empty for local servers.
	APIKey string
	// BaseURL of the API, including the version path. Default "https://api.openai.com/v1".
	BaseURL string
	// Model is the embedding model. Default "text-embedding-3-small".
	Model string
	// Dimensions asks text-embedding-3 models for shorter vectors. Default 0: the model's own
	// size (1536 for text-embedding-3-small).
	Dimensions int
	// MaxRetries is how often the SDK retries a failed call (429, 5xx) with backoff. Default
	// 2; negative means none.
	MaxRetries int
	// HTTPClient carries the requests. Default http.DefaultClient.
	HTTPClient *http.Client
}

// OpenAIEmbedder embeds texts with OpenAI's Embeddings API through the official SDK.
type OpenAIEmbedder struct {
	cfg    OpenAIEmbedderConfig
	client openai.Client
}

var _ Embedder = (*OpenAIEmbedder)(nil)

// NewOpenAIEmbedder builds the embedder.
func NewOpenAIEmbedder(cfg OpenAIEmbedderConfig) *OpenAIEmbedder {
	if cfg.BaseURL == "" {
		cfg.BaseURL = "https://api.openai.com/v1"
	}
	if cfg.Model == "" {
		cfg.Model = openai.EmbeddingModelTextEmbedding3Small
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = 2
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	key := cfg.APIKey
	if key == "" {
		key = "unused"
	}
	opts := []option.RequestOption{
		option.WithBaseURL(strings.TrimSuffix(cfg.BaseURL, "/") + "/"),
		option.WithHTTPClient(cfg.HTTPClient),
		option.WithMaxRetries(max(cfg.MaxRetries, 0)),
		option.WithAPIKey(key),
	}
	return &OpenAIEmbedder{cfg: cfg, client: openai.NewClient(opts...)}
}

// Model implements Embedder: the model name, with the size when one was asked for.
func (e *OpenAIEmbedder) Model() string {
	if e.cfg.Dimensions > 0 {
		return fmt.Sprintf("%s@%d", e.cfg.Model, e.cfg.Dimensions)
	}
	return e.cfg.Model
}

// DefaultThreshold: related passages score about 0.3 and up with text-embedding-3 models,
// unrelated ones about 0.1.
func (e *OpenAIEmbedder) DefaultThreshold() float64 { return 0.3 }

// Embed implements Embedder with one API call for all the texts; Index sends them in
// batches.
func (e *OpenAIEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if len(texts) == 0 {
		return nil, nil
	}
	for i, t := range texts {
		if strings.TrimSpace(t) == "" {
			return nil, fmt.Errorf("openai embeddings: text %d is empty", i)
		}
	}
	params := openai.EmbeddingNewParams{
		Model:          e.cfg.Model,
		Input:          openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: texts},
		EncodingFormat: openai.EmbeddingNewParamsEncodingFormatFloat,
	}
	if e.cfg.Dimensions > 0 {
		params.Dimensions = openai.Int(int64(e.cfg.Dimensions))
	}
	resp, err := e.client.Embeddings.New(ctx, params)
	if err != nil {
		var apiErr *openai.Error
		if errors.As(err, &apiErr) && apiErr.Message != "" {
			return nil, fmt.Errorf("openai embeddings: %s: %w", apiErr.Message, err)
		}
		return nil, fmt.Errorf("openai embeddings: %w", err)
	}
	if len(resp.Data) != len(texts) {
		return nil, fmt.Errorf("openai embeddings: %d vectors for %d texts", len(resp.Data), len(texts))
	}
	out := make([][]float32, len(texts))
	for _, d := range resp.Data {
		if d.Index < 0 || int(d.Index) >= len(texts) || out[d.Index] != nil {
			return nil, fmt.Errorf("openai embeddings: bad or repeated index %d", d.Index)
		}
		if len(d.Embedding) == 0 {
			return nil, fmt.Errorf("openai embeddings: empty vector at index %d", d.Index)
		}
		v := make([]float32, len(d.Embedding))
		for i, x := range d.Embedding {
			v[i] = float32(x)
		}
		out[d.Index] = v
	}
	return out, nil
}
