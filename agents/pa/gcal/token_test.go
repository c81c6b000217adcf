package gcal_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/dartmouth-gw/dartmouth/agents/pa/internal/apitest"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents/pa/gcal"
)

const (
	clientID     = "1234-abc.apps.googleusercontent.com"
	clientSecret = "GOCSPX-secret-do-not-print"
	refreshToken = "1//refresh-token-do-not-print"
)

// issued is the token endpoint's answer with an access token valid for an hour.
func issued(token string) apitest.Reply {
	return apitest.Reply{Status: 200, Body: fmt.Sprintf(`{"access_token":%q,"expires_in":3599,"scope":"https://www.googleapis.com/auth/calendar.events","token_type":"Bearer"}`, token)}
}

func newTokenSource(t *testing.T, f *apitest.FakeAPI, clk *clock) *gcal.RefreshTokenSource {
	t.Helper()
	s, err := gcal.NewRefreshTokenSource(gcal.RefreshTokenConfig{
		ClientID: clientID, ClientSecret: clientSecret, RefreshToken: refreshToken,
		TokenURL: f.Srv.URL + "/token", HTTPClient: f.Srv.Client(), Now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func accessTokenOf(t *testing.T, s gcal.TokenSource) string {
	t.Helper()
	tok, err := s.AccessToken(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestRefreshTokenSourcePostsTheRefreshGrantAndCachesTheToken(t *testing.T) {
	f := apitest.NewFakeAPI(t, issued("ya29.one"), issued("ya29.two"))
	clk := newClock()
	s := newTokenSource(t, f, clk)

	if tok := accessTokenOf(t, s); tok != "ya29.one" {
		t.Fatalf("token %q, want ya29.one", tok)
	}
	req := f.Only(t)
	if req.Method != http.MethodPost || req.Path != "/token" {
		t.Errorf("%s %s, want POST /token", req.Method, req.Path)
	}
	apitest.WantHeader(t, req.Header, map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Authorization": ""})
	want := url.Values{"grant_type": {"refresh_token"}, "client_id": {clientID}, "client_secret": {clientSecret}, "refresh_token": {refreshToken}}
	if got := req.Form(t); !reflect.DeepEqual(got, want) {
		t.Errorf("form %v, want %v", got, want)
	}

	// Valid for 3599s; replaced from one minute before it expires.
	clk.advance(3599*time.Second - time.Minute - time.Second)
	if tok := accessTokenOf(t, s); tok != "ya29.one" || len(f.Requests()) != 1 {
		t.Errorf("token %q after %d requests, want the cached ya29.one", tok, len(f.Requests()))
	}
	clk.advance(time.Second)
	if tok := accessTokenOf(t, s); tok != "ya29.two" || len(f.Requests()) != 2 {
		t.Errorf("token %q after %d requests, want a new ya29.two", tok, len(f.Requests()))
	}
}

func TestRefreshTokenSourceAdoptsARotatedRefreshToken(t *testing.T) {
	f := apitest.NewFakeAPI(t, apitest.Reply{Status: 200, Body: `{"access_token":"ya29.one","expires_in":60,"refresh_token":"1//rotated"}`}, issued("ya29.two"))
	clk := newClock()
	s := newTokenSource(t, f, clk)
	accessTokenOf(t, s)
	// A token that lives no longer than the margin is never cached.
	accessTokenOf(t, s)
	got := f.Requests()
	if len(got) != 2 {
		t.Fatalf("%d token requests, want 2", len(got))
	}
	if rt := got[1].Form(t).Get("refresh_token"); rt != "1//rotated" {
		t.Errorf("second refresh used %q, want the rotated token", rt)
	}
}

func TestRefreshTokenSourceCallersShareOneRefresh(t *testing.T) {
	f := apitest.NewFakeAPI(t, issued("ya29.one"), issued("ya29.two"))
	s := newTokenSource(t, f, newClock())
	var wg sync.WaitGroup
	tokens := make([]string, 8)
	for i := range tokens {
		wg.Go(func() {
			tok, err := s.AccessToken(t.Context())
			if err != nil {
				t.Error(err)
			}
			tokens[i] = tok
		})
	}
	wg.Wait()
	f.Only(t)
	for i, tok := range tokens {
		if tok != "ya29.one" {
			t.Errorf("caller %d got %q, want ya29.one", i, tok)
		}
	}
}

func TestRefreshTokenSourceFailures(t *testing.T) {
	for _, tc := range []struct {
		name      string
		reply     apitest.Reply
		want      gcal.TokenError
		wantCause bool
		retryable bool
	}{
		{
			name:  "revoked grant",
			reply: apitest.Reply{Status: 400, Body: `{"error":"invalid_grant","error_description":"Token has been expired or revoked."}`},
			want:  gcal.TokenError{StatusCode: 400, Code: "invalid_grant", Description: "Token has been expired or revoked."},
		},
		{
			name:  "wrong client",
			reply: apitest.Reply{Status: 401, Body: `{"error":"invalid_client","error_description":"Unauthorized"}`},
			want:  gcal.TokenError{StatusCode: 401, Code: "invalid_client", Description: "Unauthorized"},
		},
		{
			name:      "rate limited",
			reply:     apitest.Reply{Status: 429, Header: map[string]string{"Retry-After": "4"}, Body: `{"error":"rate_limit_exceeded"}`},
			want:      gcal.TokenError{StatusCode: 429, Code: "rate_limit_exceeded", RetryAfter: 4 * time.Second},
			retryable: true,
		},
		{
			name:      "server failure that is not JSON",
			reply:     apitest.Reply{Status: 503, Body: "<html>Service Unavailable</html>"},
			want:      gcal.TokenError{StatusCode: 503, Description: "<html>Service Unavailable</html>"},
			retryable: true,
		},
		{
			name:      "unreadable token",
			reply:     apitest.Reply{Status: 200, Body: `{"access_token":`},
			want:      gcal.TokenError{StatusCode: 200, Description: "unreadable answer"},
			wantCause: true,
		},
		{
			name:      "no token in the answer",
			reply:     apitest.Reply{Status: 200, Body: `{"token_type":"Bearer"}`},
			want:      gcal.TokenError{StatusCode: 200, Description: "unreadable answer"},
			wantCause: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := apitest.NewFakeAPI(t, tc.reply)
			_, err := newTokenSource(t, f, newClock()).AccessToken(t.Context())
			var te *gcal.TokenError
			if !errors.As(err, &te) {
				t.Fatalf("err = %v, want a *TokenError", err)
			}
			got := *te
			if (got.Err != nil) != tc.wantCause {
				t.Errorf("cause %v, want one: %v", got.Err, tc.wantCause)
			}
			got.Err = nil
			if got != tc.want {
				t.Errorf("error %+v, want %+v", got, tc.want)
			}
			if te.Retryable() != tc.retryable {
				t.Errorf("Retryable() = %v, want %v", te.Retryable(), tc.retryable)
			}
			if !strings.HasPrefix(err.Error(), fmt.Sprintf("google oauth: HTTP %d: ", tc.want.StatusCode)) {
				t.Errorf("message %q does not name the status", err)
			}
		})
	}
}

func TestRefreshTokenSourceStopsWhenTheContextEnds(t *testing.T) {
	srv, arrived := apitest.Hanging(t)
	s, err := gcal.NewRefreshTokenSource(gcal.RefreshTokenConfig{ClientID: clientID, ClientSecret: clientSecret, RefreshToken: refreshToken, TokenURL: srv.URL, HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-arrived
		cancel()
	}()
	var te *gcal.TokenError
	if _, err := s.AccessToken(ctx); !errors.Is(err, context.Canceled) || !errors.As(err, &te) || te.Retryable() {
		t.Fatalf("err = %v, want a non-retryable *TokenError wrapping context.Canceled", err)
	}
}

func TestNewRefreshTokenSourceChecksItsConfiguration(t *testing.T) {
	for _, tc := range []struct {
		cfg  gcal.RefreshTokenConfig
		want string
	}{
		{gcal.RefreshTokenConfig{ClientSecret: "s", RefreshToken: "r"}, "client ID is required"},
		{gcal.RefreshTokenConfig{ClientID: "c", RefreshToken: "r"}, "client secret is required"},
		{gcal.RefreshTokenConfig{ClientID: "c", ClientSecret: "s"}, "refresh token is required"},
	} {
		if _, err := gcal.NewRefreshTokenSource(tc.cfg); !errors.Is(err, gcal.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want ErrInvalid saying %q", err, tc.want)
		}
	}
}

func TestRefreshTokenConfigKeepsTheSecrets(t *testing.T) {
	cfg := gcal.RefreshTokenConfig{ClientID: clientID, ClientSecret: clientSecret, RefreshToken: refreshToken}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "google", cfg)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "google", cfg)
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), logged.String()} {
		if strings.Contains(s, clientSecret) || strings.Contains(s, refreshToken) {
			t.Errorf("a secret shows in %q", s)
		}
	}
}

func TestCalendarRenewsATokenTheAPIRefuses(t *testing.T) {
	unauthorized := googleError(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.", "authError", nil)
	for _, tc := range []struct {
		name           string
		calendar       []apitest.Reply
		wantAuth       []string
		wantTokenCalls int
		wantStatus     int // 0: success
	}{
		{"a revoked token is replaced once", []apitest.Reply{unauthorized, {Status: 200, Body: `{"items":[]}`}}, []string{"Bearer ya29.one", "Bearer ya29.two"}, 2, 0},
		{"a second refusal is reported", []apitest.Reply{unauthorized}, []string{"Bearer ya29.one", "Bearer ya29.two"}, 2, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tokens := apitest.NewFakeAPI(t, issued("ya29.one"), issued("ya29.two"))
			cal := apitest.NewFakeAPI(t, tc.calendar...)
			c := newCalendar(t, cal, &apitest.Waits{}, func(c *gcal.Config) { c.Tokens = newTokenSource(t, tokens, newClock()) })
			_, err := c.ListEvents(t.Context(), "primary", time.Time{}, time.Time{})
			var ae *gcal.Error
			switch {
			case tc.wantStatus == 0 && err != nil:
				t.Fatal(err)
			case tc.wantStatus != 0 && (!errors.As(err, &ae) || ae.StatusCode != tc.wantStatus):
				t.Fatalf("err = %v, want HTTP %d", err, tc.wantStatus)
			}
			var auth []string
			for _, r := range cal.Requests() {
				auth = append(auth, r.Header.Get("Authorization"))
			}
			if !reflect.DeepEqual(auth, tc.wantAuth) {
				t.Errorf("calendar saw %v, want %v", auth, tc.wantAuth)
			}
			if n := len(tokens.Requests()); n != tc.wantTokenCalls {
				t.Errorf("%d token requests, want %d", n, tc.wantTokenCalls)
			}
		})
	}
}

func TestATokenFailureIsRetriedEvenForAnInsert(t *testing.T) {
	tokens := apitest.NewFakeAPI(t, apitest.Reply{Status: 503, Body: "busy"}, issued("ya29.one"))
	cal := apitest.NewFakeAPI(t, apitest.Reply{Status: 200, Body: `{"id":"a","start":{"dateTime":"2025-03-07T17:00:00Z"},"end":{"dateTime":"2025-03-07T18:00:00Z"}}`})
	w := &apitest.Waits{}
	c := newCalendar(t, cal, w, func(c *gcal.Config) { c.Tokens = newTokenSource(t, tokens, newClock()) })
	if _, err := c.InsertEvent(t.Context(), "primary", gcal.Event{Summary: "x", Start: time.Date(2025, time.March, 7, 17, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	w.Want(t, time.Second)
	apitest.WantHeader(t, cal.Only(t).Header, map[string]string{"Authorization": "Bearer ya29.one"})
	if len(tokens.Requests()) != 2 {
		t.Errorf("%d token requests, want 2", len(tokens.Requests()))
	}
}

func TestATokenRefusalIsNotRetried(t *testing.T) {
	tokens := apitest.NewFakeAPI(t, apitest.Reply{Status: 400, Body: `{"error":"invalid_grant","error_description":"Bad Request"}`})
	cal := apitest.NewFakeAPI(t, apitest.Reply{Status: 200, Body: `{"items":[]}`})
	w := &apitest.Waits{}
	c := newCalendar(t, cal, w, func(c *gcal.Config) { c.Tokens = newTokenSource(t, tokens, newClock()) })
	_, err := c.ListEvents(t.Context(), "primary", time.Time{}, time.Time{})
	var te *gcal.TokenError
	if !errors.As(err, &te) || te.Code != "invalid_grant" || !strings.HasPrefix(err.Error(), "gcal: access token: google oauth: HTTP 400: invalid_grant") {
		t.Fatalf("err = %v, want the invalid_grant", err)
	}
	w.Want(t)
	if n := len(cal.Requests()); n != 0 {
		t.Errorf("%d calendar requests without a token", n)
	}
}
