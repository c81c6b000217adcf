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
	now := e.cfg.Clock.Now()
	today := session.Day(now)
	monthStart := today[:8] + "01"
	total := func(from string, group session.CostGroup) ([]session.CostTotal, error) {
		return e.cfg.Ledger.CostTotals(ctx, from, today, group, "")
	}
	var err error
	one := func(from string) session.CostTotal {
		if err != nil {
			return session.CostTotal{}
		}
		var rows []session.CostTotal
		rows, err = total(from, session.ByNothing)
		if len(rows) == 0 {
			return session.CostTotal{}
		}
		return rows[0]
	}
	r.Today, r.Month = one(today), one(monthStart)
	for _, q := range []struct {
		into  *[]session.CostTotal
		from  string
		group session.CostGroup
	}{
		{&r.TodayByAgent, today, session.ByAgent},
		{&r.MonthByAgent, monthStart, session.ByAgent},
		{&r.MonthByProvider, monthStart, session.ByProvider},
		{&r.MonthByDay, monthStart, session.ByDay},
	} {
		if err != nil {
			break
		}
		*q.into, err = total(q.from, q.group)
	}
	if err != nil {
		return r, fmt.Errorf("cost report: %w", err)
	}
	r.Mode = ModeNormal.String()
	if e.cfg.Budget != nil {
		ids := make([]string, 0)
		for _, a := range e.cfg.Registry.List() {
			ids = append(ids, a.ID)
		}
		var mode Mode
		if r.Budgets, mode, err = e.cfg.Budget.Status(ctx, ids...); err != nil {
			return r, fmt.Errorf("cost report: %w", err)
		}
		r.Mode = mode.String()
	}
	if e.cfg.Cache != nil {
		stats := e.cfg.Cache.Stats()
		r.ResponseCache = &stats
	}
	return r, nil
}
