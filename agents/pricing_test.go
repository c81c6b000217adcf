package agents_test

import (
	"math"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/agents/llm"
)

func TestDefaultPricesLLMCost(t *testing.T) {
	million := llm.Usage{InputTokens: 1_000_000, CachedInputTokens: 1_000_000, OutputTokens: 1_000_000}
	tests := []struct {
		name  string
		model string
		usage llm.Usage
		want  float64
	}{
		// Each token class at its own rate, per million: 0.15 + 0.075 + 0.60.
		{"gpt-4o-mini rates", "gpt-4o-mini", million, 0.825},
		{"cached input at the cached rate", "gpt-4o-mini", llm.Usage{CachedInputTokens: 2000}, 2000 * 0.075 / 1e6},
		{"mixed usage", "gpt-4o-mini", llm.Usage{InputTokens: 1200, CachedInputTokens: 800, OutputTokens: 300}, (1200*0.15 + 800*0.075 + 300*0.60) / 1e6},
		{"cache writes without their own rate cost input", "gpt-4o-mini", llm.Usage{CacheWriteTokens: 1_000_000}, 0.15},
		{"cache writes at their own rate", "claude-haiku-4-5", llm.Usage{CacheWriteTokens: 1_000_000}, 1.25},
		{"dated snapshot takes the longest prefix", "gpt-4o-mini-2024-07-18", million, 0.825},
		{"gpt-4o snapshot", "gpt-4o-2024-08-06", million, 2.50 + 1.25 + 10.00},
		{"claude snapshot", "claude-haiku-4-5-20251001", llm.Usage{InputTokens: 1_000_000, OutputTokens: 1_000_000}, 6},
		{"unknown model", "llama3.1:8b", million, 0},
		{"priced name without the dash", "gpt-4omni", million, 0},
		{"no model", "", million, 0},
		{"no usage", "gpt-4o", llm.Usage{}, 0},
	}
	prices := agents.DefaultPrices()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := prices.LLMCost(tt.model, tt.usage); math.Abs(got-tt.want) > 1e-12 {
				t.Errorf("LLMCost(%q, %+v) = %v, want %v", tt.model, tt.usage, got, tt.want)
			}
		})
	}
}

func TestSpeechPricesFallBackToTheProvider(t *testing.T) {
	p := agents.DefaultPrices()
	for _, tc := range []struct {
		name string
		got  float64
		want float64
	}{
		{"openai tts-1 by model", p.TTSCost("openai/tts-1", 1000), 0.015},
		{"self-hosted F5 by provider", p.TTSCost("f5-tts/any-model", 1000), 0.001},
		{"self-hosted whisper by provider", p.STTCost("whisper/large-v3", 2*time.Minute), 0.002},
		{"unknown provider", p.STTCost("unknown/model", time.Minute), 0},
	} {
		if math.Abs(tc.got-tc.want) > 1e-12 {
			t.Errorf("%s: %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}
