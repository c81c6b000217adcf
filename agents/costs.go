package agents

import (
	"context"
	"errors"
	"fmt"

	"github.com/dartmouth-gw/dartmouth/session"
)

// CostReport is what GET /api/v2/costs shows.
type CostReport struct {
	Today           session.CostTotal   `json:"today"`
	Month           session.CostTotal   `json:"month"`
	TodayByAgent    []session.CostTotal `json:"todayByAgent"`
	MonthByAgent    []session.CostTotal `json:"monthByAgent"`
	MonthByProvider []session.CostTotal `json:"monthByProvider"`
	MonthByDay      []session.CostTotal `json:"monthByDay"`
	Budgets         []ScopeStatus       `json:"budgets"`
	Mode            string              `json:"mode"`
	ResponseCache   *CacheStats         `json:"responseCache,omitempty"`
}

// ErrNoLedger is returned when costs are not persisted.
var ErrNoLedger = errors.New("costs are not recorded by this store")

// CostReport sums spending for today and this month (UTC) with the budgets' state.
func (e *Engine) CostReport(ctx context.Context) (CostReport, error) {
	var r CostReport
	if e.cfg.Ledger == nil {
		return r, ErrNoLedger
	}
	today := session.Day(e.cfg.Clock.Now())
	monthStart := today[:8] + "01"
	queries := []struct {
		from  string
		group session.CostGroup
		into  func([]session.CostTotal)
	}{
		{today, session.ByNothing, func(rows []session.CostTotal) { r.Today = first(rows) }},
		{monthStart, session.ByNothing, func(rows []session.CostTotal) { r.Month = first(rows) }},
		{today, session.ByAgent, func(rows []session.CostTotal) { r.TodayByAgent = rows }},
		{monthStart, session.ByAgent, func(rows []session.CostTotal) { r.MonthByAgent = rows }},
		{monthStart, session.ByProvider, func(rows []session.CostTotal) { r.MonthByProvider = rows }},
		{monthStart, session.ByDay, func(rows []session.CostTotal) { r.MonthByDay = rows }},
	}
	for _, q := range queries {
		rows, err := e.cfg.Ledger.CostTotals(ctx, q.from, today, q.group, "")
		if err != nil {
			return r, fmt.Errorf("cost report: %w", err)
		}
		q.into(rows)
	}
	r.Mode = ModeNormal.String()
	if e.cfg.Budget != nil {
		ids := make([]string, 0)
		for _, a := range e.cfg.Registry.List() {
			ids = append(ids, a.ID)
		}
		budgets, mode, err := e.cfg.Budget.Status(ctx, ids...)
		if err != nil {
			return r, fmt.Errorf("cost report: %w", err)
		}
		r.Budgets, r.Mode = budgets, mode.String()
	}
	if e.cfg.Cache != nil {
		stats := e.cfg.Cache.Stats()
		r.ResponseCache = &stats
	}
	return r, nil
}

// first is the only row of an ungrouped total (none when nothing was spent).
func first(rows []session.CostTotal) session.CostTotal {
	if len(rows) == 0 {
		return session.CostTotal{}
	}
	return rows[0]
}
