// Package gcal is a small Google Calendar API v3 client for the personal assistant: it lists
// a calendar's events in a time range and inserts events, authenticated by an OAuth 2.0
// access token (fixed, or refreshed from a refresh token).
package gcal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ErrInvalid marks input refused before anything was sent.
var ErrInvalid = errors.New("gcal: invalid input")

// Config configures a Client.
type Config struct {
	// Tokens supplies access tokens. Required: a RefreshTokenSource for a server, a
	// StaticToken for a test.
	Tokens TokenSource
	// BaseURL of the API. Default "https://www.googleapis.com/calendar/v3".
	BaseURL string
	// HTTPClient carries the requests. Default http.DefaultClient.
	HTTPClient *http.Client
	// Timeout bounds each request. Default 15s.
	Timeout time.Duration
	// PageSize is how many events a page of a listing holds (maxResults; the API allows up
	// to 2500). Default 250.
	PageSize int
	// MaxPages bounds a listing, so a server that keeps answering with another page token
	// cannot keep the client forever. Default 40.
	MaxPages int
	// Retry says how failed requests are repeated; its zero value is documented on
	// RetryPolicy.
	Retry RetryPolicy
	// Now reads the clock, to turn a Retry-After date into a wait. Default time.Now.
	Now func() time.Time
	// Logger receives a line per retry. Default slog.Default().
	Logger *slog.Logger
}

// Client calls the Google Calendar API v3.
type Client struct {
	cfg Config
}

// New checks the configuration and builds the client.
func New(cfg Config) (*Client, error) {
	if cfg.Tokens == nil {
		return nil, fmt.Errorf("%w: a token source is required", ErrInvalid)
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = "https://www.googleapis.com/calendar/v3"
	}
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = 250
	}
	if cfg.MaxPages <= 0 {
		cfg.MaxPages = 40
	}
	cfg.Retry = cfg.Retry.WithDefaults()
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Client{cfg: cfg}, nil
}

// eventsURL is the events collection of a calendar. IDs such as
// "en.usa#holiday@group.v.calendar.google.com" need escaping.
func (c *Client) eventsURL(calendarID string) (string, error) {
	if strings.TrimSpace(calendarID) == "" {
		return "", fmt.Errorf("%w: no calendar ID", ErrInvalid)
	}
	return c.cfg.BaseURL + "/calendars/" + url.PathEscape(calendarID) + "/events", nil
}

type wireEventList struct {
	TimeZone      string      `json:"timeZone"`
	NextPageToken string      `json:"nextPageToken"`
	Items         []wireEvent `json:"items"`
}

// ListEvents returns the events of a calendar that overlap [from, to), recurring events
// expanded into their occurrences, ordered by start. A zero from or to leaves that side open.
// Cancelled occurrences are left out. A refusal by Google is an *Error.
func (c *Client) ListEvents(ctx context.Context, calendarID string, from, to time.Time) ([]Event, error) {
	endpoint, err := c.eventsURL(calendarID)
	if err != nil {
		return nil, err
	}
	if !from.IsZero() && !to.IsZero() && !to.After(from) {
		return nil, fmt.Errorf("%w: the range ends (%s) before it starts (%s)", ErrInvalid, to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	query := url.Values{
		"singleEvents": {"true"},
		"orderBy":      {"startTime"},
		"maxResults":   {strconv.Itoa(c.cfg.PageSize)},
	}
	if !from.IsZero() {
		query.Set("timeMin", from.Format(time.RFC3339))
	}
	if !to.IsZero() {
		query.Set("timeMax", to.Format(time.RFC3339))
	}
	var events []Event
	seen := map[string]bool{}
	for page := 1; ; page++ {
		var list wireEventList
		err := c.cfg.Retry.Run(ctx, c.cfg.Logger, "google calendar events.list", retryWhen(anyRetryable), func(ctx context.Context) error {
			list = wireEventList{}
			return c.call(ctx, http.MethodGet, endpoint+"?"+query.Encode(), nil, &list)
		})
		if err != nil {
			return nil, err
		}
		zone := time.UTC
		if loc, err := time.LoadLocation(list.TimeZone); err == nil && list.TimeZone != "" {
			zone = loc
		}
		for _, w := range list.Items {
			if w.Status == "cancelled" {
				continue
			}
			e, err := fromWire(w, zone)
			if err != nil {
				return nil, &Error{StatusCode: http.StatusOK, Message: "unreadable event", Err: err}
			}
			events = append(events, e)
		}
		next := list.NextPageToken
		if next == "" {
			return events, nil
		}
		if seen[next] || page >= c.cfg.MaxPages {
			return nil, &Error{StatusCode: http.StatusOK, Message: fmt.Sprintf("the listing did not end after %d pages", page)}
		}
		seen[next] = true
		query.Set("pageToken", next)
	}
}

// InsertEvent adds e to a calendar and returns it as Google stored it (with its ID and
// link). Bad input fails with ErrInvalid before anything is sent; a refusal is an *Error.
func (c *Client) InsertEvent(ctx context.Context, calendarID string, e Event) (Event, error) {
	endpoint, err := c.eventsURL(calendarID)
	if err != nil {
		return Event{}, err
	}
	w, err := e.toWire()
	if err != nil {
		return Event{}, err
	}
	payload, err := json.Marshal(w)
	if err != nil {
		return Event{}, fmt.Errorf("gcal: %w", err)
	}
	var stored wireEvent
	err = c.cfg.Retry.Run(ctx, c.cfg.Logger, "google calendar events.insert", retryWhen(refused), func(ctx context.Context) error {
		stored = wireEvent{}
		return c.call(ctx, http.MethodPost, endpoint, payload, &stored)
	})
	if err != nil {
		return Event{}, err
	}
	// An all-day event that names no zone is on the days the caller meant, in Start's zone.
	out, err := fromWire(stored, e.Start.Location())
	if err != nil {
		return Event{}, &Error{StatusCode: http.StatusOK, Message: "unreadable event", Err: err}
	}
	return out, nil
}

// call makes one authenticated request and decodes the answer into out. A token the API
// refuses is replaced once, if the source can be told.
func (c *Client) call(ctx context.Context, method, endpoint string, payload []byte, out any) error {
	for renewed := false; ; renewed = true {
		token, err := c.cfg.Tokens.AccessToken(ctx)
		if err != nil {
			return fmt.Errorf("gcal: access token: %w", err)
		}
		err = c.attempt(ctx, method, endpoint, payload, token, out)
		var ae *Error
		if inv, ok := c.cfg.Tokens.(invalidator); ok && !renewed && errors.As(err, &ae) && ae.StatusCode == http.StatusUnauthorized {
			inv.Invalidate(token)
			continue
		}
		return err
	}
}

func (c *Client) attempt(ctx context.Context, method, endpoint string, payload []byte, token string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, endpoint, body)
	if err != nil {
		return &Error{Err: err}
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, respBody, err := exchange(c.cfg.HTTPClient, req)
	if err != nil {
		e := &Error{Err: err}
		if resp != nil {
			e.StatusCode = resp.StatusCode
		}
		return e
	}
	if resp.StatusCode != http.StatusOK {
		return c.statusError(resp, respBody)
	}
	if err := json.Unmarshal(respBody, out); err != nil {
		return &Error{StatusCode: resp.StatusCode, Message: "unreadable answer", Err: err}
	}
	return nil
}

func (c *Client) statusError(resp *http.Response, body []byte) *Error {
	e := &Error{StatusCode: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header, c.cfg.Now())}
	var envelope struct {
		Error *struct {
			Code    int           `json:"code"`
			Message string        `json:"message"`
			Status  string        `json:"status"`
			Errors  []ErrorDetail `json:"errors"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &envelope); err != nil || envelope.Error == nil {
		e.Message = snippet(body)
		return e
	}
	g := envelope.Error
	e.Code, e.Message, e.Status, e.Errors = g.Code, g.Message, g.Status, g.Errors
	return e
}

// Error is a request Google refused, or that never reached it.
type Error struct {
	// StatusCode is the HTTP status, 0 when no answer came.
	StatusCode int
	// Code, Message and Status are Google's (Status as in "UNAUTHENTICATED"); Message is the
	// start of the answer when it was not Google's JSON.
	Code    int
	Message string
	Status  string
	// Errors are Google's details, whose Reason says what to do ("authError",
	// "rateLimitExceeded", "notFound").
	Errors []ErrorDetail
	// RetryAfter is how long Google asked to wait, when it said.
	RetryAfter time.Duration
	// Err is the transport or decoding failure, when that is what went wrong.
	Err error
}

// ErrorDetail is one entry of Google's error list.
type ErrorDetail struct {
	Domain       string `json:"domain"`
	Reason       string `json:"reason"`
	Message      string `json:"message"`
	Location     string `json:"location"`
	LocationType string `json:"locationType"`
}

func (e *Error) Error() string {
	msg := e.Message
	if e.Err != nil {
		if msg == "" {
			msg = e.Err.Error()
		} else {
			msg += ": " + e.Err.Error()
		}
	}
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	if r := e.Reason(); r != "" {
		msg += " (" + r + ")"
	}
	if e.StatusCode != 0 {
		return fmt.Sprintf("gcal: HTTP %d: %s", e.StatusCode, msg)
	}
	return "gcal: " + msg
}

func (e *Error) Unwrap() error { return e.Err }

// Reason is the first detail's reason, "" when Google gave none.
func (e *Error) Reason() string {
	if len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[0].Reason
}

// Retryable reports whether asking again may succeed: rate limited (429, or a 403 whose
// reason says so), a server failure, or no answer at all.
func (e *Error) Retryable() bool {
	return retryableStatus(e.StatusCode, e.Err) || e.rateLimited()
}

// rateLimited is Google's way of saying 429 with a 403.
func (e *Error) rateLimited() bool {
	if e.StatusCode != http.StatusForbidden {
		return false
	}
	for _, d := range e.Errors {
		if d.Reason == "rateLimitExceeded" || d.Reason == "userRateLimitExceeded" {
			return true
		}
	}
	return false
}
