package agents

import (
	"strings"

	"github.com/dartmouth-gw/dartmouth/agents/llm"
)

// ModelPrice is USD per million tokens.
type ModelPrice struct {
	Input       float64
	CachedInput float64
	Output      float64
}

// defaultPrices covers the default models; unknown models (local servers) cost nothing.
var defaultPrices = map[string]ModelPrice{
	"gpt-4o-mini":      {Input: 0.15, CachedInput: 0.075, Output: 0.60},
	"gpt-4o":           {Input: 2.50, CachedInput: 1.25, Output: 10.00},
	"claude-haiku-4-5": {Input: 1.00, CachedInput: 0.10, Output: 5.00},
}

// Cost prices usage once: uncached input, cached input and output each at their own rate.
func Cost(model string, u llm.Usage) float64 {
	p, ok := defaultPrices[model]
	if !ok {
		// Providers answer with dated snapshots ("gpt-4o-mini-2024-07-18"): take the longest
		// priced name the model starts with.
		best := ""
		for name, price := range defaultPrices {
			if strings.HasPrefix(model, name+"-") && len(name) > len(best) {
				best, p = name, price
			}
		}
		if best == "" {
			return 0
		}
	}
	return (float64(u.InputTokens)*p.Input + float64(u.CachedInputTokens)*p.CachedInput + float64(u.OutputTokens)*p.Output) / 1e6
}
