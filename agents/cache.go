package agents

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"iter"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents/llm"
	"github.com/dartmouth-gw/dartmouth/agents/nlu"
	"github.com/dartmouth-gw/dartmouth/session"
)

// DefaultCacheTTLs is how long a reply is reused, by the intent of the message it answers.
// Greetings and thanks barely change; calculations and information go stale; questions about
// the time must never be answered from a cache.
func DefaultCacheTTLs() map[string]time.Duration {
	return map[string]time.Duration{
		nlu.IntentGreeting:    7 * 24 * time.Hour,
		nlu.IntentFarewell:    7 * 24 * time.Hour,
		nlu.IntentGratitude:   7 * 24 * time.Hour,
		nlu.IntentSmallTalk:   24 * time.Hour,
		nlu.IntentHowTo:       24 * time.Hour, // the FAQ tier
		nlu.IntentCalculation: time.Hour,
		nlu.IntentInformation: 30 * time.Minute,
		nlu.IntentTime:        0,
		// Replies to repeats, frustration and feedback are about this conversation.
		nlu.IntentRepeat:          0,
		nlu.IntentFrustration:     0,
		nlu.IntentFeedback:        0,
		nlu.IntentTroubleshooting: 30 * time.Minute,
	}
}

// ResponseCacheConfig configures a ResponseCache.
type ResponseCacheConfig struct {
	// KV holds the entries (memory by default, Redis at scale). Required.
	KV session.KV
	// TTLs by intent. Default DefaultCacheTTLs().
	TTLs map[string]time.Duration
	// DefaultTTL applies to intents not in TTLs (the "personal" tier). Default 5m.
	DefaultTTL time.Duration
	// Namespace separates caches of different provider setups, so changing the default model
	// does not replay the old model's answers. Default "".
	Namespace string
	// MaxEntryBytes skips caching replies larger than this. Default 256 KiB.
	MaxEntryBytes int
	// Logger receives cache write failures. Default slog.Default().
	Logger *slog.Logger
}

// ResponseCache is an exact-match cache of complete model replies, keyed by the canonical
// request. Identical requests in flight at the same time share one provider call.
type ResponseCache struct {
	cfg     ResponseCacheConfig
	mu      sync.Mutex
	flights map[string]*flight
	hits    atomic.Int64
	misses  atomic.Int64
	waiting atomic.Int64
}

type flight struct {
	done  chan struct{}
	entry *cacheEntry // nil when the leader did not finish a cacheable reply
}

type cacheEntry struct {
	Chunks   []string  `json:"chunks"`
	Provider string    `json:"provider"`
	Model    string    `json:"model"`
	Usage    llm.Usage `json:"usage"` // what the original call cost, for reporting savings
}

// NewResponseCache builds the cache.
func NewResponseCache(cfg ResponseCacheConfig) (*ResponseCache, error) {
	if cfg.KV == nil {
		return nil, errors.New("response cache: a KV store is required")
	}
	if cfg.TTLs == nil {
		cfg.TTLs = DefaultCacheTTLs()
	}
	if cfg.DefaultTTL == 0 {
		cfg.DefaultTTL = 5 * time.Minute
	}
	if cfg.MaxEntryBytes <= 0 {
		cfg.MaxEntryBytes = 256 << 10
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &ResponseCache{cfg: cfg, flights: map[string]*flight{}}, nil
}

// TTL is how long a reply to a message of this intent is kept; 0 means not at all.
func (c *ResponseCache) TTL(intent string) time.Duration {
	if ttl, ok := c.cfg.TTLs[intent]; ok {
		return ttl
	}
	return c.cfg.DefaultTTL
}

// CacheStats counts response-cache lookups since the process started.
type CacheStats struct {
	Hits   int64 `json:"hits"`
	Misses int64 `json:"misses"`
	// Waiting is how many requests are waiting right now for an identical one in flight.
	Waiting int64   `json:"waiting"`
	HitRate float64 `json:"hitRate"`
}

// Stats returns the cache's counters.
func (c *ResponseCache) Stats() CacheStats {
	s := CacheStats{Hits: c.hits.Load(), Misses: c.misses.Load(), Waiting: c.waiting.Load()}
	if s.Hits+s.Misses > 0 {
		s.HitRate = float64(s.Hits) / float64(s.Hits+s.Misses)
	}
	return s
}

// Key is the sha256 of the canonical request: everything that changes the answer, nothing else.
func (c *ResponseCache) Key(req llm.Request) string {
	canonical := struct {
		Namespace   string        `json:"ns"`
		Model       string        `json:"model"`
		System      string        `json:"system"`
		Messages    []llm.Message `json:"messages"`
		Temperature *float64      `json:"temperature"`
		MaxTokens   int           `json:"maxTokens"`
	}{c.cfg.Namespace, req.Model, req.System, req.Messages, req.Temperature, req.MaxTokens}
	b, _ := json.Marshal(canonical) // plain data: cannot fail
	sum := sha256.Sum256(b)
	return "llmcache:" + hex.EncodeToString(sum[:])
}

// Stream answers req from the cache when it can, else from inner; a reply is stored for ttl
// only once it completed. ttl <= 0 bypasses the cache, and so does a request of a tool loop
// (llm.UsesTools): the cache keeps text, not tool calls.
func (c *ResponseCache) Stream(ctx context.Context, inner llm.Provider, req llm.Request, ttl time.Duration) iter.Seq2[llm.Chunk, error] {
	if ttl <= 0 || llm.UsesTools(req) {
		return inner.Stream(ctx, req)
	}
	return func(yield func(llm.Chunk, error) bool) {
		key := c.Key(req)
		if entry := c.load(ctx, key); entry != nil {
			c.hits.Add(1)
			replay(entry, yield)
			return
		}
		c.mu.Lock()
		f, follower := c.flights[key]
		if !follower {
			f = &flight{done: make(chan struct{})}
			c.flights[key] = f
		}
		c.mu.Unlock()
		if follower {
			c.waiting.Add(1)
			select {
			case <-f.done:
				c.waiting.Add(-1)
			case <-ctx.Done():
				c.waiting.Add(-1)
				yield(llm.Chunk{}, ctx.Err())
				return
			}
			if f.entry != nil {
				c.hits.Add(1)
				replay(f.entry, yield)
				return
			}
			// The leader failed or was cut off: this request asks the provider itself.
			c.misses.Add(1)
			for chunk, err := range inner.Stream(ctx, req) {
				if !yield(chunk, err) || err != nil {
					return
				}
			}
			return
		}
		c.misses.Add(1)
		defer func() {
			c.mu.Lock()
			delete(c.flights, key)
			c.mu.Unlock()
			close(f.done)
		}()
		entry := &cacheEntry{}
		size := 0
		for chunk, err := range inner.Stream(ctx, req) {
			if err != nil {
				yield(chunk, err)
				return // a failed or cut stream is never cached
			}
			if chunk.Text != "" {
				entry.Chunks = append(entry.Chunks, chunk.Text)
				size += len(chunk.Text)
			}
			if chunk.Provider != "" {
				entry.Provider = chunk.Provider
			}
			if chunk.Model != "" {
				entry.Model = chunk.Model
			}
			if chunk.Usage != nil {
				entry.Usage = *chunk.Usage
				// The usage chunk ends a complete reply: store before handing it on, so a
				// caller that stops reading now still leaves a finished entry behind.
				if size <= c.cfg.MaxEntryBytes && len(entry.Chunks) > 0 {
					c.store(ctx, key, entry, ttl)
					f.entry = entry
				}
			}
			if !yield(chunk, nil) {
				return
			}
		}
	}
}

func (c *ResponseCache) load(ctx context.Context, key string) *cacheEntry {
	raw, err := c.cfg.KV.Get(ctx, key)
	if err != nil {
		if !errors.Is(err, session.ErrKeyNotFound) {
			c.cfg.Logger.WarnContext(ctx, "response cache read failed", "err", err)
		}
		return nil
	}
	var e cacheEntry
	if json.Unmarshal(raw, &e) != nil || len(e.Chunks) == 0 {
		return nil
	}
	return &e
}

func (c *ResponseCache) store(ctx context.Context, key string, e *cacheEntry, ttl time.Duration) {
	raw, _ := json.Marshal(e)
	if err := c.cfg.KV.Set(context.WithoutCancel(ctx), key, raw, ttl); err != nil {
		c.cfg.Logger.WarnContext(ctx, "response cache write failed", "err", err)
	}
}

// replay streams a stored reply chunk by chunk, as the provider did, at no cost.
func replay(e *cacheEntry, yield func(llm.Chunk, error) bool) {
	for _, text := range e.Chunks {
		if !yield(llm.Chunk{Text: text, Provider: e.Provider, Model: e.Model, Cached: true}, nil) {
			return
		}
	}
	yield(llm.Chunk{Provider: e.Provider, Model: e.Model, Cached: true, Usage: &llm.Usage{}}, nil)
}
