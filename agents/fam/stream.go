package fam

import (
	"context"
	"iter"

	"github.com/dartmouth-gw/dartmouth/agents/llm"
	"github.com/dartmouth-gw/dartmouth/agents/offline"
)

// ownReply streams text FAM wrote itself, sentence by sentence, then a zero usage: no model
// was asked, so the turn costs nothing.
func ownReply(ctx context.Context, text string) iter.Seq2[llm.Chunk, error] {
	return ownReplyAs(ctx, text, RulesModel)
}

// ownReplyAs is ownReply under another model name (KnowledgeModel for quoted passages).
func ownReplyAs(ctx context.Context, text, model string) iter.Seq2[llm.Chunk, error] {
	return func(yield func(llm.Chunk, error) bool) {
		for _, piece := range sentences(text) {
			if err := ctx.Err(); err != nil {
				yield(llm.Chunk{}, err)
				return
			}
			if !yield(llm.Chunk{Text: piece, Provider: ID, Model: model}, nil) {
				return
			}
		}
		yield(llm.Chunk{Provider: ID, Model: model, Usage: &llm.Usage{}}, nil)
	}
}

// sentences splits text after each sentence's trailing space, so joined they give text back.
func sentences(text string) []string {
	var out []string
	for text != "" {
		loc := sentenceEnd.FindStringIndex(text)
		if loc == nil || loc[1] >= len(text) {
			out = append(out, text)
			break
		}
		out = append(out, text[:loc[1]])
		text = text[loc[1]:]
	}
	return out
}

// prefixed streams FAM's own opening, then the provider's reply.
func prefixed(ctx context.Context, prefix string, rest iter.Seq2[llm.Chunk, error]) iter.Seq2[llm.Chunk, error] {
	if prefix == "" {
		return rest
	}
	return func(yield func(llm.Chunk, error) bool) {
		if err := ctx.Err(); err != nil {
			yield(llm.Chunk{}, err)
			return
		}
		if !yield(llm.Chunk{Text: prefix}, nil) {
			return
		}
		for c, err := range rest {
			if !yield(c, err) || err != nil {
				return
			}
		}
	}
}

// unlessOffline streams primary, unless its first chunk shows it comes from the offline
// engine: then FAM's own reply replaces it, since the offline engine knows nothing of the
// conversation. This is how FAM notices, through wrappers it cannot see into (the response
// cache, a provider chain falling back), that there is no model after all.
func unlessOffline(primary, own iter.Seq2[llm.Chunk, error]) iter.Seq2[llm.Chunk, error] {
	return func(yield func(llm.Chunk, error) bool) {
		first := true
		for c, err := range primary {
			if first && err == nil && c.Model == offline.ModelName {
				break // stops the offline engine
			}
			first = false
			if !yield(c, err) || err != nil {
				return
			}
		}
		if !first {
			return
		}
		for c, err := range own {
			if !yield(c, err) || err != nil {
				return
			}
		}
	}
}

// withExtraUsage adds what FAM spent before the reply (the intent classifier's call) to the
// reply's usage, so the engine bills it with the turn.
func withExtraUsage(stream iter.Seq2[llm.Chunk, error], extra llm.Usage) iter.Seq2[llm.Chunk, error] {
	if extra == (llm.Usage{}) {
		return stream
	}
	return func(yield func(llm.Chunk, error) bool) {
		for c, err := range stream {
			if c.Usage != nil {
				u := *c.Usage
				u.InputTokens += extra.InputTokens
				u.CachedInputTokens += extra.CachedInputTokens
				u.CacheWriteTokens += extra.CacheWriteTokens
				u.OutputTokens += extra.OutputTokens
				c.Usage = &u
			}
			if !yield(c, err) || err != nil {
				return
			}
		}
	}
}
