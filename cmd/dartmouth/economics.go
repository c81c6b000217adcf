package main

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/session"
)

// economics builds the price table, the response cache and the budgets from the settings.
func economics(cfg *Config, kv session.KV, events *session.SQLStore, namespace string, logger *slog.Logger) (*agents.Prices, *agents.ResponseCache, *agents.Budget, error) {
	prices, err := agents.LoadPrices(cfg.PricesFile)
	if err != nil {
		return nil, nil, nil, err
	}
	var cache *agents.ResponseCache
	if cfg.ResponseCache {
		ttls := agents.DefaultCacheTTLs()
		if err := parseKeyed(cfg.CacheTTLs, func(intent, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return fmt.Errorf("not a duration: %q", v)
			}
			ttls[intent] = d
			return nil
		}); err != nil {
			return nil, nil, nil, fmt.Errorf("cache-ttls: %w", err)
		}
		if cache, err = agents.NewResponseCache(agents.ResponseCacheConfig{KV: kv, TTLs: ttls, Namespace: namespace, Logger: logger}); err != nil {
			return nil, nil, nil, err
		}
	}
	daily, monthly := map[string]float64{}, map[string]float64{}
	if err := parseKeyed(cfg.AgentBudgets, func(agent, v string) error {
		amount, period, ok := strings.Cut(v, "/")
		usd, err := strconv.ParseFloat(amount, 64)
		if !ok || err != nil || usd < 0 {
			return fmt.Errorf("want AGENT=USD/day or AGENT=USD/month, got %q", agent+"="+v)
		}
		switch period {
		case "day", "d":
			daily[agent] = usd
		case "month", "m":
			monthly[agent] = usd
		default:
			return fmt.Errorf("period must be day or month, got %q", period)
		}
		return nil
	}); err != nil {
		return nil, nil, nil, fmt.Errorf("agent-budgets: %w", err)
	}
	var budget *agents.Budget
	if cfg.BudgetDaily > 0 || cfg.BudgetMonthly > 0 || len(daily) > 0 || len(monthly) > 0 {
		budget, err = agents.NewBudget(agents.BudgetConfig{
			KV: kv, DailyUSD: cfg.BudgetDaily, MonthlyUSD: cfg.BudgetMonthly,
			AgentDailyUSD: daily, AgentMonthlyUSD: monthly,
			CriticalAgents: splitList(cfg.CriticalAgents), WebhookURL: cfg.BudgetWebhook,
			Events: events, Logger: logger,
		})
		if err != nil {
			return nil, nil, nil, err
		}
	}
	return prices, cache, budget, nil
}

// parseKeyed reads "key=value,key=value".
func parseKeyed(s string, each func(key, value string) error) error {
	for _, item := range splitList(s) {
		k, v, ok := strings.Cut(item, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return fmt.Errorf("want key=value, got %q", item)
		}
		if err := each(strings.TrimSpace(k), strings.TrimSpace(v)); err != nil {
			return err
		}
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
