package gcal_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/dartmouth-gw/dartmouth/agents/pa/internal/apitest"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents/pa/gcal"
)

const (
	accessToken = "ya29.static-token"
	// holidays is a real kind of calendar ID whose '#' must be escaped in the path.
	holidays     = "en.usa#holiday@group.v.calendar.google.com"
	holidaysPath = "/calendars/en.usa%23holiday@group.v.calendar.google.com/events"
)

// newCalendar is a client of f whose retries are apitest.Request instead of waited for.
func newCalendar(t *testing.T, f *apitest.FakeAPI, w *apitest.Waits, configure ...func(*gcal.Config)) *gcal.Client {
	t.Helper()
	cfg := gcal.Config{
		Tokens: gcal.StaticToken(accessToken), BaseURL: f.Srv.URL, HTTPClient: f.Srv.Client(),
		Retry: gcal.RetryPolicy{Sleep: w.Sleep}, Now: newClock().Now, Logger: slog.New(slog.DiscardHandler),
	}
	for _, c := range configure {
		c(&cfg)
	}
	c, err := gcal.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wantEvents compares events, instants by Equal and zones by name.
func wantEvents(t *testing.T, got, want []gcal.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if !g.Start.Equal(w.Start) || !g.End.Equal(w.End) || g.Start.Location().String() != w.Start.Location().String() || g.End.Location().String() != w.End.Location().String() {
			t.Errorf("event %d runs %s – %s, want %s – %s", i, g.Start, g.End, w.Start, w.End)
		}
		g.Start, g.End, w.Start, w.End = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if g != w {
			t.Errorf("event %d = %+v, want %+v", i, g, w)
		}
	}
}

func TestListEventsSendsTheDocumentedQueryAndFollowsPages(t *testing.T) {
	newYork, paris := zone(t, "America/New_York"), zone(t, "Europe/Paris")
	f := apitest.NewFakeAPI(t,
		apitest.Reply{Status: 200, Body: `{"kind":"calendar#events","summary":"Holidays","timeZone":"America/New_York",
			"nextPageToken":"page-2","items":[
			{"id":"ev1","status":"confirmed","htmlLink":"https://www.google.com/calendar/event?eid=ev1","summary":"Call with Paris",
			 "description":"Quarterly review","location":"Zoom",
			 "start":{"dateTime":"2025-03-07T15:00:00+01:00","timeZone":"Europe/Paris"},
			 "end":{"dateTime":"2025-03-07T16:00:00+01:00","timeZone":"Europe/Paris"}},
			{"id":"ev2","status":"confirmed","summary":"Mom's birthday","start":{"date":"2025-03-07"},"end":{"date":"2025-03-08"}}]}`},
		apitest.Reply{Status: 200, Body: `{"kind":"calendar#events","timeZone":"America/New_York","items":[
			{"id":"ev3","status":"cancelled","start":{"dateTime":"2025-03-07T10:00:00-05:00"},"end":{"dateTime":"2025-03-07T11:00:00-05:00"}},
			{"id":"ev4","status":"tentative","summary":"Dentist","start":{"dateTime":"2025-03-07T22:00:00Z"},"end":{"dateTime":"2025-03-07T22:30:00Z"}}]}`},
	)
	from := time.Date(2025, time.March, 7, 0, 0, 0, 0, newYork)
	events, err := newCalendar(t, f, &apitest.Waits{}).ListEvents(t.Context(), holidays, from, from.AddDate(0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	wantEvents(t, events, []gcal.Event{
		{
			ID: "ev1", Summary: "Call with Paris", Description: "Quarterly review", Location: "Zoom", TimeZone: "Europe/Paris",
			HTMLLink: "https://www.google.com/calendar/event?eid=ev1",
			Start:    time.Date(2025, time.March, 7, 15, 0, 0, 0, paris), End: time.Date(2025, time.March, 7, 16, 0, 0, 0, paris),
		},
		{
			ID: "ev2", Summary: "Mom's birthday", AllDay: true,
			Start: time.Date(2025, time.March, 7, 0, 0, 0, 0, newYork), End: time.Date(2025, time.March, 8, 0, 0, 0, 0, newYork),
		},
		{
			ID: "ev4", Summary: "Dentist",
			Start: time.Date(2025, time.March, 7, 17, 0, 0, 0, newYork), End: time.Date(2025, time.March, 7, 17, 30, 0, 0, newYork),
		},
	})
	got := f.Requests()
	if len(got) != 2 {
		t.Fatalf("%d requests, want 2 pages", len(got))
	}
	query := url.Values{
		"timeMin": {"2025-03-07T00:00:00-05:00"}, "timeMax": {"2025-03-08T00:00:00-05:00"},
		"singleEvents": {"true"}, "orderBy": {"startTime"}, "maxResults": {"250"},
	}
	for i, req := range got {
		if req.Method != http.MethodGet || req.Path != holidaysPath {
			t.Errorf("page %d: %s %s, want GET %s", i+1, req.Method, req.Path, holidaysPath)
		}
		apitest.WantHeader(t, req.Header, map[string]string{"Authorization": "Bearer " + accessToken})
		if i == 1 {
			query.Set("pageToken", "page-2")
		}
		if !reflect.DeepEqual(req.Query, query) {
			t.Errorf("page %d: query %v, want %v", i+1, req.Query, query)
		}
	}
}

func TestListEventsWithAnOpenRange(t *testing.T) {
	f := apitest.NewFakeAPI(t, apitest.Reply{Status: 200, Body: `{"items":[]}`})
	events, err := newCalendar(t, f, &apitest.Waits{}, func(c *gcal.Config) { c.PageSize = 2500 }).ListEvents(t.Context(), "primary", time.Time{}, time.Time{})
	if err != nil || len(events) != 0 {
		t.Fatalf("ListEvents = %v, %v; want no events", events, err)
	}
	req := f.Only(t)
	if want := (url.Values{"singleEvents": {"true"}, "orderBy": {"startTime"}, "maxResults": {"2500"}}); req.Path != "/calendars/primary/events" || !reflect.DeepEqual(req.Query, want) {
		t.Errorf("%s ? %v, want /calendars/primary/events ? %v", req.Path, req.Query, want)
	}
}

func TestListEventsRefusesBadInputBeforeAsking(t *testing.T) {
	at := time.Date(2025, time.March, 7, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		calendarID string
		from, to   time.Time
		want       string
	}{
		{"no calendar", " ", at, at.Add(time.Hour), "no calendar ID"},
		{"range backwards", "primary", at, at.Add(-time.Hour), "the range ends"},
		{"empty range", "primary", at, at, "the range ends"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := apitest.NewFakeAPI(t, apitest.Reply{Status: 200, Body: `{}`})
			_, err := newCalendar(t, f, &apitest.Waits{}).ListEvents(t.Context(), tc.calendarID, tc.from, tc.to)
			if !errors.Is(err, gcal.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want ErrInvalid saying %q", err, tc.want)
			}
			if n := len(f.Requests()); n != 0 {
				t.Errorf("%d requests for bad input", n)
			}
		})
	}
}

func TestListEventsStopsAnEndlessListing(t *testing.T) {
	t.Run("the same page token again", func(t *testing.T) {
		f := apitest.NewFakeAPI(t, apitest.Reply{Status: 200, Body: `{"nextPageToken":"again","items":[]}`})
		_, err := newCalendar(t, f, &apitest.Waits{}).ListEvents(t.Context(), "primary", time.Time{}, time.Time{})
		if err == nil || !strings.Contains(err.Error(), "did not end after 2 pages") {
			t.Errorf("err = %v, want the listing stopped", err)
		}
		if n := len(f.Requests()); n != 2 {
			t.Errorf("%d requests, want 2", n)
		}
	})
	t.Run("more pages than allowed", func(t *testing.T) {
		var pages atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"nextPageToken":"p%d","items":[]}`, pages.Add(1))
		}))
		t.Cleanup(srv.Close)
		c, err := gcal.New(gcal.Config{Tokens: gcal.StaticToken(accessToken), BaseURL: srv.URL, HTTPClient: srv.Client(), MaxPages: 3})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.ListEvents(t.Context(), "primary", time.Time{}, time.Time{}); err == nil || !strings.Contains(err.Error(), "did not end after 3 pages") {
			t.Errorf("err = %v, want the listing stopped", err)
		}
		if n := pages.Load(); n != 3 {
			t.Errorf("%d requests, want 3", n)
		}
	})
}

func TestInsertEventSendsTheEvent(t *testing.T) {
	newYork := zone(t, "America/New_York")
	five := time.Date(2025, time.March, 7, 17, 0, 0, 0, newYork)
	friday := time.Date(2025, time.March, 7, 0, 0, 0, 0, newYork)
	for _, tc := range []struct {
		name  string
		event gcal.Event
		want  string
	}{
		{
			"timed, in a zone",
			gcal.Event{Summary: "Call mom", Description: "Her birthday", Location: "Home", Start: five, End: five.Add(30 * time.Minute), TimeZone: "America/New_York"},
			`{"summary":"Call mom","description":"Her birthday","location":"Home",
			  "start":{"dateTime":"2025-03-07T17:00:00-05:00","timeZone":"America/New_York"},
			  "end":{"dateTime":"2025-03-07T17:30:00-05:00","timeZone":"America/New_York"}}`,
		},
		{
			"timed without an end lasts an hour",
			gcal.Event{ID: "dartmouth0001", Summary: "Standup", Start: five.UTC()},
			`{"id":"dartmouth0001","summary":"Standup","start":{"dateTime":"2025-03-07T22:00:00Z"},"end":{"dateTime":"2025-03-07T23:00:00Z"}}`,
		},
		{
			"all day, one day",
			gcal.Event{Summary: "Mom's birthday", Start: friday, AllDay: true},
			`{"summary":"Mom's birthday","start":{"date":"2025-03-07"},"end":{"date":"2025-03-08"}}`,
		},
		{
			"all day, ending during Sunday",
			gcal.Event{Summary: "Trip", Start: friday.Add(9 * time.Hour), End: friday.AddDate(0, 0, 2).Add(12 * time.Hour), AllDay: true, TimeZone: "America/New_York"},
			`{"summary":"Trip","start":{"date":"2025-03-07","timeZone":"America/New_York"},"end":{"date":"2025-03-10","timeZone":"America/New_York"}}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Google answers with the event as stored: the request plus its ID and link.
			f := apitest.NewFakeAPI(t, apitest.Reply{Status: 200, Body: strings.Replace(tc.want, "{", `{"kind":"calendar#event","id":"stored1","status":"confirmed","htmlLink":"https://www.google.com/calendar/event?eid=stored1",`, 1)})
			stored, err := newCalendar(t, f, &apitest.Waits{}).InsertEvent(t.Context(), holidays, tc.event)
			if err != nil {
				t.Fatal(err)
			}
			req := f.Only(t)
			if req.Method != http.MethodPost || req.Path != holidaysPath || len(req.Query) != 0 {
				t.Errorf("%s %s?%v, want POST %s", req.Method, req.Path, req.Query, holidaysPath)
			}
			apitest.WantHeader(t, req.Header, map[string]string{"Authorization": "Bearer " + accessToken, "Content-Type": "application/json"})
			apitest.WantJSON(t, req.Body, tc.want)

			want := tc.event
			want.HTMLLink = "https://www.google.com/calendar/event?eid=stored1"
			if want.ID == "" {
				want.ID = "stored1"
			}
			switch {
			case want.AllDay && want.End.IsZero():
				want.End = friday.AddDate(0, 0, 1)
			case want.AllDay:
				want.Start, want.End = friday, friday.AddDate(0, 0, 3)
			case want.End.IsZero():
				want.End = want.Start.Add(time.Hour)
			}
			wantEvents(t, []gcal.Event{stored}, []gcal.Event{want})
		})
	}
}

func TestInsertEventRefusesBadInputBeforeSending(t *testing.T) {
	at := time.Date(2025, time.March, 7, 17, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		calendarID string
		event      gcal.Event
		want       string
	}{
		{"no calendar", "", gcal.Event{Summary: "x", Start: at}, "no calendar ID"},
		{"no start", "primary", gcal.Event{Summary: "x"}, "no start"},
		{"ends before it starts", "primary", gcal.Event{Summary: "x", Start: at, End: at.Add(-time.Minute)}, "ends (2025-03-07T16:59:00Z) before it starts"},
		{"ends as it starts", "primary", gcal.Event{Summary: "x", Start: at, End: at}, "before it starts"},
		{"all day, ending before it starts", "primary", gcal.Event{Summary: "x", Start: at, End: at.AddDate(0, 0, -1), AllDay: true}, "before it starts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := apitest.NewFakeAPI(t, apitest.Reply{Status: 200, Body: `{}`})
			_, err := newCalendar(t, f, &apitest.Waits{}).InsertEvent(t.Context(), tc.calendarID, tc.event)
			if !errors.Is(err, gcal.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want ErrInvalid saying %q", err, tc.want)
			}
			if n := len(f.Requests()); n != 0 {
				t.Errorf("%d requests for bad input", n)
			}
		})
	}
}

// googleError is Google's error envelope.
func googleError(status int, statusName, message, reason string, header map[string]string) apitest.Reply {
	return apitest.Reply{Status: status, Header: header, Body: fmt.Sprintf(`{"error":{"code":%d,"message":%q,"errors":[{"message":%q,"domain":"global","reason":%q}],"status":%q}}`,
		status, message, message, reason, statusName)}
}

func TestCalendarFailuresAndRetries(t *testing.T) {
	event := gcal.Event{Summary: "x", Start: time.Date(2025, time.March, 7, 17, 0, 0, 0, time.UTC)}
	listed := apitest.Reply{Status: 200, Body: `{"items":[{"id":"a","start":{"date":"2025-03-07"},"end":{"date":"2025-03-08"}}]}`}
	inserted := apitest.Reply{Status: 200, Body: `{"id":"a","start":{"dateTime":"2025-03-07T17:00:00Z"},"end":{"dateTime":"2025-03-07T18:00:00Z"}}`}
	for _, tc := range []struct {
		name         string
		insert       bool // else list
		replies      []apitest.Reply
		wantRequests int
		wantWaits    []time.Duration
		// wantErr nil means success in the end; its Err is checked for presence only.
		wantErr   *gcal.Error
		wantCause bool
		retryable bool
	}{
		{
			name:         "401 with a fixed token is reported at once",
			replies:      []apitest.Reply{googleError(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.", "authError", nil)},
			wantRequests: 1,
			wantErr: &gcal.Error{StatusCode: 401, Code: 401, Status: "UNAUTHENTICATED", Message: "Request had invalid authentication credentials.",
				Errors: []gcal.ErrorDetail{{Domain: "global", Reason: "authError", Message: "Request had invalid authentication credentials."}}},
		},
		{
			name:         "404 is not retried",
			replies:      []apitest.Reply{googleError(404, "NOT_FOUND", "Not Found", "notFound", nil)},
			wantRequests: 1,
			wantErr: &gcal.Error{StatusCode: 404, Code: 404, Status: "NOT_FOUND", Message: "Not Found",
				Errors: []gcal.ErrorDetail{{Domain: "global", Reason: "notFound", Message: "Not Found"}}},
		},
		{
			name:         "a rate-limit 403 is retried",
			replies:      []apitest.Reply{googleError(403, "PERMISSION_DENIED", "Rate Limit Exceeded", "rateLimitExceeded", nil), listed},
			wantRequests: 2,
			wantWaits:    []time.Duration{time.Second},
		},
		{
			name:         "429 waits as long as Retry-After says",
			replies:      []apitest.Reply{googleError(429, "RESOURCE_EXHAUSTED", "Too many requests", "rateLimitExceeded", map[string]string{"Retry-After": "5"}), listed},
			wantRequests: 2,
			wantWaits:    []time.Duration{5 * time.Second},
		},
		{
			name:         "429 asking for too long a wait gives up at once",
			replies:      []apitest.Reply{googleError(429, "RESOURCE_EXHAUSTED", "Too many requests", "rateLimitExceeded", map[string]string{"Retry-After": "3600"})},
			wantRequests: 1,
			wantErr: &gcal.Error{StatusCode: 429, Code: 429, Status: "RESOURCE_EXHAUSTED", Message: "Too many requests", RetryAfter: time.Hour,
				Errors: []gcal.ErrorDetail{{Domain: "global", Reason: "rateLimitExceeded", Message: "Too many requests"}}},
			retryable: true,
		},
		{
			name:         "500 on a listing is retried with doubling backoff, then reported",
			replies:      []apitest.Reply{googleError(500, "INTERNAL", "Backend Error", "backendError", nil)},
			wantRequests: 3,
			wantWaits:    []time.Duration{time.Second, 2 * time.Second},
			wantErr: &gcal.Error{StatusCode: 500, Code: 500, Status: "INTERNAL", Message: "Backend Error",
				Errors: []gcal.ErrorDetail{{Domain: "global", Reason: "backendError", Message: "Backend Error"}}},
			retryable: true,
		},
		{
			name:         "a proxy's HTML page",
			replies:      []apitest.Reply{{Status: 502, Body: "<html>\n  <b>Bad Gateway</b>\n</html>"}},
			wantRequests: 3,
			wantWaits:    []time.Duration{time.Second, 2 * time.Second},
			wantErr:      &gcal.Error{StatusCode: 502, Message: "<html> <b>Bad Gateway</b> </html>"},
			retryable:    true,
		},
		{
			name:         "a listing that is not JSON",
			replies:      []apitest.Reply{{Status: 200, Body: `{"items":[`}},
			wantRequests: 1,
			wantErr:      &gcal.Error{StatusCode: 200, Message: "unreadable answer"},
			wantCause:    true,
		},
		{
			name:         "an event with a broken time",
			replies:      []apitest.Reply{{Status: 200, Body: `{"items":[{"id":"a","start":{"dateTime":"tomorrow"},"end":{"dateTime":"later"}}]}`}},
			wantRequests: 1,
			wantErr:      &gcal.Error{StatusCode: 200, Message: "unreadable event"},
			wantCause:    true,
		},
		{
			name:         "500 on an insert is not retried, to never duplicate an event",
			insert:       true,
			replies:      []apitest.Reply{googleError(500, "INTERNAL", "Backend Error", "backendError", nil), inserted},
			wantRequests: 1,
			wantErr: &gcal.Error{StatusCode: 500, Code: 500, Status: "INTERNAL", Message: "Backend Error",
				Errors: []gcal.ErrorDetail{{Domain: "global", Reason: "backendError", Message: "Backend Error"}}},
			retryable: true,
		},
		{
			name:         "429 on an insert is retried",
			insert:       true,
			replies:      []apitest.Reply{googleError(429, "RESOURCE_EXHAUSTED", "Too many requests", "rateLimitExceeded", map[string]string{"Retry-After": "2"}), inserted},
			wantRequests: 2,
			wantWaits:    []time.Duration{2 * time.Second},
		},
		{
			name:         "a rate-limit 403 on an insert is retried",
			insert:       true,
			replies:      []apitest.Reply{googleError(403, "PERMISSION_DENIED", "User Rate Limit Exceeded", "userRateLimitExceeded", nil), inserted},
			wantRequests: 2,
			wantWaits:    []time.Duration{time.Second},
		},
		{
			name:         "a forbidden insert is not retried",
			insert:       true,
			replies:      []apitest.Reply{googleError(403, "PERMISSION_DENIED", "Forbidden", "forbidden", nil)},
			wantRequests: 1,
			wantErr: &gcal.Error{StatusCode: 403, Code: 403, Status: "PERMISSION_DENIED", Message: "Forbidden",
				Errors: []gcal.ErrorDetail{{Domain: "global", Reason: "forbidden", Message: "Forbidden"}}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := apitest.NewFakeAPI(t, tc.replies...)
			w := &apitest.Waits{}
			c := newCalendar(t, f, w)
			var err error
			if tc.insert {
				var stored gcal.Event
				stored, err = c.InsertEvent(t.Context(), "primary", event)
				if err == nil && stored.ID != "a" {
					t.Errorf("stored %+v, want the answer's event", stored)
				}
			} else {
				var events []gcal.Event
				events, err = c.ListEvents(t.Context(), "primary", time.Time{}, time.Time{})
				if err == nil && len(events) != 1 {
					t.Errorf("listed %+v, want the answer's event", events)
				}
			}
			if n := len(f.Requests()); n != tc.wantRequests {
				t.Errorf("%d requests, want %d", n, tc.wantRequests)
			}
			w.Want(t, tc.wantWaits...)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ae *gcal.Error
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want a *gcal.Error", err)
			}
			got := *ae
			if (got.Err != nil) != tc.wantCause {
				t.Errorf("cause %v, want one: %v", got.Err, tc.wantCause)
			}
			got.Err = nil
			if !reflect.DeepEqual(&got, tc.wantErr) {
				t.Errorf("error %#v\nwant %#v", &got, tc.wantErr)
			}
			if ae.Retryable() != tc.retryable {
				t.Errorf("Retryable() = %v, want %v", ae.Retryable(), tc.retryable)
			}
		})
	}
}

func TestCalendarErrorMessages(t *testing.T) {
	for _, tc := range []struct {
		err  *gcal.Error
		want string
	}{
		{&gcal.Error{StatusCode: 401, Message: "Invalid Credentials", Errors: []gcal.ErrorDetail{{Reason: "authError"}}}, "gcal: HTTP 401: Invalid Credentials (authError)"},
		{&gcal.Error{StatusCode: 503}, "gcal: HTTP 503: Service Unavailable"},
		{&gcal.Error{StatusCode: 200, Message: "unreadable answer", Err: errors.New("unexpected end of JSON input")}, "gcal: HTTP 200: unreadable answer: unexpected end of JSON input"},
		{&gcal.Error{Err: context.Canceled}, "gcal: context canceled"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

func TestCalendarStopsWhenTheContextEnds(t *testing.T) {
	for _, insert := range []bool{false, true} {
		t.Run(fmt.Sprintf("insert=%v", insert), func(t *testing.T) {
			srv, arrived := apitest.Hanging(t)
			c, err := gcal.New(gcal.Config{Tokens: gcal.StaticToken(accessToken), BaseURL: srv.URL, HTTPClient: srv.Client(),
				Retry: gcal.RetryPolicy{Sleep: func(context.Context, time.Duration) error { t.Error("a cancelled request was retried"); return nil }}})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			go func() {
				<-arrived
				cancel()
			}()
			if insert {
				_, err = c.InsertEvent(ctx, "primary", gcal.Event{Summary: "x", Start: time.Now()})
			} else {
				_, err = c.ListEvents(ctx, "primary", time.Time{}, time.Time{})
			}
			var ae *gcal.Error
			if !errors.Is(err, context.Canceled) || !errors.As(err, &ae) || ae.StatusCode != 0 || ae.Retryable() {
				t.Fatalf("err = %#v, want a non-retryable *gcal.Error wrapping context.Canceled", err)
			}
		})
	}
}

func TestNewChecksItsConfiguration(t *testing.T) {
	if _, err := gcal.New(gcal.Config{}); !errors.Is(err, gcal.ErrInvalid) {
		t.Errorf("New without tokens: err = %v, want ErrInvalid", err)
	}
	f := apitest.NewFakeAPI(t, apitest.Reply{Status: 200, Body: `{}`})
	_, err := newCalendar(t, f, &apitest.Waits{}, func(c *gcal.Config) { c.Tokens = gcal.StaticToken("") }).ListEvents(t.Context(), "primary", time.Time{}, time.Time{})
	if !errors.Is(err, gcal.ErrInvalid) {
		t.Errorf("an empty static token: err = %v, want ErrInvalid", err)
	}
	if n := len(f.Requests()); n != 0 {
		t.Errorf("%d requests without a token", n)
	}
}
