package gcal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// TokenSource supplies OAuth 2.0 access tokens for the Calendar API.
type TokenSource interface {
	AccessToken(ctx context.Context) (string, error)
}

// invalidator is a TokenSource that can be told a token was refused, so the next call gets
// a fresh one instead of the cached one.
type invalidator interface {
	Invalidate(token string)
}

// StaticToken is a fixed access token, for tests and one-off tools: Google's access tokens
// expire within the hour, so a server wants a RefreshTokenSource.
type StaticToken string

var _ TokenSource = StaticToken("")

// AccessToken returns the token.
func (t StaticToken) AccessToken(context.Context) (string, error) {
	if strings.TrimSpace(string(t)) == "" {
		return "", fmt.Errorf("%w: the access token is empty", ErrInvalid)
	}
	return string(t), nil
}

// RefreshTokenConfig configures a RefreshTokenSource.
type RefreshTokenConfig struct {
	// ClientID and ClientSecret identify the OAuth client the refresh token was issued to.
	// Required.
	ClientID     string
	ClientSecret string
	// RefreshToken is the user's long-lived grant (scope
	// https://www.googleapis.com/auth/calendar.events or wider). Required.
	RefreshToken string
	// TokenURL is the token endpoint. Default "https://oauth2.googleapis.com/token".
	TokenURL string
	// HTTPClient carries the requests. Default http.DefaultClient.
	HTTPClient *http.Client
	// Timeout bounds each token request. Default 10s.
	Timeout time.Duration
	// ExpiryMargin is how long before its expiry a token is replaced, so that none expires
	// on the way to Google. Default 1m.
	ExpiryMargin time.Duration
	// Now reads the clock. Default time.Now.
	Now func() time.Time
}

// String keeps the secrets out of anything that prints the configuration.
func (c RefreshTokenConfig) String() string {
	return fmt.Sprintf("RefreshTokenConfig{TokenURL:%q ClientID:%q ClientSecret:%q RefreshToken:%q}",
		c.TokenURL, c.ClientID, redacted(c.ClientSecret), redacted(c.RefreshToken))
}

// LogValue keeps the secrets out of logs.
func (c RefreshTokenConfig) LogValue() slog.Value {
	return slog.GroupValue(slog.String("tokenURL", c.TokenURL), slog.String("clientID", c.ClientID),
		slog.String("clientSecret", redacted(c.ClientSecret)), slog.String("refreshToken", redacted(c.RefreshToken)))
}

// RefreshTokenSource trades a refresh token for access tokens at Google's token endpoint and
// keeps each until shortly before it expires. Concurrent callers share one refresh.
type RefreshTokenSource struct {
	cfg RefreshTokenConfig
	// refreshing holds one slot: whoever takes it asks the endpoint, the others wait for the
	// answer (or their context).
	refreshing chan struct{}

	mu           sync.Mutex
	token        string
	expiry       time.Time
	refreshToken string // Google may hand out a new one with an access token
}

var (
	_ TokenSource = (*RefreshTokenSource)(nil)
	_ invalidator = (*RefreshTokenSource)(nil)
)

// NewRefreshTokenSource checks the configuration and builds the source; it asks for no token
// until one is needed.
func NewRefreshTokenSource(cfg RefreshTokenConfig) (*RefreshTokenSource, error) {
	switch {
	case strings.TrimSpace(cfg.ClientID) == "":
		return nil, fmt.Errorf("%w: google oauth: the client ID is required", ErrInvalid)
	case strings.TrimSpace(cfg.ClientSecret) == "":
		return nil, fmt.Errorf("%w: google oauth: the client secret is required", ErrInvalid)
	case strings.TrimSpace(cfg.RefreshToken) == "":
		return nil, fmt.Errorf("%w: google oauth: the refresh token is required", ErrInvalid)
	}
	if cfg.TokenURL == "" {
		cfg.TokenURL = "https://oauth2.googleapis.com/token"
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.ExpiryMargin <= 0 {
		cfg.ExpiryMargin = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &RefreshTokenSource{cfg: cfg, refreshing: make(chan struct{}, 1), refreshToken: cfg.RefreshToken}, nil
}

// AccessToken returns the cached token while it is fresh, and otherwise a new one. A refusal
// by the endpoint is a *TokenError.
func (s *RefreshTokenSource) AccessToken(ctx context.Context) (string, error) {
	if tok, ok := s.cached(); ok {
		return tok, nil
	}
	select {
	case s.refreshing <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-s.refreshing }()
	// Whoever held the slot before may have just refreshed.
	if tok, ok := s.cached(); ok {
		return tok, nil
	}
	return s.refresh(ctx)
}

// Invalidate drops token from the cache if it is still the cached one: the API refused it,
// so it was revoked or expired early.
func (s *RefreshTokenSource) Invalidate(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token == token {
		s.token, s.expiry = "", time.Time{}
	}
}

func (s *RefreshTokenSource) cached() (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token == "" || !s.cfg.Now().Add(s.cfg.ExpiryMargin).Before(s.expiry) {
		return "", false
	}
	return s.token, true
}

func (s *RefreshTokenSource) refresh(ctx context.Context) (string, error) {
	s.mu.Lock()
	refreshToken := s.refreshToken
	s.mu.Unlock()
	form := url.Values{
		"grant_type":    {"refresh_token"},
		"client_id":     {s.cfg.ClientID},
		"client_secret": {s.cfg.ClientSecret},
		"refresh_token": {refreshToken},
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", &TokenError{Err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	asked := s.cfg.Now()
	resp, body, err := exchange(s.cfg.HTTPClient, req)
	if err != nil {
		e := &TokenError{Err: err}
		if resp != nil {
			e.StatusCode = resp.StatusCode
		}
		return "", e
	}
	if resp.StatusCode != http.StatusOK {
		e := &TokenError{StatusCode: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header, asked)}
		var wire struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if json.Unmarshal(body, &wire) == nil && wire.Error != "" {
			e.Code, e.Description = wire.Error, wire.Description
		} else {
			e.Description = snippet(body)
		}
		return "", e
	}
	var tok struct {
		AccessToken  string `json:"access_token"`
		ExpiresIn    int64  `json:"expires_in"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" {
		if err == nil {
			err = errors.New("no access_token")
		}
		return "", &TokenError{StatusCode: resp.StatusCode, Description: "unreadable answer", Err: err}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Counted from when it was asked for, so the time the answer took is not counted as
	// validity.
	s.token, s.expiry = tok.AccessToken, asked.Add(time.Duration(tok.ExpiresIn)*time.Second)
	if tok.RefreshToken != "" {
		s.refreshToken = tok.RefreshToken
	}
	return tok.AccessToken, nil
}

// TokenError is a token the endpoint refused to give, or a request that never reached it.
type TokenError struct {
	// StatusCode is the HTTP status, 0 when no answer came.
	StatusCode int
	// Code is the OAuth error ("invalid_grant": the refresh token was revoked or expired;
	// "invalid_client": wrong client ID or secret).
	Code string
	// Description is the endpoint's explanation, or the start of an answer that was not JSON.
	Description string
	// RetryAfter is how long the endpoint asked to wait, when it said.
	RetryAfter time.Duration
	// Err is the transport or decoding failure, when that is what went wrong.
	Err error
}

func (e *TokenError) Error() string {
	var parts []string
	for _, p := range []string{e.Code, e.Description} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	if e.Err != nil {
		parts = append(parts, e.Err.Error())
	}
	if len(parts) == 0 {
		parts = append(parts, http.StatusText(e.StatusCode))
	}
	msg := strings.Join(parts, ": ")
	if e.StatusCode != 0 {
		return fmt.Sprintf("google oauth: HTTP %d: %s", e.StatusCode, msg)
	}
	return "google oauth: " + msg
}

func (e *TokenError) Unwrap() error { return e.Err }

// Retryable reports whether asking again may succeed: rate limited, a server failure, or no
// answer at all. A revoked grant is not.
func (e *TokenError) Retryable() bool { return retryableStatus(e.StatusCode, e.Err) }
