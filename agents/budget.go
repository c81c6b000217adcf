package agents

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/dartmouth-gw/dartmouth/session"
)

// ErrBudgetExceeded is returned when a turn would spend past a budget; critical agents are
// never refused.
var ErrBudgetExceeded = errors.New("budget exceeded")

// BudgetError says which budget refused a turn and when it resets.
type BudgetError struct {
	Scope    string
	LimitUSD float64
	ResetAt  time.Time
}

func (e *BudgetError) Error() string {
	return fmt.Sprintf("%s budget of $%.4f is spent; non-critical agents are paused until %s", e.Scope, e.LimitUSD, e.ResetAt.UTC().Format(time.RFC3339))
}

func (e *BudgetError) Unwrap() error { return ErrBudgetExceeded }

// Mode is how the spending state shapes a turn.
type Mode int

// Modes, by how much of the tightest budget is spent.
const (
	ModeNormal Mode = iota // under 90%
	ModeSaving             // 90% or more: cheaper model, shorter replies, no RAG, cheapest voice tier
	ModePaused             // 100%: non-critical agents refuse
)

func (m Mode) String() string {
	return [...]string{"normal", "cost-saving", "paused"}[m]
}

// Thresholds at which an alert is raised, in percent of a budget.
var alertThresholds = []int{50, 80, 90, 100}

// BudgetConfig configures a Budget. A zero limit means no budget for that scope.
type BudgetConfig struct {
	// KV holds the spent and reserved counters (memory by default; Redis makes them exact
	// across replicas). Required.
	KV session.KV
	// DailyUSD and MonthlyUSD bound all agents together. Default none.
	DailyUSD, MonthlyUSD float64
	// AgentDailyUSD and AgentMonthlyUSD bound single agents, by id. Default none.
	AgentDailyUSD, AgentMonthlyUSD map[string]float64
	// CriticalAgents keep answering at 100%. Default none.
	CriticalAgents []string
	// WebhookURL receives each alert as a JSON POST. Default none.
	WebhookURL string
	// Events records alerts as analytics events. Default none.
	Events interface {
		RecordEvent(ctx context.Context, e session.Event) error
	}
	// Clock decides the day and month (UTC). Default session.SystemClock.
	Clock session.Clock
	// Logger receives alerts. Default slog.Default().
	Logger *slog.Logger
	// HTTPClient posts webhooks. Default a client with a 5s timeout.
	HTTPClient *http.Client
}

// Budget tracks spending against daily and monthly limits. Each turn reserves its estimated
// cost before the provider is called and settles the real cost after, so concurrent turns can
// overshoot a budget by at most what was already in flight.
type Budget struct {
	cfg      BudgetConfig
	webhooks sync.WaitGroup
}

// NewBudget builds a Budget.
func NewBudget(cfg BudgetConfig) (*Budget, error) {
	if cfg.KV == nil {
		return nil, errors.New("budget: a KV store is required")
	}
	if cfg.Clock == nil {
		cfg.Clock = session.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 5 * time.Second}
	}
	return &Budget{cfg: cfg}, nil
}

// Close waits for alert webhooks still being delivered.
func (b *Budget) Close() { b.webhooks.Wait() }

// scope is one budget: a limit over a period for everything or one agent.
type scope struct {
	name    string // "global daily", "agent fam monthly"
	key     string // KV prefix for this period
	limit   int64  // nano-dollars
	resetAt time.Time
	ttl     time.Duration
}

func toNanos(usd float64) int64 { return int64(math.Round(usd * 1e9)) }

func fromNanos(n int64) float64 { return float64(n) / 1e9 }

func (b *Budget) scopes(agentID string) []scope {
	now := b.cfg.Clock.Now().UTC()
	day := now.Format("2006-01-02")
	month := now.Format("2006-01")
	nextDay := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)
	nextMonth := time.Date(now.Year(), now.Month()+1, 1, 0, 0, 0, 0, time.UTC)
	var out []scope
	add := func(name, key string, usd float64, reset time.Time, ttl time.Duration) {
		if usd > 0 {
			out = append(out, scope{name: name, key: "budget:" + key, limit: toNanos(usd), resetAt: reset, ttl: ttl})
		}
	}
	add("global daily", "global:"+day, b.cfg.DailyUSD, nextDay, 48*time.Hour)
	add("global monthly", "global:"+month, b.cfg.MonthlyUSD, nextMonth, 62*24*time.Hour)
	if agentID != "" {
		add("agent "+agentID+" daily", "agent:"+agentID+":"+day, b.cfg.AgentDailyUSD[agentID], nextDay, 48*time.Hour)
		add("agent "+agentID+" monthly", "agent:"+agentID+":"+month, b.cfg.AgentMonthlyUSD[agentID], nextMonth, 62*24*time.Hour)
	}
	return out
}

func (b *Budget) counter(ctx context.Context, key string) (int64, error) {
	raw, err := b.cfg.KV.Get(ctx, key)
	if errors.Is(err, session.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(string(raw), 10, 64)
}

// Reservation is an estimated cost held against the budgets until the turn settles.
type Reservation struct {
	b       *Budget
	scopes  []scope
	nanos   int64
	settled sync.Once
}

// Reserve holds estimateUSD for a turn of agentID. It returns the mode the turn runs in, or a
// *BudgetError when a budget is spent and the agent is not critical.
func (b *Budget) Reserve(ctx context.Context, agentID string, estimateUSD float64) (*Reservation, Mode, error) {
	scopes := b.scopes(agentID)
	r := &Reservation{b: b, scopes: scopes, nanos: toNanos(estimateUSD)}
	critical := slices.Contains(b.cfg.CriticalAgents, agentID)
	mode := ModeNormal
	var refused *scope
	held := 0
	for i, s := range scopes {
		reserved, err := b.cfg.KV.Incr(ctx, s.key+":reserved", r.nanos, s.ttl)
		if err != nil {
			r.release(ctx, scopes[:held])
			return nil, ModeNormal, fmt.Errorf("budget: %w", err)
		}
		held++
		spent, err := b.counter(ctx, s.key+":spent")
		if err != nil {
			r.release(ctx, scopes[:held])
			return nil, ModeNormal, fmt.Errorf("budget: %w", err)
		}
		switch {
		case spent >= s.limit:
			mode = ModePaused
		case spent*10 >= s.limit*9 && mode < ModeSaving:
			mode = ModeSaving
		}
		// Reservations count against the limit so that concurrent turns cannot all pass.
		if refused == nil && !critical && (spent >= s.limit || (r.nanos > 0 && spent+reserved > s.limit)) {
			refused = &scopes[i]
		}
	}
	if refused != nil {
		r.release(ctx, scopes)
		return nil, mode, &BudgetError{Scope: refused.name, LimitUSD: fromNanos(refused.limit), ResetAt: refused.resetAt}
	}
	return r, mode, nil
}

func (r *Reservation) release(ctx context.Context, scopes []scope) {
	for _, s := range scopes {
		if _, err := r.b.cfg.KV.Incr(context.WithoutCancel(ctx), s.key+":reserved", -r.nanos, s.ttl); err != nil {
			r.b.cfg.Logger.WarnContext(ctx, "budget: releasing a reservation failed", "scope", s.name, "err", err)
		}
	}
}

// Settle replaces the reservation with the real cost and raises the alerts it crossed. It is
// safe to call more than once; only the first call counts.
func (r *Reservation) Settle(ctx context.Context, actualUSD float64) {
	if r == nil {
		return
	}
	r.settled.Do(func() {
		ctx = context.WithoutCancel(ctx)
		r.release(ctx, r.scopes)
		actual := toNanos(actualUSD)
		for _, s := range r.scopes {
			spent, err := r.b.cfg.KV.Incr(ctx, s.key+":spent", actual, s.ttl)
			if err != nil {
				r.b.cfg.Logger.ErrorContext(ctx, "budget: recording spend failed", "scope", s.name, "err", err)
				continue
			}
			r.b.alerts(ctx, s, spent)
		}
	})
}

// Alert is one crossed threshold, as logged, recorded and posted to the webhook.
type Alert struct {
	Scope     string    `json:"scope"`
	Threshold int       `json:"threshold"`
	SpentUSD  float64   `json:"spentUsd"`
	LimitUSD  float64   `json:"limitUsd"`
	Action    string    `json:"action"`
	At        time.Time `json:"at"`
}

func (b *Budget) alerts(ctx context.Context, s scope, spent int64) {
	for _, pct := range alertThresholds {
		if spent*100 < s.limit*int64(pct) {
			return
		}
		// The first settle to cross a threshold in a period raises it; Incr makes that exact
		// across replicas.
		n, err := b.cfg.KV.Incr(ctx, s.key+":alert:"+strconv.Itoa(pct), 1, s.ttl)
		if err != nil || n != 1 {
			continue
		}
		a := Alert{Scope: s.name, Threshold: pct, SpentUSD: fromNanos(spent), LimitUSD: fromNanos(s.limit), At: b.cfg.Clock.Now().UTC()}
		switch pct {
		case 90:
			a.Action = "cost-saving mode on"
		case 100:
			a.Action = "non-critical agents paused"
		default:
			a.Action = "alert"
		}
		b.raise(ctx, a)
	}
}

func (b *Budget) raise(ctx context.Context, a Alert) {
	b.cfg.Logger.WarnContext(ctx, "budget threshold crossed", "scope", a.Scope, "threshold", a.Threshold, "spentUsd", a.SpentUSD, "limitUsd", a.LimitUSD, "action", a.Action)
	if b.cfg.Events != nil {
		if err := b.cfg.Events.RecordEvent(ctx, session.Event{Type: "budget.alert", UserID: "system", Data: map[string]any{
			"scope": a.Scope, "threshold": a.Threshold, "spentUsd": a.SpentUSD, "limitUsd": a.LimitUSD, "action": a.Action,
		}}); err != nil {
			b.cfg.Logger.WarnContext(ctx, "budget: recording an alert failed", "err", err)
		}
	}
	if b.cfg.WebhookURL == "" {
		return
	}
	body, _ := json.Marshal(a)
	b.webhooks.Add(1)
	go func() {
		defer b.webhooks.Done()
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, b.cfg.WebhookURL, bytes.NewReader(body))
		if err != nil {
			b.cfg.Logger.Warn("budget webhook", "err", err)
			return
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := b.cfg.HTTPClient.Do(req)
		if err != nil {
			b.cfg.Logger.Warn("budget webhook failed", "err", err)
			return
		}
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			b.cfg.Logger.Warn("budget webhook refused", "status", resp.StatusCode)
		}
	}()
}

// ScopeStatus is one budget's state for reports.
type ScopeStatus struct {
	Scope       string    `json:"scope"`
	LimitUSD    float64   `json:"limitUsd"`
	SpentUSD    float64   `json:"spentUsd"`
	ReservedUSD float64   `json:"reservedUsd"`
	Percent     float64   `json:"percent"`
	ResetAt     time.Time `json:"resetAt"`
}

// Status reports every budget that applies to the agents given (and the global ones).
func (b *Budget) Status(ctx context.Context, agentIDs ...string) ([]ScopeStatus, Mode, error) {
	seen := map[string]bool{}
	var out []ScopeStatus
	mode := ModeNormal
	for _, id := range append([]string{""}, agentIDs...) {
		for _, s := range b.scopes(id) {
			if seen[s.key] {
				continue
			}
			seen[s.key] = true
			spent, err := b.counter(ctx, s.key+":spent")
			if err != nil {
				return nil, mode, err
			}
			reserved, err := b.counter(ctx, s.key+":reserved")
			if err != nil {
				return nil, mode, err
			}
			pct := 100 * float64(spent) / float64(s.limit)
			if id == "" {
				switch {
				case pct >= 100:
					mode = ModePaused
				case pct >= 90 && mode < ModeSaving:
					mode = ModeSaving
				}
			}
			out = append(out, ScopeStatus{Scope: s.name, LimitUSD: fromNanos(s.limit), SpentUSD: fromNanos(spent), ReservedUSD: fromNanos(reserved), Percent: math.Round(pct*100) / 100, ResetAt: s.resetAt})
		}
	}
	return out, mode, nil
}

// CostSaving reports whether a global budget is 90% spent or more; the voice router then picks
// the cheapest tier.
func (b *Budget) CostSaving(ctx context.Context) bool {
	_, mode, err := b.Status(ctx)
	return err == nil && mode >= ModeSaving
}
