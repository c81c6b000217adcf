package session

import (
	"context"
	"fmt"
	"time"
)

// Cost is one priced request.
type Cost struct {
	ID                string // the message or request it prices; recording it twice is a no-op
	UserID            string
	AgentID           string
	SessionID         string
	Kind              string // "llm", "tts" or "stt"
	Provider          string
	Model             string
	InputTokens       int64
	CachedInputTokens int64
	CacheWriteTokens  int64
	OutputTokens      int64
	// Units are characters for TTS and milliseconds of audio for STT.
	Units     int64
	USD       float64
	Cached    bool
	CreatedAt time.Time
}

// CostTotal is spending over a group of requests.
type CostTotal struct {
	Key      string  `json:"key,omitempty"`
	USD      float64 `json:"usd"`
	Requests int64   `json:"requests"`
	// CachedRequests were answered from a cache at no cost.
	CachedRequests int64 `json:"cachedRequests"`
}

// CostGroup names a column costs can be grouped by.
type CostGroup string

// Groupings for CostTotals.
const (
	ByNothing  CostGroup = ""
	ByAgent    CostGroup = "agent_id"
	ByProvider CostGroup = "provider"
	ByUser     CostGroup = "user_id"
	ByDay      CostGroup = "day"
	ByKind     CostGroup = "kind"
)

// Day is the UTC date a cost is counted on.
func Day(t time.Time) string { return t.UTC().Format("2006-01-02") }

// RecordCost implements the cost ledger.
func (s *SQLStore) RecordCost(ctx context.Context, c Cost) error {
	created := c.CreatedAt
	if created.IsZero() {
		created = s.clock.Now()
	}
	cached := 0
	if c.Cached {
		cached = 1
	}
	// Retried through a lost connection (see retryWrite); the conflict clause makes a retry of
	// an insert that did land a no-op.
	err := s.retryWrite(ctx, "record cost", func(bool) error {
		_, err := s.db.ExecContext(ctx, s.dialect.rebind(`INSERT INTO costs (id, user_id, agent_id, session_id, kind, provider, model,
		input_tokens, cached_input_tokens, cache_write_tokens, output_tokens, units, cost_usd, cached, day, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`),
			c.ID, c.UserID, c.AgentID, c.SessionID, c.Kind, c.Provider, c.Model,
			c.InputTokens, c.CachedInputTokens, c.CacheWriteTokens, c.OutputTokens, c.Units, c.USD, cached, Day(created), created.UnixMilli())
		return err
	})
	if err != nil {
		return fmt.Errorf("record cost: %w", err)
	}
	return nil
}

// CostTotals sums costs on days in [fromDay, toDay] (inclusive, "2006-01-02"), grouped by a
// column; userID limits it to one user when set.
func (s *SQLStore) CostTotals(ctx context.Context, fromDay, toDay string, group CostGroup, userID string) ([]CostTotal, error) {
	switch group {
	case ByNothing, ByAgent, ByProvider, ByUser, ByDay, ByKind:
	default:
		return nil, fmt.Errorf("cost totals: unknown grouping %q", group)
	}
	key := "''"
	if group != ByNothing {
		key = string(group)
	}
	query := `SELECT ` + key + `, COALESCE(SUM(cost_usd), 0), COUNT(*), COALESCE(SUM(cached), 0) FROM costs WHERE day >= ? AND day <= ?`
	args := []any{fromDay, toDay}
	if userID != "" {
		query += ` AND user_id = ?`
		args = append(args, userID)
	}
	if group != ByNothing {
		query += ` GROUP BY ` + key + ` ORDER BY 2 DESC`
	}
	rows, err := s.db.QueryContext(ctx, s.dialect.rebind(query), args...)
	if err != nil {
		return nil, fmt.Errorf("cost totals: %w", err)
	}
	defer rows.Close()
	var out []CostTotal
	for rows.Next() {
		var t CostTotal
		if err := rows.Scan(&t.Key, &t.USD, &t.Requests, &t.CachedRequests); err != nil {
			return nil, fmt.Errorf("cost totals: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}
