package agents

import (
	"context"
	"iter"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents/llm"
)

// turnProvider is the LLM an agent sees during one turn: the response cache in front of the
// provider chain. The cache lifetime depends on the intent, known only once the agent has
// replied, and the stream is lazy, so ttl is set before the first chunk is read.
type turnProvider struct {
	inner llm.Provider
	cache *ResponseCache
	ttl   time.Duration
}

func (p *turnProvider) Name() string { return p.inner.Name() }

// Unwrap exposes the provider behind the cache, so agents can tell the offline engine apart.
func (p *turnProvider) Unwrap() llm.Provider { return p.inner }

func (p *turnProvider) Stream(ctx context.Context, req llm.Request) iter.Seq2[llm.Chunk, error] {
	return func(yield func(llm.Chunk, error) bool) {
		// A tool loop's replies depend on what the tools did, and the cache keeps only text:
		// replaying one would drop the tool calls.
		if p.cache == nil || llm.UsesTools(req) {
			for c, err := range p.inner.Stream(ctx, req) {
				if !yield(c, err) {
					return
				}
			}
			return
		}
		for c, err := range p.cache.Stream(ctx, p.inner, req, p.ttl) {
			if !yield(c, err) {
				return
			}
		}
	}
}

// savingProvider applies cost-saving mode to every request: the cheaper model and shorter
// replies.
type savingProvider struct {
	inner     llm.Provider
	model     string
	maxTokens int
}

func (p savingProvider) Name() string { return p.inner.Name() }

// Unwrap exposes the provider behind cost-saving mode.
func (p savingProvider) Unwrap() llm.Provider { return p.inner }

func (p savingProvider) Stream(ctx context.Context, req llm.Request) iter.Seq2[llm.Chunk, error] {
	if p.model != "" {
		req.Model = p.model
	}
	if req.MaxTokens == 0 || req.MaxTokens > p.maxTokens {
		req.MaxTokens = p.maxTokens
	}
	return p.inner.Stream(ctx, req)
}
