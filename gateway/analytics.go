package gateway

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/dartmouth-gw/dartmouth/session"
	"github.com/labstack/echo/v4"
)

// UsageReader reports usage from the analytics events; session.SQLStore implements it.
type UsageReader interface {
	EventUsage(ctx context.Context, q session.EventUsageQuery) ([]session.EventUsageRow, error)
}

var _ UsageReader = (*session.SQLStore)(nil)

// Bounds of GET /api/v2/analytics.
const (
	analyticsDefaultDays = 7
	analyticsMaxDays     = 366
)

// analyticsReport is the body of GET /api/v2/analytics.
type analyticsReport struct {
	// From and To are the UTC days covered, both included.
	From    string   `json:"from"`
	To      string   `json:"to"`
	GroupBy []string `json:"groupBy"`
	UserID  string   `json:"userId,omitempty"`
	// Source says what was read: "events", the raw analytics events, so the report is exact
	// up to the last batch written (events wait in memory up to the analytics flush interval,
	// 2 s by default).
	Source string                  `json:"source"`
	Totals session.EventUsageRow   `json:"totals"`
	Rows   []session.EventUsageRow `json:"rows"`
}

// analytics is GET /api/v2/analytics?from=YYYY-MM-DD&to=YYYY-MM-DD&groupBy=agent,intent,tier,day
// (admin only): turns, errors, tokens and cost, grouped by any of agent, intent, voice tier
// ("text" for turns not spoken) and UTC day. from and to are UTC days, both included; the
// default is the last 7 days ending today, and a period is at most 366 days. groupBy defaults
// to day. userId narrows the report to one user.
func (s *Server) analytics(c echo.Context) error {
	if s.cfg.Analytics == nil {
		return newAPIError(http.StatusServiceUnavailable, CodeUnavailable, "analytics are not kept by this gateway")
	}
	q := c.Request().URL.Query()
	today := time.Now().UTC().Truncate(24 * time.Hour)
	to, err := parseDay(q.Get("to"), "to", today)
	if err != nil {
		return err
	}
	from, err := parseDay(q.Get("from"), "from", to.AddDate(0, 0, 1-analyticsDefaultDays))
	if err != nil {
		return err
	}
	switch days := int(to.Sub(from)/(24*time.Hour)) + 1; {
	case days < 1:
		return validationError("from", "from (%s) is after to (%s)", from.Format(time.DateOnly), to.Format(time.DateOnly))
	case days > analyticsMaxDays:
		return validationError("from", "the period covers %d days; at most %d are allowed", days, analyticsMaxDays)
	}
	groupBy := []string{session.UsageByDay}
	if raw, ok := q["groupBy"]; ok {
		if groupBy, err = parseGroupBy(strings.Join(raw, ",")); err != nil {
			return err
		}
	}
	userID := strings.TrimSpace(q.Get("userId"))
	rows, err := s.cfg.Analytics.EventUsage(c.Request().Context(), session.EventUsageQuery{
		From: from, To: to.AddDate(0, 0, 1), GroupBy: groupBy, UserID: userID,
	})
	if err != nil {
		return err
	}
	report := analyticsReport{From: from.Format(time.DateOnly), To: to.Format(time.DateOnly), GroupBy: groupBy, UserID: userID,
		Source: "events", Rows: rows}
	if report.Rows == nil {
		report.Rows = []session.EventUsageRow{}
	}
	for _, r := range rows {
		t := &report.Totals
		t.Turns += r.Turns
		t.Errors += r.Errors
		t.CachedTurns += r.CachedTurns
		t.InputTokens += r.InputTokens
		t.OutputTokens += r.OutputTokens
		t.Tokens += r.Tokens
		t.CostUSD += r.CostUSD
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusOK, report)
}

// parseDay reads a UTC day, YYYY-MM-DD; empty gives def.
func parseDay(v, field string, def time.Time) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return def, nil
	}
	d, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return time.Time{}, validationError(field, "%s must be a date as YYYY-MM-DD, like 2026-03-01; got %s", field, strconvQuote(v))
	}
	return d, nil
}

// analyticsDimensions are the groupings GET /api/v2/analytics takes.
var analyticsDimensions = []string{session.UsageByAgent, session.UsageByIntent, session.UsageByTier, session.UsageByDay}

func parseGroupBy(v string) ([]string, error) {
	var out []string
	for d := range strings.SplitSeq(v, ",") {
		d = strings.ToLower(strings.TrimSpace(d))
		switch {
		case d == "":
			continue
		case !slices.Contains(analyticsDimensions, d):
			return nil, validationError("groupBy", "groupBy: unknown dimension %s; use any of %s, comma-separated", strconvQuote(d), strings.Join(analyticsDimensions, ", "))
		case slices.Contains(out, d):
			return nil, validationError("groupBy", "groupBy names %s twice", d)
		}
		out = append(out, d)
	}
	return out, nil
}

func validationError(field, format string, args ...any) *APIError {
	e := newAPIError(http.StatusBadRequest, CodeValidation, format, args...)
	e.Details = map[string]any{"field": field}
	return e
}
