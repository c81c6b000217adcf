package agents

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents/llm"
)

//go:embed prices.json
var defaultPricesJSON []byte

// ModelPrice is USD per million tokens.
type ModelPrice struct {
	Input       float64 `json:"input"`
	CachedInput float64 `json:"cachedInput"`
	// CacheWrite prices tokens written to a provider's prompt cache; 0 means priced as Input.
	CacheWrite float64 `json:"cacheWrite"`
	Output     float64 `json:"output"`
}

// TTSPrice is USD per character synthesized.
type TTSPrice struct {
	PerChar float64 `json:"perChar"`
}

// STTPrice is USD per minute transcribed.
type STTPrice struct {
	PerMinute float64 `json:"perMinute"`
}

// Prices is the price table: data, loaded from JSON.
type Prices struct {
	Models map[string]ModelPrice `json:"models"`
	TTS    map[string]TTSPrice   `json:"tts"`
	STT    map[string]STTPrice   `json:"stt"`
}

// DefaultPrices returns the built-in table.
func DefaultPrices() *Prices {
	p, err := parsePrices(defaultPricesJSON)
	if err != nil {
		panic(err) // the embedded table is checked by the tests
	}
	return p
}

func parsePrices(b []byte) (*Prices, error) {
	p := &Prices{}
	if err := json.Unmarshal(b, p); err != nil {
		return nil, fmt.Errorf("price table: %w", err)
	}
	if p.Models == nil {
		p.Models = map[string]ModelPrice{}
	}
	if p.TTS == nil {
		p.TTS = map[string]TTSPrice{}
	}
	if p.STT == nil {
		p.STT = map[string]STTPrice{}
	}
	return p, nil
}

// LoadPrices reads the built-in table and lays the file's entries over it; an empty path
// gives the built-in table.
func LoadPrices(path string) (*Prices, error) {
	p := DefaultPrices()
	if path == "" {
		return p, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("price table: %w", err)
	}
	over, err := parsePrices(b)
	if err != nil {
		return nil, err
	}
	for k, v := range over.Models {
		p.Models[k] = v
	}
	for k, v := range over.TTS {
		p.TTS[k] = v
	}
	for k, v := range over.STT {
		p.STT[k] = v
	}
	return p, nil
}

// Model finds a model's price. Providers answer with dated snapshots
// ("gpt-4o-mini-2024-07-18"), so the longest priced name the model starts with is used.
func (p *Prices) Model(model string) (ModelPrice, bool) {
	if mp, ok := p.Models[model]; ok {
		return mp, true
	}
	best := ""
	var price ModelPrice
	for name, mp := range p.Models {
		if strings.HasPrefix(model, name+"-") && len(name) > len(best) {
			best, price = name, mp
		}
	}
	return price, best != ""
}

// LLMCost prices usage once: uncached input, cache reads, cache writes and output each at their
// own rate. Unknown models (local servers) cost nothing.
func (p *Prices) LLMCost(model string, u llm.Usage) float64 {
	mp, ok := p.Model(model)
	if !ok {
		return 0
	}
	write := mp.CacheWrite
	if write == 0 {
		write = mp.Input
	}
	return (float64(u.InputTokens)*mp.Input + float64(u.CachedInputTokens)*mp.CachedInput +
		float64(u.CacheWriteTokens)*write + float64(u.OutputTokens)*mp.Output) / 1e6
}

// TTSCost prices synthesized characters for "provider/model", falling back to the provider's
// own entry ("f5-tts") for models the table does not name.
func (p *Prices) TTSCost(providerModel string, chars int) float64 {
	return lookup(p.TTS, providerModel).PerChar * float64(chars)
}

// STTCost prices transcribed audio for "provider/model", falling back like TTSCost.
func (p *Prices) STTCost(providerModel string, audio time.Duration) float64 {
	return lookup(p.STT, providerModel).PerMinute * audio.Minutes()
}

func lookup[T any](table map[string]T, providerModel string) T {
	if v, ok := table[providerModel]; ok {
		return v
	}
	provider, _, _ := strings.Cut(providerModel, "/")
	return table[provider]
}

// Estimate is a pessimistic price for a request before it runs: the prompt at four characters
// a token and a reply of maxTokens.
func (p *Prices) Estimate(model string, promptChars, maxTokens int) float64 {
	return p.LLMCost(model, llm.Usage{InputTokens: int64(promptChars+3) / 4, OutputTokens: int64(maxTokens)})
}
