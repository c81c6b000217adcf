package session

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// Analytics events the usage report reads. Other types may be recorded too (budget.alert);
// the report ignores them.
const (
	// EventTurnCompleted is a turn that produced a reply (interrupted ones included). Its
	// data: intent, provider, model, messageId, inputTokens, outputTokens, cachedInputTokens,
	// cost (USD), cached, interrupted, processingMs, firstTokenMs.
	EventTurnCompleted = "turn.completed"
	// EventTurnFailed is a turn that produced no reply; data: error.
	EventTurnFailed = "turn.failed"
	// EventVoiceTurn is the speech side of a voice turn, recorded by the gateway when the
	// turn ends; data: tier (of its first sentence), outcome (done, interrupted), messageId
	// (of the reply, as in its turn.completed), ttsProvider, chars, ttsCost (USD), cached.
	EventVoiceTurn = "voice.turn"
)

// RecordEvents stores events in one transaction: all of them or, on error, none, so a caller
// may write the same batch again. Events without a time are stamped with the store's clock.
func (s *SQLStore) RecordEvents(ctx context.Context, events []Event) error {
	if len(events) == 0 {
		return nil
	}
	now := s.now()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for start := 0; start < len(events); start += eventsPerStatement {
			chunk := events[start:min(start+eventsPerStatement, len(events))]
			var q strings.Builder
			q.WriteString(`INSERT INTO analytics_events (type, user_id, session_id, agent_id, created_at, data) VALUES `)
			args := make([]any, 0, 6*len(chunk))
			for i, e := range chunk {
				if i > 0 {
					q.WriteString(", ")
				}
				q.WriteString("(?, ?, ?, ?, ?, ?)")
				data, err := encodeJSON(e.Data)
				if err != nil {
					return fmt.Errorf("event %s: %w", e.Type, err)
				}
				created := now
				if !e.CreatedAt.IsZero() {
					created = e.CreatedAt.UnixMilli()
				}
				args = append(args, e.Type, e.UserID, e.SessionID, e.AgentID, created, data)
			}
			if _, err := tx.ExecContext(ctx, s.dialect.rebind(q.String()), args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record %d events: %w", len(events), err)
	}
	return nil
}

// eventsPerStatement keeps one INSERT's parameters (6 per event) far below SQLite's and
// PostgreSQL's limits (32766 and 65535).
const eventsPerStatement = 500

// EventBatchWriter stores a batch of events at once, all or nothing; SQLStore implements it.
type EventBatchWriter interface {
	RecordEvents(ctx context.Context, events []Event) error
}

var _ EventBatchWriter = (*SQLStore)(nil)

// AnalyticsBufferConfig configures NewAnalyticsBuffer.
type AnalyticsBufferConfig struct {
	// Writer stores the batches. Required.
	Writer EventBatchWriter
	// BatchSize is the most events written at once, and how many pending events start a write
	// without waiting for FlushInterval. Default 500.
	BatchSize int
	// FlushInterval is the longest an event waits to be written. Default 2s.
	FlushInterval time.Duration
	// MaxPending bounds the events held while the database does not answer; past it new events
	// are dropped, and the drop is logged at error level. Default 100000.
	MaxPending int
	// MaxAttempts is how many times one batch is tried before it is given up, with an
	// error-level log naming how many events were lost. Default 8 (about 12 s of backoff).
	MaxAttempts int
	// RetryBackoff is the wait after a batch's first failure; it doubles after each one, up
	// to 5s. Default 100ms.
	RetryBackoff time.Duration
	// Clock stamps events recorded without a time, when they are recorded rather than when
	// their batch is written. Default SystemClock.
	Clock Clock
	// After waits for the flush interval and the retry backoffs; tests replace it to move time
	// by hand. Default time.After.
	After func(time.Duration) <-chan time.Time
	// Logger receives retries and losses. Default slog.Default().
	Logger *slog.Logger
}

// AnalyticsBuffer takes analytics events without waiting for the database and writes them in
// batches: when BatchSize are pending or the oldest has waited FlushInterval, whichever comes
// first. A batch that fails is retried with backoff, not dropped. Its owner runs Run in a
// goroutine and calls Close at shutdown, which writes everything still pending.
type AnalyticsBuffer struct {
	cfg AnalyticsBufferConfig

	mu      sync.Mutex
	pending []Event
	closed  bool
	running bool
	dropped int // events dropped since the buffer last had room

	wake    chan struct{} // a first event arrived, or a batch is full
	stop    chan struct{} // closed by Close
	runDone chan struct{} // closed when Run returns
}

// The buffer records events as the engine's store would.
var _ interface {
	RecordEvent(ctx context.Context, e Event) error
} = (*AnalyticsBuffer)(nil)

// ErrAnalyticsBufferRunning is returned by a second Run.
var ErrAnalyticsBufferRunning = errors.New("analytics buffer: Run called twice")

// NewAnalyticsBuffer returns a buffer writing to cfg.Writer.
func NewAnalyticsBuffer(cfg AnalyticsBufferConfig) (*AnalyticsBuffer, error) {
	if cfg.Writer == nil {
		return nil, errors.New("analytics buffer: a writer is required")
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = 2 * time.Second
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 100_000
	}
	cfg.MaxPending = max(cfg.MaxPending, cfg.BatchSize)
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 8
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = 100 * time.Millisecond
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.After == nil {
		cfg.After = time.After
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &AnalyticsBuffer{cfg: cfg, wake: make(chan struct{}, 1), stop: make(chan struct{}), runDone: make(chan struct{})}, nil
}

// RecordEvent queues e and returns at once. After Close it writes e straight away instead,
// so a turn that ends during shutdown still counts. When MaxPending events are already waiting
// (the database has been down for long), e is dropped: that is logged once per episode, not
// returned, so callers do not log every lost event again.
func (b *AnalyticsBuffer) RecordEvent(ctx context.Context, e Event) error {
	if e.CreatedAt.IsZero() {
		e.CreatedAt = b.cfg.Clock.Now()
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return b.cfg.Writer.RecordEvents(ctx, []Event{e})
	}
	if len(b.pending) >= b.cfg.MaxPending {
		b.dropped++
		first := b.dropped == 1
		b.mu.Unlock()
		if first {
			b.cfg.Logger.Error("analytics: ANALYTICS EVENTS ARE BEING DROPPED: the buffer is full because the database has not taken a batch for a while",
				"pending", b.cfg.MaxPending)
		}
		return nil
	}
	b.pending = append(b.pending, e)
	n := len(b.pending)
	b.mu.Unlock()
	if n == 1 || n >= b.cfg.BatchSize {
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// Pending is how many events wait to be written.
func (b *AnalyticsBuffer) Pending() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pending)
}

// Run writes batches until ctx ends or Close is called; what is pending then is Close's to
// write. It returns at once after Close, and ErrAnalyticsBufferRunning when called twice.
func (b *AnalyticsBuffer) Run(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	if b.running {
		b.mu.Unlock()
		return ErrAnalyticsBufferRunning
	}
	b.running = true
	b.mu.Unlock()
	defer close(b.runDone)
	// due runs only while something waits, from when the oldest waiting event was first seen:
	// an event waits at most about FlushInterval, and an idle buffer waits for nothing.
	var due <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-b.stop:
			return nil
		default:
		}
		switch n := b.Pending(); {
		case n >= b.cfg.BatchSize:
			b.flush(ctx, false, b.stop)
			continue
		case n == 0:
			due = nil
		case due == nil:
			due = b.cfg.After(b.cfg.FlushInterval)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-b.stop:
			return nil
		case <-b.wake:
			continue // a first event starts the timer; a full batch is written above
		case <-due:
			due = nil
			b.flush(ctx, true, b.stop)
		}
	}
}

// Close stops taking events into the buffer (later ones are written one by one), waits for Run
// to finish its write in progress, and writes everything pending, retrying until ctx ends.
// What could not be written by then is logged as lost and reported in the error.
func (b *AnalyticsBuffer) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	running := b.running
	b.mu.Unlock()
	close(b.stop)
	if running {
		select {
		case <-b.runDone:
		case <-ctx.Done():
			n := b.Pending()
			b.cfg.Logger.Error("analytics: shutdown deadline passed while a batch was being written; pending events are lost", "lost", n, "err", ctx.Err())
			return fmt.Errorf("analytics buffer: %d events not written: %w", n, ctx.Err())
		}
	}
	if !b.flush(ctx, true, nil) {
		n := b.Pending()
		b.mu.Lock()
		b.pending = nil
		b.mu.Unlock()
		b.cfg.Logger.Error("analytics: events lost at shutdown: the database did not take them before the deadline", "lost", n)
		return fmt.Errorf("analytics buffer: %d events not written at shutdown", n)
	}
	return nil
}

// flush writes full batches, or with all everything pending when it starts. It stops early,
// leaving the rest pending, when abort is closed or ctx ends; false then.
func (b *AnalyticsBuffer) flush(ctx context.Context, all bool, abort <-chan struct{}) bool {
	todo := b.Pending()
	for todo > 0 {
		b.mu.Lock()
		n := min(b.cfg.BatchSize, len(b.pending))
		if !all && n < b.cfg.BatchSize {
			b.mu.Unlock()
			return true
		}
		// Copied, not sliced: RecordEvent appends to pending meanwhile.
		batch := slices.Clone(b.pending[:n])
		b.mu.Unlock()
		if !b.writeBatch(ctx, batch, abort) {
			return false
		}
		// Only this goroutine removes events, so the first n are still the batch.
		b.mu.Lock()
		b.pending = slices.Delete(b.pending, 0, n)
		if b.dropped > 0 {
			b.cfg.Logger.Error("analytics: the buffer has room again; events were dropped while it was full", "dropped", b.dropped)
			b.dropped = 0
		}
		if len(b.pending) == 0 {
			b.pending = nil // let a burst's backing array go
		}
		b.mu.Unlock()
		todo -= n
	}
	return true
}

// writeBatch writes one batch, retrying with backoff. It returns true once the batch is
// written or given up (after MaxAttempts, logged with the number of events lost), false when
// abort or ctx stopped it first: the batch is then still pending.
func (b *AnalyticsBuffer) writeBatch(ctx context.Context, batch []Event, abort <-chan struct{}) bool {
	log := b.cfg.Logger
	wait := b.cfg.RetryBackoff
	for attempt := 1; ; attempt++ {
		err := b.cfg.Writer.RecordEvents(ctx, batch)
		if err == nil {
			if attempt > 1 {
				log.Info("analytics: batch written after retrying", "events", len(batch), "attempts", attempt)
			}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if attempt >= b.cfg.MaxAttempts {
			log.Error("analytics: GAVE UP writing a batch of events; they are lost", "lost", len(batch), "attempts", attempt, "err", err)
			return true
		}
		log.Warn("analytics: writing a batch of events failed; retrying", "events", len(batch), "attempt", attempt, "wait", wait, "err", err)
		select {
		case <-b.cfg.After(wait):
		case <-abort:
			return false
		case <-ctx.Done():
			return false
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// Dimensions of the usage report (EventUsageQuery.GroupBy).
const (
	UsageByAgent  = "agent"
	UsageByIntent = "intent"
	UsageByTier   = "tier"
	UsageByDay    = "day"
)

// TierText is the tier of turns that were not spoken (text chat, OpenAI-compatible calls).
const TierText = "text"

// EventUsageQuery selects the usage report.
type EventUsageQuery struct {
	// From and To bound the events' times: From <= t < To.
	From, To time.Time
	// GroupBy lists the dimensions, each at most once: UsageByAgent, UsageByIntent,
	// UsageByTier, UsageByDay. None gives one row of totals.
	GroupBy []string
	// UserID limits the report to one user; empty means everyone.
	UserID string
}

// EventUsageRow is the usage of one group. Only the dimensions grouped by are set.
type EventUsageRow struct {
	Agent  string `json:"agent,omitempty"`
	Intent string `json:"intent,omitempty"`
	// Tier is the voice tier of the turn's first spoken sentence, or TierText.
	Tier string `json:"tier,omitempty"`
	// Day is the UTC date, 2006-01-02.
	Day string `json:"day,omitempty"`
	// Turns counts turns, Errors those that produced no reply, CachedTurns those answered
	// from the response cache.
	Turns       int64 `json:"turns"`
	Errors      int64 `json:"errors"`
	CachedTurns int64 `json:"cachedTurns"`
	// InputTokens and OutputTokens are the model's; Tokens their sum.
	InputTokens  int64 `json:"inputTokens"`
	OutputTokens int64 `json:"outputTokens"`
	Tokens       int64 `json:"tokens"`
	// CostUSD is the model's cost plus, for spoken turns, the speech's.
	CostUSD float64 `json:"costUsd"`
}

// EventUsage reports turns, errors, tokens and cost from the raw analytics events, grouped as
// asked, up to the last event written (the hourly roll-up of AnalyticsUsage keeps no tokens
// and lags by up to an hour). A turn's tier comes from the voice.turn event of its reply (or, for
// a failed turn, of its session); turns with none are TierText. Rows are sorted by day, agent,
// intent, tier.
func (s *SQLStore) EventUsage(ctx context.Context, q EventUsageQuery) ([]EventUsageRow, error) {
	dims := map[string]bool{}
	for _, d := range q.GroupBy {
		switch d {
		case UsageByAgent, UsageByIntent, UsageByTier, UsageByDay:
		default:
			return nil, fmt.Errorf("event usage: unknown dimension %q (want agent, intent, tier or day)", d)
		}
		if dims[d] {
			return nil, fmt.Errorf("event usage: dimension %q named twice", d)
		}
		dims[d] = true
	}
	if !q.To.After(q.From) {
		return nil, fmt.Errorf("event usage: the period ends (%s) before it starts (%s)", q.To, q.From)
	}
	type voiceTurn struct {
		tier    string
		ttsCost float64
	}
	byMessage := map[string]voiceTurn{}
	bySession := map[string]string{}
	// Read whatever the grouping, since speech costs count in every row. A turn's voice.turn
	// is written just after the turn: look a little past To for it.
	err := s.scanEvents(ctx, q.From, q.To.Add(time.Hour), q.UserID, []string{EventVoiceTurn}, func(_ string, sessionID, _ string, _ int64, data map[string]any) {
		tier := stringField(data, "tier")
		if tier == "" {
			return
		}
		if id := stringField(data, "messageId"); id != "" {
			byMessage[id] = voiceTurn{tier: tier, ttsCost: numberField(data, "ttsCost")}
		}
		bySession[sessionID] = tier
	})
	if err != nil {
		return nil, err
	}
	groups := map[EventUsageRow]*EventUsageRow{}
	err = s.scanEvents(ctx, q.From, q.To, q.UserID, []string{EventTurnCompleted, EventTurnFailed}, func(typ, sessionID, agentID string, createdMs int64, data map[string]any) {
		var key EventUsageRow
		tier, ttsCost := TierText, 0.0
		if v, ok := byMessage[stringField(data, "messageId")]; ok {
			tier, ttsCost = v.tier, v.ttsCost
		} else if t, ok := bySession[sessionID]; ok {
			tier = t
		}
		if dims[UsageByAgent] {
			key.Agent = agentID
		}
		if dims[UsageByIntent] {
			key.Intent = stringField(data, "intent")
			if key.Intent == "" {
				key.Intent = "unknown"
			}
		}
		if dims[UsageByTier] {
			key.Tier = tier
		}
		if dims[UsageByDay] {
			key.Day = Day(time.UnixMilli(createdMs))
		}
		row := groups[key]
		if row == nil {
			row = &EventUsageRow{Agent: key.Agent, Intent: key.Intent, Tier: key.Tier, Day: key.Day}
			groups[key] = row
		}
		row.Turns++
		if typ == EventTurnFailed {
			row.Errors++
			return
		}
		if b, _ := data["cached"].(bool); b {
			row.CachedTurns++
		}
		in, out := int64(numberField(data, "inputTokens")), int64(numberField(data, "outputTokens"))
		row.InputTokens += in
		row.OutputTokens += out
		row.Tokens += in + out
		row.CostUSD += numberField(data, "cost") + ttsCost
	})
	if err != nil {
		return nil, err
	}
	out := make([]EventUsageRow, 0, len(groups))
	for _, r := range groups {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b EventUsageRow) int {
		for _, c := range [][2]string{{a.Day, b.Day}, {a.Agent, b.Agent}, {a.Intent, b.Intent}, {a.Tier, b.Tier}} {
			if n := strings.Compare(c[0], c[1]); n != 0 {
				return n
			}
		}
		return 0
	})
	return out, nil
}

// scanEvents calls fn for each event of the types in [from, to), of userID when set.
func (s *SQLStore) scanEvents(ctx context.Context, from, to time.Time, userID string, types []string,
	fn func(typ, sessionID, agentID string, createdMs int64, data map[string]any)) error {
	query := `SELECT type, session_id, agent_id, created_at, data FROM analytics_events WHERE created_at >= ? AND created_at < ? AND type IN (?` +
		strings.Repeat(", ?", len(types)-1) + `)`
	args := []any{from.UnixMilli(), to.UnixMilli()}
	for _, t := range types {
		args = append(args, t)
	}
	if userID != "" {
		query += ` AND user_id = ?`
		args = append(args, userID)
	}
	rows, err := s.db.QueryContext(ctx, s.dialect.rebind(query), args...)
	if err != nil {
		return fmt.Errorf("event usage: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var typ, sessionID, agentID, raw string
		var created int64
		if err := rows.Scan(&typ, &sessionID, &agentID, &created, &raw); err != nil {
			return fmt.Errorf("event usage: %w", err)
		}
		data, err := decodeJSON(raw)
		if err != nil {
			continue // one unreadable event must not hide the rest of the report
		}
		fn(typ, sessionID, agentID, created, data)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("event usage: %w", err)
	}
	return nil
}

func stringField(data map[string]any, name string) string {
	s, _ := data[name].(string)
	return s
}

// numberField reads a JSON number (decoded as float64); anything else is 0.
func numberField(data map[string]any, name string) float64 {
	switch v := data[name].(type) {
	case float64:
		return v
	case int64:
		return float64(v)
	case int:
		return float64(v)
	}
	return 0
}
