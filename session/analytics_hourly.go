package session

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// The hourly analytics roll-up: analytics_events summed per UTC hour, agent, event type,
// intent and tier into analytics_hourly, so reports over long periods need not read every
// event (EventUsage reads the raw events, exact to the moment; AnalyticsUsage the roll-up).

// AnalyticsGroup names a dimension usage can be grouped by.
type AnalyticsGroup string

// Dimensions of AnalyticsUsage.
const (
	AnalyticsByDay    AnalyticsGroup = "day" // UTC date, "2006-01-02"
	AnalyticsByAgent  AnalyticsGroup = "agent_id"
	AnalyticsByIntent AnalyticsGroup = "intent"
	// AnalyticsByTier groups by voice tier, as EventUsage does: a turn's is the tier of its
	// reply's voice.turn event (else of its session's), TierText for turns not spoken.
	AnalyticsByTier AnalyticsGroup = "tier"
	AnalyticsByType AnalyticsGroup = "event_type"
)

// DefaultAnalyticsGroups is the grouping of AnalyticsUsage when none is given.
var DefaultAnalyticsGroups = []AnalyticsGroup{AnalyticsByDay, AnalyticsByAgent, AnalyticsByIntent, AnalyticsByTier}

// AnalyticsUsageRow is the usage of one group. The fields of dimensions not grouped by are
// empty.
type AnalyticsUsageRow struct {
	Day       string `json:"day,omitempty"`
	AgentID   string `json:"agentId,omitempty"`
	Intent    string `json:"intent,omitempty"`
	Tier      string `json:"tier,omitempty"`
	EventType string `json:"eventType,omitempty"`
	// Events counts every event; Turns the completed turns and Failures the failed ones.
	Events   int64 `json:"events"`
	Turns    int64 `json:"turns"`
	Failures int64 `json:"failures"`
	// Cached counts turns answered from the response cache.
	Cached  int64   `json:"cached"`
	CostUSD float64 `json:"costUsd"`
	// ProcessingMs is the total processing time of the turns; divide by Turns for the mean.
	ProcessingMs int64 `json:"processingMs"`
}

type hourlyKey struct{ agent, eventType, intent, tier string }

type hourlyTotals struct {
	events, cached, processingMs int64
	cost                         float64
}

// AggregateAnalytics rolls the events of the UTC hour containing hour up into
// analytics_hourly, replacing what an earlier run wrote for that hour (so running it again
// counts events that arrived late, and never twice). It returns how many events the hour holds.
// Turns get an intent ("unknown" when they name none) and a voice tier like EventUsage's.
func (s *SQLStore) AggregateAnalytics(ctx context.Context, hour time.Time) (int, error) {
	start := hour.UTC().Truncate(time.Hour)
	end := start.Add(time.Hour)
	total := 0
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		// The tiers of the hour's spoken replies; a turn's voice.turn is written just after the
		// turn, so look a little past the hour for it.
		tierOfMessage, tierOfSession := map[string]string{}, map[string]string{}
		rows, err := tx.QueryContext(ctx, s.dialect.rebind(`SELECT session_id, data FROM analytics_events WHERE type = ? AND created_at >= ? AND created_at < ?`),
			EventVoiceTurn, start.UnixMilli(), end.Add(time.Hour).UnixMilli())
		if err != nil {
			return err
		}
		for rows.Next() {
			var sessionID, data string
			if err := rows.Scan(&sessionID, &data); err != nil {
				rows.Close()
				return err
			}
			if f := eventFields(data); f.Tier != "" {
				if f.MessageID != "" {
					tierOfMessage[f.MessageID] = f.Tier
				}
				tierOfSession[sessionID] = f.Tier
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = tx.QueryContext(ctx, s.dialect.rebind(`SELECT type, session_id, agent_id, data FROM analytics_events WHERE created_at >= ? AND created_at < ?`),
			start.UnixMilli(), end.UnixMilli())
		if err != nil {
			return err
		}
		groups := map[hourlyKey]*hourlyTotals{}
		for rows.Next() {
			var eventType, sessionID, agent, data string
			if err := rows.Scan(&eventType, &sessionID, &agent, &data); err != nil {
				rows.Close()
				return err
			}
			total++
			f := eventFields(data)
			k := hourlyKey{agent: agent, eventType: eventType, intent: f.Intent, tier: f.Tier}
			if eventType == EventTurnCompleted || eventType == EventTurnFailed {
				if k.intent == "" {
					k.intent = "unknown"
				}
				k.tier = TierText
				if t, ok := tierOfMessage[f.MessageID]; ok && f.MessageID != "" {
					k.tier = t
				} else if t, ok := tierOfSession[sessionID]; ok {
					k.tier = t
				}
			}
			g := groups[k]
			if g == nil {
				g = &hourlyTotals{}
				groups[k] = g
			}
			g.events++
			g.cost += f.Cost
			g.processingMs += int64(f.ProcessingMs)
			if f.Cached {
				g.cached++
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.dialect.rebind(`DELETE FROM analytics_hourly WHERE hour = ?`), start.UnixMilli()); err != nil {
			return err
		}
		day := Day(start)
		for k, g := range groups {
			if _, err := tx.ExecContext(ctx, s.dialect.rebind(`INSERT INTO analytics_hourly
				(hour, day, agent_id, event_type, intent, tier, events, cached, cost_usd, processing_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
				start.UnixMilli(), day, k.agent, k.eventType, k.intent, k.tier, g.events, g.cached, g.cost, g.processingMs); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("aggregate analytics of %s: %w", start.Format(time.RFC3339), err)
	}
	return total, nil
}

// analyticsFields are the parts of an event's data the roll-up reads; anything else, or a
// value of another type, is ignored.
type analyticsFields struct {
	Intent       string
	Tier         string
	MessageID    string
	Cost         float64
	Cached       bool
	ProcessingMs float64
}

func eventFields(data string) analyticsFields {
	var raw map[string]json.RawMessage
	var f analyticsFields
	if json.Unmarshal([]byte(data), &raw) != nil {
		return f
	}
	_ = json.Unmarshal(raw["intent"], &f.Intent)
	_ = json.Unmarshal(raw["tier"], &f.Tier)
	_ = json.Unmarshal(raw["messageId"], &f.MessageID)
	_ = json.Unmarshal(raw["cost"], &f.Cost)
	_ = json.Unmarshal(raw["cached"], &f.Cached)
	_ = json.Unmarshal(raw["processingMs"], &f.ProcessingMs)
	return f
}

// LatestAnalyticsHour returns the latest hour the roll-up holds rows for; zero if none.
func (s *SQLStore) LatestAnalyticsHour(ctx context.Context) (time.Time, error) {
	var hour sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MAX(hour) FROM analytics_hourly`).Scan(&hour); err != nil {
		return time.Time{}, fmt.Errorf("latest analytics hour: %w", err)
	}
	if !hour.Valid {
		return time.Time{}, nil
	}
	return time.UnixMilli(hour.Int64).UTC(), nil
}

// AnalyticsUsage sums the rolled-up hours in [from, to) by the given dimensions
// (DefaultAnalyticsGroups when none: day, agent, intent and tier), ordered by them. Hours not
// yet aggregated are not counted: the roll-up runs hourly.
func (s *SQLStore) AnalyticsUsage(ctx context.Context, from, to time.Time, groupBy ...AnalyticsGroup) ([]AnalyticsUsageRow, error) {
	if len(groupBy) == 0 {
		groupBy = DefaultAnalyticsGroups
	}
	var cols []string
	seen := map[AnalyticsGroup]bool{}
	for _, g := range groupBy {
		switch g {
		case AnalyticsByDay, AnalyticsByAgent, AnalyticsByIntent, AnalyticsByTier, AnalyticsByType:
		default:
			return nil, fmt.Errorf("analytics usage: unknown grouping %q (want day, agent_id, intent, tier or event_type)", g)
		}
		if !seen[g] {
			seen[g] = true
			cols = append(cols, string(g))
		}
	}
	selectCol := func(g AnalyticsGroup) string {
		if seen[g] {
			return string(g)
		}
		return "''"
	}
	query := `SELECT ` + selectCol(AnalyticsByDay) + `, ` + selectCol(AnalyticsByAgent) + `, ` + selectCol(AnalyticsByIntent) + `, ` +
		selectCol(AnalyticsByTier) + `, ` + selectCol(AnalyticsByType) + `,
		COALESCE(SUM(events), 0),
		COALESCE(SUM(CASE WHEN event_type = '` + EventTurnCompleted + `' THEN events ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN event_type = '` + EventTurnFailed + `' THEN events ELSE 0 END), 0),
		COALESCE(SUM(cached), 0), COALESCE(SUM(cost_usd), 0), COALESCE(SUM(processing_ms), 0)
		FROM analytics_hourly WHERE hour >= ? AND hour < ?
		GROUP BY ` + strings.Join(cols, ", ") + ` ORDER BY ` + strings.Join(cols, ", ")
	rows, err := s.db.QueryContext(ctx, s.dialect.rebind(query), from.UnixMilli(), to.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("analytics usage: %w", err)
	}
	defer rows.Close()
	var out []AnalyticsUsageRow
	for rows.Next() {
		var r AnalyticsUsageRow
		if err := rows.Scan(&r.Day, &r.AgentID, &r.Intent, &r.Tier, &r.EventType,
			&r.Events, &r.Turns, &r.Failures, &r.Cached, &r.CostUSD, &r.ProcessingMs); err != nil {
			return nil, fmt.Errorf("analytics usage: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
