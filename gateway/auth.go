package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/session"
	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"
)

// Authentication.
//
// In "keys" mode every request under /api/ and /v1/ names its caller with an API key
// (`Authorization: Bearer dm_…` or `X-API-Key: dm_…`) or with a short-lived session token
// minted from a key by POST /api/v2/auth/token, so the long-lived key never reaches a browser
// or a phone. Tokens, and only tokens, may also come as `?token=` where a client cannot set
// headers (a browser's WebSocket). The caller's user owns everything the request touches:
// a body or query naming another user is refused, and sessions are looked up under the
// caller's user, so another user's session id is "not found".
//
// In "open" mode (the default, for a laptop) nothing is checked and the body's userId is
// believed, as the gateway logs loudly at start.
//
// Operations endpoints (costs, metrics, dashboard) take the admin key, in both modes, through
// requireAdmin. Health checks and static pages are always public.

// Authentication modes (AuthConfig.Mode).
const (
	AuthOpen = "open"
	AuthKeys = "keys"
)

// Error codes of authentication.
const (
	CodeUnauthorized = "unauthorized"
	CodeTokenExpired = "token_expired"
	CodeForbidden    = "forbidden"
)

// KeyStore finds the API key a request presents; session.SQLStore implements it.
type KeyStore interface {
	// LookupKey returns the key's record: an error matching session.ErrNotFound for an
	// unknown key, session.ErrKeyRevoked for a revoked one.
	LookupKey(ctx context.Context, plaintext string) (session.Key, error)
}

var _ KeyStore = (*session.SQLStore)(nil)

// AuthConfig configures authentication.
type AuthConfig struct {
	// Mode is AuthOpen (anyone may call, as any user) or AuthKeys. Default AuthOpen.
	Mode string
	// Keys looks API keys up. Required in keys mode; in open mode, when set, a user key sent
	// to an operations endpoint is told it is not the admin key.
	Keys KeyStore
	// AdminKey opens the operations endpoints (requireAdmin). At least 16 characters. Default
	// none: in keys mode the operations endpoints are then refused to everyone; in open mode
	// they are open like everything else.
	AdminKey string
	// TokenSecret signs session tokens (HS256); at least 32 bytes, the same on every replica.
	// Default: random per process, so tokens stop working on restart and on other replicas.
	TokenSecret []byte
	// TokenTTL is how long a session token lives. Default 15 minutes.
	TokenTTL time.Duration
	// Clock dates tokens and checks their expiry. Default session.SystemClock.
	Clock session.Clock
}

// Caller is who made an authenticated request.
type Caller struct {
	// UserID owns what the request touches; empty for the admin.
	UserID string
	// Plan picks the rate limits and voice tiers.
	Plan string
	// KeyID is the API key used, or the one the token was minted from.
	KeyID string
	// Admin is set for the admin key and the tokens minted from it.
	Admin bool
	// Token is set when the request came with a session token rather than a key.
	Token bool
}

type callerContextKey struct{}

// CallerFromContext returns the caller the gateway authenticated; false in open mode and on
// public routes.
func CallerFromContext(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerContextKey{}).(Caller)
	return c, ok
}

func withCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerContextKey{}, c)
}

const (
	tokenIssuer     = "dartmouth"
	defaultTokenTTL = 15 * time.Minute
	minSecretBytes  = 32
	minAdminKeyLen  = 16
	// tokenQueryParam carries a session token where headers cannot be set.
	tokenQueryParam = "token"
)

// authState is the Server's resolved authentication.
type authState struct {
	mode     string
	keys     KeyStore
	adminSum *[sha256.Size]byte // nil: no admin key
	secret   []byte
	ttl      time.Duration
	clock    session.Clock
	parser   *jwt.Parser
}

func newAuthState(cfg AuthConfig, log *slog.Logger) (*authState, error) {
	a := &authState{mode: cfg.Mode, keys: cfg.Keys, ttl: cfg.TokenTTL, clock: cfg.Clock, secret: cfg.TokenSecret}
	if a.mode == "" {
		a.mode = AuthOpen
	}
	if a.mode != AuthOpen && a.mode != AuthKeys {
		return nil, fmt.Errorf("gateway: auth mode %q: want %q or %q", cfg.Mode, AuthOpen, AuthKeys)
	}
	if a.mode == AuthKeys && a.keys == nil {
		return nil, errors.New("gateway: auth mode keys needs a key store")
	}
	if cfg.AdminKey != "" {
		if len(cfg.AdminKey) < minAdminKeyLen {
			return nil, fmt.Errorf("gateway: the admin key must be at least %d characters (try: openssl rand -hex 32)", minAdminKeyLen)
		}
		sum := sha256.Sum256([]byte(cfg.AdminKey))
		a.adminSum = &sum
	}
	if len(a.secret) == 0 {
		a.secret = make([]byte, minSecretBytes)
		_, _ = rand.Read(a.secret) // crypto/rand.Read never fails on supported platforms
		if a.mode == AuthKeys {
			log.Warn("session tokens are signed with a random per-process secret: they stop working when this process restarts and are refused by other replicas; set a shared token secret (DARTMOUTH_JWT_SECRET) to keep them")
		}
	} else if len(a.secret) < minSecretBytes {
		return nil, fmt.Errorf("gateway: the token secret must be at least %d bytes", minSecretBytes)
	}
	if a.ttl <= 0 {
		a.ttl = defaultTokenTTL
	}
	if a.clock == nil {
		a.clock = session.SystemClock{}
	}
	a.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), // never "none", never a public-key algorithm
		jwt.WithIssuer(tokenIssuer),
		// iat is not checked: replicas' clocks differ by a little, and exp is what bounds a token.
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(a.clock.Now),
	)
	if a.mode == AuthOpen {
		log.Warn("AUTHENTICATION IS OFF (open mode): anyone who can reach this gateway can use it, as any user, and spend its budget; use keys mode (DARTMOUTH_AUTH=keys) anywhere but your own machine")
	}
	return a, nil
}

// setupAuth resolves the authentication config and makes the rate limits and voice tiers
// follow the authenticated caller's plan.
func (s *Server) setupAuth() error {
	a, err := newAuthState(s.cfg.Auth, s.log)
	if err != nil {
		return err
	}
	s.auth = a
	s.cfg.Identify = identifyCaller(s.cfg.Identify)
	return nil
}

// identifyCaller names an authenticated caller by user and plan; unauthenticated requests
// (open mode, public routes) fall back to fallback (IdentifyByIP by default).
func identifyCaller(fallback func(*http.Request) (key, plan string)) func(*http.Request) (key, plan string) {
	return func(r *http.Request) (string, string) {
		c, ok := CallerFromContext(r.Context())
		switch {
		case !ok:
			return fallback(r)
		case c.Admin:
			return "admin", PlanPremium
		}
		return "user:" + c.UserID, c.Plan
	}
}

// protectedPath reports whether a path needs a caller in keys mode: the APIs. Health checks
// and static pages stay public; operations endpoints elsewhere use requireAdmin.
func protectedPath(p string) bool {
	p = path.Clean("/" + p) // "//api/..." or "/x/../api/..." are API paths too
	return strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/v1/")
}

// errNoCredentials is a fresh error each time: the error handler stamps it with the request id.
func errNoCredentials() *APIError {
	return newAPIError(http.StatusUnauthorized, CodeUnauthorized,
		"authentication required: send an API key as Authorization: Bearer <key> or X-API-Key: <key>, or a session token")
}

// authenticate is the middleware that names the caller of every API request in keys mode. It
// does nothing in open mode.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if s.auth.mode != AuthKeys || !protectedPath(r.URL.Path) || r.Method == http.MethodOptions {
			return next(c)
		}
		caller, err := s.authenticateRequest(c)
		if err != nil {
			return err
		}
		c.SetRequest(r.WithContext(withCaller(r.Context(), caller)))
		return next(c)
	}
}

// authenticateRequest reads the request's key or token and names its caller. The token query
// parameter is removed from the URL, so nothing downstream can log it.
func (s *Server) authenticateRequest(c echo.Context) (Caller, error) {
	r := c.Request()
	var fromQuery string
	if q := r.URL.Query(); q.Has(tokenQueryParam) {
		fromQuery = q.Get(tokenQueryParam)
		q.Del(tokenQueryParam)
		r.URL.RawQuery = q.Encode()
	}
	credential, inURL := fromQuery, true
	if h := r.Header.Get(echo.HeaderAuthorization); h != "" {
		scheme, value, _ := strings.Cut(strings.TrimSpace(h), " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(value) == "" {
			return Caller{}, s.refuse(c, newAPIError(http.StatusUnauthorized, CodeUnauthorized, "the Authorization header must be \"Bearer <API key or session token>\""), true)
		}
		credential, inURL = strings.TrimSpace(value), false
	} else if h := strings.TrimSpace(r.Header.Get("X-API-Key")); h != "" {
		credential, inURL = h, false
	}
	if credential == "" {
		return Caller{}, s.refuse(c, errNoCredentials(), false)
	}
	// WebSocket upgrades have no request deadline; the key lookup gets one all the same.
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	caller, err := s.auth.resolve(ctx, credential, inURL)
	if err != nil {
		return Caller{}, s.refuse(c, err, true)
	}
	return caller, nil
}

// refuse adds the challenge RFC 6750 asks of a 401; presented says a credential was sent.
func (s *Server) refuse(c echo.Context, err error, presented bool) error {
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusUnauthorized {
		challenge := `Bearer realm="dartmouth"`
		if presented {
			challenge += `, error="invalid_token"`
		}
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, challenge)
	}
	return err
}

// resolve names the caller a credential stands for: the admin key, an API key or a session
// token. inURL is set when it came as ?token=, where only tokens are accepted: URLs end up in
// proxy logs and browser history, and a token there expires within minutes, a key never.
// No error message repeats the credential.
func (a *authState) resolve(ctx context.Context, credential string, inURL bool) (Caller, error) {
	if a.adminSum != nil {
		// Comparing digests keeps the comparison constant-time whatever the lengths.
		sum := sha256.Sum256([]byte(credential))
		if subtle.ConstantTimeCompare(sum[:], a.adminSum[:]) == 1 {
			if inURL {
				return Caller{}, newAPIError(http.StatusUnauthorized, CodeUnauthorized, "the admin key is not accepted in the URL; send it in the Authorization header, or pass a token minted from it")
			}
			return Caller{Admin: true}, nil
		}
	}
	if strings.HasPrefix(credential, session.KeyPrefix) {
		if inURL {
			return Caller{}, newAPIError(http.StatusUnauthorized, CodeUnauthorized,
				"API keys are not accepted in the URL, where logs and browser history keep them: send the key in the Authorization header, or mint a session token with POST /api/v2/auth/token and pass that as ?token=")
		}
		return a.lookupKey(ctx, credential)
	}
	return a.parseToken(credential)
}

func (a *authState) lookupKey(ctx context.Context, plaintext string) (Caller, error) {
	if a.keys == nil {
		return Caller{}, newAPIError(http.StatusUnauthorized, CodeUnauthorized, "invalid API key")
	}
	k, err := a.keys.LookupKey(ctx, plaintext)
	switch {
	case err == nil:
		return Caller{UserID: k.UserID, Plan: k.Plan, KeyID: k.ID}, nil
	case errors.Is(err, session.ErrKeyRevoked):
		return Caller{}, newAPIError(http.StatusUnauthorized, CodeUnauthorized, "this API key has been revoked")
	case errors.Is(err, session.ErrNotFound):
		return Caller{}, newAPIError(http.StatusUnauthorized, CodeUnauthorized, "invalid API key")
	case ctx.Err() != nil:
		return Caller{}, ctx.Err()
	}
	e := newAPIError(http.StatusServiceUnavailable, CodeUnavailable, "the API key could not be checked; retry shortly")
	e.cause = err
	return Caller{}, e
}

// tokenClaims are a session token's claims: sub (the user), plan, key (the key it was minted
// from), adm for the admin, and the registered iss, iat, exp and jti.
type tokenClaims struct {
	Plan  string `json:"plan,omitempty"`
	KeyID string `json:"key,omitempty"`
	Admin bool   `json:"adm,omitempty"`
	jwt.RegisteredClaims
}

func (a *authState) mintToken(c Caller) (string, time.Time, error) {
	now := a.clock.Now()
	exp := now.Add(a.ttl)
	claims := tokenClaims{Plan: c.Plan, KeyID: c.KeyID, Admin: c.Admin, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: tokenIssuer, Subject: c.UserID, ID: rand.Text(),
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(exp),
	}}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(a.secret)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("mint token: %w", err)
	}
	return signed, jwt.NewNumericDate(exp).Time, nil
}

func (a *authState) parseToken(raw string) (Caller, error) {
	var claims tokenClaims
	_, err := a.parser.ParseWithClaims(raw, &claims, func(*jwt.Token) (any, error) { return a.secret, nil })
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return Caller{}, newAPIError(http.StatusUnauthorized, CodeTokenExpired, "the session token has expired; mint a new one with POST /api/v2/auth/token")
	case err != nil:
		return Caller{}, newAPIError(http.StatusUnauthorized, CodeUnauthorized, "invalid API key or session token")
	case claims.Admin:
		return Caller{Admin: true, KeyID: claims.KeyID, Token: true}, nil
	case !agents.ValidUserID(claims.Subject):
		return Caller{}, newAPIError(http.StatusUnauthorized, CodeUnauthorized, "invalid session token: it names no user")
	}
	return Caller{UserID: claims.Subject, Plan: claims.Plan, KeyID: claims.KeyID, Token: true}, nil
}

// callerUser is the user a handler acts for. In open mode it is requested (a body's or
// query's userId; empty means anonymous). In keys mode it is the authenticated caller's user;
// requested may be empty or the same user, anything else is 403 forbidden. Every handler that
// reads a userId from a request goes through it.
func (s *Server) callerUser(c echo.Context, requested string) (string, error) {
	if s.auth.mode != AuthKeys {
		return requested, nil
	}
	caller, ok := CallerFromContext(c.Request().Context())
	if !ok {
		return "", errNoCredentials() // a route outside the protected paths: fail closed
	}
	return userOf(caller, requested)
}

// socketUser is callerUser for a WebSocket session: its frames arrive long after the upgrade
// request is gone, so the session keeps the caller the upgrade was authenticated as.
func (s *Server) socketUser(caller Caller, authenticated bool, requested string) (string, error) {
	if s.auth.mode != AuthKeys {
		return requested, nil
	}
	if !authenticated {
		return "", errNoCredentials()
	}
	return userOf(caller, requested)
}

func userOf(caller Caller, requested string) (string, error) {
	if caller.Admin {
		return "", newAPIError(http.StatusForbidden, CodeForbidden, "the admin key is for operations endpoints; call this one with a user's API key or session token")
	}
	if requested = strings.TrimSpace(requested); requested != "" && requested != caller.UserID {
		return "", newAPIError(http.StatusForbidden, CodeForbidden, "userId %s is not the authenticated user: leave it out, or send your own", strconvQuote(requested))
	}
	return caller.UserID, nil
}

// requireAdmin is the route middleware of operations endpoints (GET /api/v2/costs, /metrics,
// /dashboard): only the admin key, or a token minted from it, passes; a user's key gets 403.
// Without an admin key they are open in open mode and closed to everyone in keys mode.
// Attach it per route: g.GET(path, h, s.requireAdmin).
func (s *Server) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		a := s.auth
		if a.adminSum == nil {
			if a.mode == AuthOpen {
				return next(c)
			}
			return newAPIError(http.StatusForbidden, CodeForbidden, "operations endpoints are disabled: no admin key is configured (DARTMOUTH_ADMIN_KEY)")
		}
		caller, ok := CallerFromContext(c.Request().Context())
		if !ok { // open mode, or a route outside the protected paths
			var err error
			if caller, err = s.authenticateRequest(c); err != nil {
				return err
			}
		}
		if !caller.Admin {
			return newAPIError(http.StatusForbidden, CodeForbidden, "this endpoint needs the admin key")
		}
		return next(c)
	}
}

// tokenResponse is the body of POST /api/v2/auth/token.
type tokenResponse struct {
	Token     string    `json:"token"`
	TokenType string    `json:"tokenType"`
	ExpiresAt time.Time `json:"expiresAt"`
	// ExpiresIn is the token's lifetime in seconds.
	ExpiresIn int    `json:"expiresIn"`
	UserID    string `json:"userId,omitempty"`
	Plan      string `json:"plan,omitempty"`
}

// issueToken is POST /api/v2/auth/token: an API key (or the admin key) in, a session token for
// the same caller out, for clients that should not hold the key (browsers, phones). A token
// cannot mint another one, so revoking the key ends access within one token lifetime.
func (s *Server) issueToken(c echo.Context) error {
	caller, ok := CallerFromContext(c.Request().Context())
	if !ok {
		if s.auth.mode != AuthKeys && s.auth.adminSum != nil && s.hasCredential(c.Request()) {
			var err error
			if caller, err = s.authenticateRequest(c); err != nil {
				return err
			}
			ok = caller.Admin
		}
		if !ok {
			return newAPIError(http.StatusNotFound, CodeNotFound, "session tokens are issued in keys mode only; in open mode requests need none")
		}
	}
	if caller.Token {
		return newAPIError(http.StatusForbidden, CodeForbidden, "a session token cannot mint another one; use the API key")
	}
	token, exp, err := s.auth.mintToken(caller)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusOK, tokenResponse{
		Token: token, TokenType: "Bearer", ExpiresAt: exp.UTC(), ExpiresIn: int(s.auth.ttl / time.Second),
		UserID: caller.UserID, Plan: caller.Plan,
	})
}

func (s *Server) hasCredential(r *http.Request) bool {
	return r.Header.Get(echo.HeaderAuthorization) != "" || r.Header.Get("X-API-Key") != "" || r.URL.Query().Has(tokenQueryParam)
}
