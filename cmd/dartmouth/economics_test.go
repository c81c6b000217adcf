package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/session"
)

func TestEconomicsSettings(t *testing.T) {
	store, err := session.OpenSQLite(context.Background(), session.SQLiteConfig{Path: t.TempDir() + "/e.db"})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	quiet := slog.New(slog.DiscardHandler)
	build := func(env map[string]string) (*agents.ResponseCache, *agents.Budget, error) {
		cfg, err := parseConfig("t", nil, func(k string) string { return env[k] }, io.Discard)
		if err != nil {
			return nil, nil, err
		}
		_, cache, budget, err := economics(cfg, session.NewMemoryKV(nil), store, "ns", quiet)
		return cache, budget, err
	}
	cache, budget, err := build(nil)
	if err != nil || cache == nil || budget != nil {
		t.Fatalf("defaults: cache on, no budget; got %v %v %v", cache, budget, err)
	}
	cache, budget, err = build(map[string]string{
		"DARTMOUTH_CACHE_TTLS": "greeting=1h,time=0", "DARTMOUTH_AGENT_BUDGETS": "fam=0.5/day,support=10/month",
		"DARTMOUTH_BUDGET_DAILY": "2", "DARTMOUTH_CRITICAL_AGENTS": "support",
	})
	if err != nil || budget == nil || cache.TTL("greeting") != time.Hour || cache.TTL("information") != 30*time.Minute {
		t.Fatalf("configured: %v %v", budget, err)
	}
	defer budget.Close()
	status, _, err := budget.Status(context.Background(), "fam", "support")
	if err != nil || len(status) != 3 {
		t.Fatalf("want global daily, fam daily and support monthly budgets, got %+v %v", status, err)
	}
	if cache, _, _ := build(map[string]string{"DARTMOUTH_RESPONSE_CACHE": "false"}); cache != nil {
		t.Fatal("the cache can be turned off")
	}
	for name, env := range map[string]map[string]string{
		"bad ttl":            {"DARTMOUTH_CACHE_TTLS": "greeting=soon"},
		"bad agent budget":   {"DARTMOUTH_AGENT_BUDGETS": "fam=lots/day"},
		"bad period":         {"DARTMOUTH_AGENT_BUDGETS": "fam=1/week"},
		"negative budget":    {"DARTMOUTH_BUDGET_DAILY": "-1"},
		"missing price file": {"DARTMOUTH_PRICES": "/nonexistent/prices.json"},
	} {
		if _, _, err := build(env); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}
