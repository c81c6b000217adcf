package gateway_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/coder/websocket"
	"github.com/dartmouth-gw/dartmouth/gateway"
	"github.com/dartmouth-gw/dartmouth/session"
	"github.com/golang-jwt/jwt/v5"
)

const testAdminKey = "admin-0123456789abcdef"

// lockedBuffer collects the gateway's log lines; the server writes from its own goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// authGateway is a gateway in keys mode whose API keys live in their own SQLite file: alice
// (paid), bob (free), and a revoked key of carol's.
type authGateway struct {
	*testGateway
	keys                *session.SQLStore
	clock               *fakeClock
	logs                *lockedBuffer
	alice, bob, revoked string
	aliceKeyID          string
	secrets             []string // every credential used, none of which may be logged
}

func startAuthGateway(t *testing.T, opts ...option) *authGateway {
	t.Helper()
	ctx := context.Background()
	keys, err := session.OpenSQLite(ctx, session.SQLiteConfig{Path: t.TempDir() + "/keys.db"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keys.Close() })
	a := &authGateway{keys: keys, clock: newFakeClock(), logs: &lockedBuffer{}}
	var k session.Key
	if a.alice, k, err = keys.CreateKey(ctx, "alice", gateway.PlanPaid, "laptop"); err != nil {
		t.Fatal(err)
	}
	a.aliceKeyID = k.ID
	if a.bob, _, err = keys.CreateKey(ctx, "bob", gateway.PlanFree, ""); err != nil {
		t.Fatal(err)
	}
	if a.revoked, k, err = keys.CreateKey(ctx, "carol", gateway.PlanFree, ""); err != nil {
		t.Fatal(err)
	}
	if err := keys.RevokeKey(ctx, "carol", k.ID); err != nil {
		t.Fatal(err)
	}
	a.secrets = []string{a.alice, a.bob, a.revoked, testAdminKey}
	logger := slog.New(slog.NewTextHandler(a.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	all := append([]option{func(c *gateway.Config) {
		c.Logger = logger
		c.Auth = gateway.AuthConfig{Mode: gateway.AuthKeys, Keys: keys, AdminKey: testAdminKey, Clock: a.clock}
		c.RateLimiter = gateway.NewMemoryRateLimiter(nil)
		c.Static = fstest.MapFS{"index.html": {Data: []byte("<h1>widget</h1>")}}
	}}, opts...)
	a.testGateway = startGateway(t, nil, all...)
	return a
}

// do sends a request with credentials in header ("Bearer x" goes to Authorization, anything
// else to X-API-Key) and decodes the JSON answer.
func do(t *testing.T, method, url, auth, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if v, ok := strings.CutPrefix(auth, "X-API-Key "); ok {
		req.Header.Set("X-API-Key", v)
	} else if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return doJSON(t, req)
}

func bearer(s string) string { return "Bearer " + s }

// mint asks POST /api/v2/auth/token for a session token.
func (a *authGateway) mint(t *testing.T, key string) string {
	t.Helper()
	resp, out := do(t, "POST", a.URL+"/api/v2/auth/token", bearer(key), "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("mint: %d %v", resp.StatusCode, out)
	}
	token := out["token"].(string)
	a.secrets = append(a.secrets, token)
	return token
}

func (a *authGateway) chat(t *testing.T, auth, body string) string {
	t.Helper()
	resp, out := do(t, "POST", a.URL+"/api/v2/chat", auth, body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("chat %s: %d %v", body, resp.StatusCode, out)
	}
	return out["sessionId"].(string)
}

func (a *authGateway) ownedBy(t *testing.T, user, sid string) {
	t.Helper()
	if _, err := a.Store.GetSession(context.Background(), user, sid); err != nil {
		t.Fatalf("session %s is not %s's: %v", sid, user, err)
	}
}

func TestAuthRefusesRequestsWithoutAValidKey(t *testing.T) {
	a := startAuthGateway(t)
	chat := `{"agentId":"fam","message":"hi"}`
	wellFormedStranger := "dm_" + strings.Repeat("x", 43)
	tests := []struct {
		name, method, path, auth, body string
		status                         int
		code, message                  string
	}{
		{"no key", "POST", "/api/v2/chat", "", chat, 401, gateway.CodeUnauthorized, "authentication required"},
		{"no key, stream", "POST", "/api/v2/chat/stream", "", chat, 401, gateway.CodeUnauthorized, "authentication required"},
		{"no key, history", "GET", "/api/v2/sessions/ses_x/messages", "", "", 401, gateway.CodeUnauthorized, "authentication required"},
		{"no key, unknown API path", "GET", "/api/v2/nothing-here", "", "", 401, gateway.CodeUnauthorized, "authentication required"},
		{"no key, doubled slash", "POST", "//api/v2/chat", "", chat, 401, gateway.CodeUnauthorized, "authentication required"},
		{"no key, token endpoint", "POST", "/api/v2/auth/token", "", "", 401, gateway.CodeUnauthorized, "authentication required"},
		{"unknown key", "POST", "/api/v2/chat", bearer(wellFormedStranger), chat, 401, gateway.CodeUnauthorized, "invalid API key"},
		{"unknown key in X-API-Key", "POST", "/api/v2/chat", "X-API-Key " + wellFormedStranger, chat, 401, gateway.CodeUnauthorized, "invalid API key"},
		{"alice's key with one character changed", "POST", "/api/v2/chat", bearer(a.alice[:len(a.alice)-1] + flip(a.alice[len(a.alice)-1])), chat, 401, gateway.CodeUnauthorized, "invalid API key"},
		{"revoked key", "POST", "/api/v2/chat", bearer(a.revoked), chat, 401, gateway.CodeUnauthorized, "revoked"},
		{"revoked key cannot mint", "POST", "/api/v2/auth/token", bearer(a.revoked), "", 401, gateway.CodeUnauthorized, "revoked"},
		{"not a bearer", "POST", "/api/v2/chat", "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:"+a.alice)), chat, 401, gateway.CodeUnauthorized, "Bearer"},
		{"empty bearer", "POST", "/api/v2/chat", "Bearer ", chat, 401, gateway.CodeUnauthorized, "Bearer"},
		{"garbage token", "POST", "/api/v2/chat", bearer("eyJhbGciOiJIUzI1NiJ9.e30.c2ln"), chat, 401, gateway.CodeUnauthorized, "invalid API key or session token"},
		{"a key in the URL", "POST", "/api/v2/chat?token=" + a.alice, "", chat, 401, gateway.CodeUnauthorized, "not accepted in the URL"},
		{"the admin key in the URL", "GET", "/api/v2/costs?token=" + testAdminKey, "", "", 401, gateway.CodeUnauthorized, "not accepted in the URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, out := do(t, tt.method, a.URL+tt.path, tt.auth, tt.body)
			msg, _ := out["error"].(map[string]any)["message"].(string)
			if resp.StatusCode != tt.status || errCode(out) != tt.code || !strings.Contains(msg, tt.message) {
				t.Fatalf("%d %v; want %d %s containing %q", resp.StatusCode, out, tt.status, tt.code, tt.message)
			}
			if rid, _ := out["error"].(map[string]any)["requestId"].(string); rid == "" {
				t.Fatalf("no requestId in %v", out)
			}
			if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, `Bearer realm="dartmouth"`) {
				t.Fatalf("WWW-Authenticate %q", got)
			}
		})
	}

	// The OpenAI surface answers in OpenAI's shape, so SDKs raise their authentication error.
	resp, out := do(t, "POST", a.URL+"/v1/chat/completions", bearer("sk-not-ours"), `{"model":"fam","messages":[{"role":"user","content":"hi"}]}`)
	if e, _ := out["error"].(map[string]any); resp.StatusCode != 401 || e["type"] != "authentication_error" || e["code"] != gateway.CodeUnauthorized {
		t.Fatalf("/v1 without our key: %d %v", resp.StatusCode, out)
	}
	// Health checks and static pages stay public.
	for _, path := range []string{"/health/live", "/health/ready", "/health"} {
		if resp, body := getJSON(t, a.URL+path); resp.StatusCode != 200 {
			t.Fatalf("%s: %d %v", path, resp.StatusCode, body)
		}
	}
	resp, err := http.Get(a.URL + "/index.html")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("static page: %d", resp.StatusCode)
	}
}

func flip(b byte) string {
	if b == 'a' {
		return "b"
	}
	return "a"
}

func TestAuthKeysNameTheCallerInEitherHeader(t *testing.T) {
	a := startAuthGateway(t)
	tests := []struct {
		name, auth, body, user string
		limit                  string
	}{
		{"Authorization: Bearer", bearer(a.alice), `{"agentId":"fam","message":"hi"}`, "alice", "1000"},
		{"lower-case scheme", "bearer " + a.alice, `{"agentId":"fam","message":"hi"}`, "alice", "1000"},
		{"X-API-Key", "X-API-Key " + a.bob, `{"agentId":"fam","message":"hi"}`, "bob", "20"},
		{"the caller's own userId", bearer(a.alice), `{"agentId":"fam","message":"hi","userId":"alice"}`, "alice", "1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, out := do(t, "POST", a.URL+"/api/v2/chat", tt.auth, tt.body)
			if resp.StatusCode != 200 {
				t.Fatalf("%d %v", resp.StatusCode, out)
			}
			a.ownedBy(t, tt.user, out["sessionId"].(string))
			// The rate limit is the key's plan: paid 1000/h, free 20/h.
			if got := resp.Header.Get("X-RateLimit-Limit"); got != tt.limit {
				t.Fatalf("X-RateLimit-Limit %q, want %s (the plan of %s's key)", got, tt.limit, tt.user)
			}
		})
	}

	// A body naming another user is refused, not silently rewritten.
	resp, out := do(t, "POST", a.URL+"/api/v2/chat", bearer(a.alice), `{"agentId":"fam","message":"hi","userId":"bob"}`)
	if resp.StatusCode != 403 || errCode(out) != gateway.CodeForbidden {
		t.Fatalf("alice naming bob: %d %v", resp.StatusCode, out)
	}
	resp, out = do(t, "POST", a.URL+"/api/v2/chat/stream", bearer(a.alice), `{"agentId":"fam","message":"hi","userId":"bob"}`)
	if resp.StatusCode != 403 || errCode(out) != gateway.CodeForbidden {
		t.Fatalf("alice naming bob on the stream: %d %v", resp.StatusCode, out)
	}
	// OpenAI's "user" is a client's own label: the key's user owns the session anyway.
	req, _ := http.NewRequest("POST", a.URL+"/v1/chat/completions", strings.NewReader(`{"model":"fam","user":"bob","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", bearer(a.alice))
	resp, out = doJSON(t, req)
	if resp.StatusCode != 200 {
		t.Fatalf("/v1/chat/completions: %d %v", resp.StatusCode, out)
	}
	a.ownedBy(t, "alice", resp.Header.Get("X-Session-Id"))
	// The admin key is for operations, not for acting as a user.
	resp, out = do(t, "POST", a.URL+"/api/v2/chat", bearer(testAdminKey), `{"agentId":"fam","message":"hi","userId":"alice"}`)
	if resp.StatusCode != 403 || errCode(out) != gateway.CodeForbidden {
		t.Fatalf("admin key on chat: %d %v", resp.StatusCode, out)
	}
}

// Acceptance: another user's session id is refused, exactly like an id that does not exist,
// over HTTP and over the WebSocket.
func TestAuthSessionsBelongToTheCaller(t *testing.T) {
	a := startAuthGateway(t)
	sid := a.chat(t, bearer(a.alice), `{"agentId":"fam","message":"my secret plan"}`)

	tests := []struct {
		name, method, path, auth, body string
		status                         int
		code                           string
	}{
		{"alice reads her history", "GET", "/api/v2/sessions/" + sid + "/messages", bearer(a.alice), "", 200, ""},
		{"bob reads alice's history", "GET", "/api/v2/sessions/" + sid + "/messages", bearer(a.bob), "", 404, gateway.CodeSessionNotFound},
		{"bob reads a session that does not exist", "GET", "/api/v2/sessions/ses_doesnotexist/messages", bearer(a.bob), "", 404, gateway.CodeSessionNotFound},
		{"bob names alice in the query", "GET", "/api/v2/sessions/" + sid + "/messages?userId=alice", bearer(a.bob), "", 403, gateway.CodeForbidden},
		{"bob continues alice's session", "POST", "/api/v2/chat", bearer(a.bob), `{"agentId":"fam","message":"tell me","sessionId":"` + sid + `"}`, 404, gateway.CodeSessionNotFound},
		{"bob continues a session that does not exist", "POST", "/api/v2/chat", bearer(a.bob), `{"agentId":"fam","message":"tell me","sessionId":"ses_doesnotexist"}`, 404, gateway.CodeSessionNotFound},
		{"bob streams alice's session", "POST", "/api/v2/chat/stream", bearer(a.bob), `{"agentId":"fam","message":"tell me","sessionId":"` + sid + `"}`, 404, gateway.CodeSessionNotFound},
		{"alice continues her session", "POST", "/api/v2/chat", bearer(a.alice), `{"agentId":"fam","message":"go on","sessionId":"` + sid + `"}`, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, out := do(t, tt.method, a.URL+tt.path, tt.auth, tt.body)
			if resp.StatusCode != tt.status || errCode(out) != tt.code {
				t.Fatalf("%d %v; want %d %q", resp.StatusCode, out, tt.status, tt.code)
			}
			if strings.Contains(mustJSON(t, out), "secret plan") && tt.status != 200 {
				t.Fatalf("refusal leaks the conversation: %v", out)
			}
		})
	}

	t.Run("websocket", func(t *testing.T) {
		bob := dialWS(t, a.testGateway, http.Header{"Authorization": {bearer(a.bob)}})
		bob.send(map[string]any{"type": "session.start", "id": "1", "agentId": "fam", "sessionId": sid})
		bob.expectError(gateway.CodeSessionNotFound)
		bob.send(map[string]any{"type": "session.start", "id": "2", "agentId": "fam", "userId": "alice"})
		bob.expectError(gateway.CodeForbidden)
		bob.send(map[string]any{"type": "session.start", "id": "3", "agentId": "fam"})
		own := bob.expect("session.started")
		a.ownedBy(t, "bob", own["sessionId"].(string))

		// A browser cannot set headers on a WebSocket: it passes a session token in the URL.
		token := a.mint(t, a.alice)
		alice := dialURL(t, a.URL+"/api/v2/ws?token="+url.QueryEscape(token))
		alice.send(map[string]any{"type": "session.start", "id": "1", "agentId": "fam", "sessionId": sid})
		if started := alice.expect("session.started"); started["resumed"] != true || started["sessionId"] != sid {
			t.Fatalf("alice resuming over a token: %v", started)
		}
	})

	t.Run("websocket without a key", func(t *testing.T) {
		for name, u := range map[string]string{
			"no credentials":   a.URL + "/api/v2/ws",
			"a key in the URL": a.URL + "/api/v2/ws?token=" + a.alice,
		} {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(u, "http"), nil)
			cancel()
			if err == nil {
				conn.CloseNow()
				t.Fatalf("%s: the upgrade succeeded", name)
			}
			if resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("%s: %v %v", name, resp, err)
			}
		}
	})
}

func dialURL(t *testing.T, u string) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(u, "http"), nil)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	t.Cleanup(func() { conn.CloseNow() })
	return &wsClient{t: t, conn: conn}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSessionTokens(t *testing.T) {
	a := startAuthGateway(t)
	resp, out := do(t, "POST", a.URL+"/api/v2/auth/token", "X-API-Key "+a.alice, "")
	if resp.StatusCode != 200 || out["tokenType"] != "Bearer" || out["expiresIn"] != 900.0 || out["userId"] != "alice" || out["plan"] != "paid" {
		t.Fatalf("mint: %d %v", resp.StatusCode, out)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
	token := out["token"].(string)
	if exp, _ := time.Parse(time.RFC3339, out["expiresAt"].(string)); !exp.Equal(a.clock.Now().Add(15 * time.Minute)) {
		t.Fatalf("expiresAt %v, want now + 15m", out["expiresAt"])
	}

	// The claims are what the brief promises: sub, plan, iat, exp, jti, HS256.
	parsed, _, err := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	claims := parsed.Claims.(jwt.MapClaims)
	if parsed.Method.Alg() != "HS256" || claims["sub"] != "alice" || claims["plan"] != "paid" || claims["key"] != a.aliceKeyID || claims["jti"] == "" || claims["iat"] == nil || claims["exp"] == nil {
		t.Fatalf("claims %v (%s)", claims, parsed.Method.Alg())
	}

	// The token is accepted wherever the key is, and in the URL.
	sid := a.chat(t, bearer(token), `{"agentId":"fam","message":"hi"}`)
	a.ownedBy(t, "alice", sid)
	if resp, out := getJSON(t, a.URL+"/api/v2/sessions/"+sid+"/messages?token="+url.QueryEscape(token)); resp.StatusCode != 200 {
		t.Fatalf("token in the URL: %d %v", resp.StatusCode, out)
	}

	otherSecret := func(claims jwt.Claims) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(strings.Repeat("k", 32)))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	parts := strings.Split(token, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString(bytes.Replace(payload, []byte(`"sub":"alice"`), []byte(`"sub":"bob"`), 1)) + "." + parts[2]
	unsigned := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
	now := a.clock.Now()
	tests := []struct {
		name, auth string
		code       string
	}{
		{"payload edited to another user", bearer(forged), gateway.CodeUnauthorized},
		{"signature cut off", bearer(parts[0] + "." + parts[1] + "."), gateway.CodeUnauthorized},
		{"alg none", bearer(unsigned), gateway.CodeUnauthorized},
		{"signed with another secret", bearer(otherSecret(jwt.RegisteredClaims{Issuer: "dartmouth", Subject: "alice", IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute))})), gateway.CodeUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, out := do(t, "POST", a.URL+"/api/v2/chat", tt.auth, `{"agentId":"fam","message":"hi"}`)
			if resp.StatusCode != 401 || errCode(out) != tt.code {
				t.Fatalf("%d %v", resp.StatusCode, out)
			}
		})
	}

	// A token cannot mint another token: access ends within one lifetime of revoking the key.
	if resp, out := do(t, "POST", a.URL+"/api/v2/auth/token", bearer(token), ""); resp.StatusCode != 403 || errCode(out) != gateway.CodeForbidden {
		t.Fatalf("token minting a token: %d %v", resp.StatusCode, out)
	}
	if err := a.keys.RevokeKey(context.Background(), "alice", a.aliceKeyID); err != nil {
		t.Fatal(err)
	}
	if resp, out := do(t, "POST", a.URL+"/api/v2/auth/token", bearer(a.alice), ""); resp.StatusCode != 401 {
		t.Fatalf("revoked key minting: %d %v", resp.StatusCode, out)
	}
	a.chat(t, bearer(token), `{"agentId":"fam","message":"still within the token's lifetime"}`)

	// Expiry, on the injected clock.
	a.clock.Advance(15*time.Minute + time.Second)
	resp, out = do(t, "POST", a.URL+"/api/v2/chat", bearer(token), `{"agentId":"fam","message":"hi"}`)
	if resp.StatusCode != 401 || errCode(out) != gateway.CodeTokenExpired {
		t.Fatalf("expired token: %d %v", resp.StatusCode, out)
	}
	if resp, out := getJSON(t, a.URL+"/api/v2/sessions/"+sid+"/messages?token="+url.QueryEscape(token)); resp.StatusCode != 401 || errCode(out) != gateway.CodeTokenExpired {
		t.Fatalf("expired token in the URL: %d %v", resp.StatusCode, out)
	}
}

func TestAdminEndpoints(t *testing.T) {
	a := startAuthGateway(t)
	costs := a.URL + "/api/v2/costs"
	adminToken := a.mint(t, testAdminKey)
	tests := []struct {
		name, url, auth string
		status          int
		code            string
	}{
		{"no key", costs, "", 401, gateway.CodeUnauthorized},
		{"a user's key", costs, bearer(a.alice), 403, gateway.CodeForbidden},
		{"a user's token", costs, bearer(a.mint(t, a.bob)), 403, gateway.CodeForbidden},
		{"a wrong admin key", costs, bearer(testAdminKey + "x"), 401, gateway.CodeUnauthorized},
		{"the admin key", costs, bearer(testAdminKey), 200, ""},
		{"the admin key in X-API-Key", costs, "X-API-Key " + testAdminKey, 200, ""},
		{"an admin token in the URL (a dashboard page)", costs + "?token=" + url.QueryEscape(adminToken), "", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, out := do(t, "GET", tt.url, tt.auth, "")
			if resp.StatusCode != tt.status || errCode(out) != tt.code {
				t.Fatalf("%d %v; want %d %q", resp.StatusCode, out, tt.status, tt.code)
			}
		})
	}

	t.Run("keys mode without an admin key", func(t *testing.T) {
		b := startAuthGateway(t, func(c *gateway.Config) { c.Auth.AdminKey = "" })
		for _, auth := range []string{"", bearer(b.alice), bearer(testAdminKey)} {
			if resp, out := do(t, "GET", b.URL+"/api/v2/costs", auth, ""); resp.StatusCode/100 != 4 || resp.StatusCode == 200 {
				t.Fatalf("costs with %q: %d %v", auth, resp.StatusCode, out)
			}
		}
		if resp, out := do(t, "GET", b.URL+"/api/v2/costs", bearer(b.alice), ""); resp.StatusCode != 403 || !strings.Contains(mustJSON(t, out), "no admin key is configured") {
			t.Fatalf("costs: %d %v", resp.StatusCode, out)
		}
	})

	t.Run("open mode with an admin key", func(t *testing.T) {
		g := startGateway(t, nil, func(c *gateway.Config) { c.Auth = gateway.AuthConfig{AdminKey: testAdminKey} })
		if resp, out := do(t, "GET", g.URL+"/api/v2/costs", "", ""); resp.StatusCode != 401 {
			t.Fatalf("costs without the admin key: %d %v", resp.StatusCode, out)
		}
		if resp, out := do(t, "GET", g.URL+"/api/v2/costs", bearer(testAdminKey), ""); resp.StatusCode != 200 {
			t.Fatalf("costs with the admin key: %d %v", resp.StatusCode, out)
		}
		// Everything else stays open.
		if resp, out := do(t, "POST", g.URL+"/api/v2/chat", "", `{"agentId":"fam","message":"hi"}`); resp.StatusCode != 200 {
			t.Fatalf("chat: %d %v", resp.StatusCode, out)
		}
	})
}

// Open mode, the default, needs no key and believes the body's userId, and says so loudly.
func TestOpenModeNeedsNoKey(t *testing.T) {
	logs := &lockedBuffer{}
	g := startGateway(t, nil, func(c *gateway.Config) { c.Logger = slog.New(slog.NewTextHandler(logs, nil)) })
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "AUTHENTICATION IS OFF") {
		t.Fatalf("no loud warning at start:\n%s", logs)
	}
	resp, out := do(t, "POST", g.URL+"/api/v2/chat", bearer("sk-whatever-the-sdk-sends"), `{"agentId":"fam","message":"hi","userId":"alice"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("chat: %d %v", resp.StatusCode, out)
	}
	sid := out["sessionId"].(string)
	if _, err := g.Store.GetSession(context.Background(), "alice", sid); err != nil {
		t.Fatal(err)
	}
	if resp, out := getJSON(t, g.URL+"/api/v2/sessions/"+sid+"/messages?userId=alice"); resp.StatusCode != 200 {
		t.Fatalf("history: %d %v", resp.StatusCode, out)
	}
	if resp, out := getJSON(t, g.URL+"/api/v2/costs"); resp.StatusCode != 200 {
		t.Fatalf("costs: %d %v", resp.StatusCode, out)
	}
	if resp, out := do(t, "POST", g.URL+"/api/v2/auth/token", "", ""); resp.StatusCode != 404 || !strings.Contains(mustJSON(t, out), "keys mode only") {
		t.Fatalf("token in open mode: %d %v", resp.StatusCode, out)
	}
}

func TestAuthConfigIsChecked(t *testing.T) {
	keys, err := session.OpenSQLite(context.Background(), session.SQLiteConfig{Path: t.TempDir() + "/keys.db"})
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	base := gatewayConfigFor(t)
	tests := map[string]gateway.AuthConfig{
		"unknown mode":        {Mode: "magic"},
		"keys without store":  {Mode: gateway.AuthKeys},
		"short admin key":     {Mode: gateway.AuthKeys, Keys: keys, AdminKey: "admin"},
		"short token secret":  {Mode: gateway.AuthKeys, Keys: keys, TokenSecret: []byte("short")},
		"short key, open too": {AdminKey: "short"},
	}
	for name, auth := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := base
			cfg.Auth = auth
			if _, err := gateway.New(cfg); err == nil {
				t.Fatal("New accepted it")
			}
		})
	}
}

// gatewayConfigFor is the Config startGateway builds (a working engine and logger).
func gatewayConfigFor(t *testing.T) gateway.Config {
	t.Helper()
	var cfg gateway.Config
	startGateway(t, nil, func(c *gateway.Config) { cfg = *c })
	return cfg
}

// Acceptance: a key is never logged in clear. Every credential the test uses (valid, wrong,
// revoked, admin, tokens in headers and in URLs) goes through the gateway with debug logs on;
// none of them is in the log afterwards.
func TestKeysAndTokensAreNeverLogged(t *testing.T) {
	a := startAuthGateway(t, func(c *gateway.Config) {
		c.RateLimits = map[string]gateway.Limit{gateway.PlanFree: {Requests: 1, Per: time.Hour}, gateway.PlanPaid: {Requests: 1000, Per: time.Hour}}
	})
	token := a.mint(t, a.alice)
	adminToken := a.mint(t, testAdminKey)
	wrong := "dm_" + strings.Repeat("Z", 43)
	a.secrets = append(a.secrets, wrong)
	chat := `{"agentId":"fam","message":"hi"}`
	sid := a.chat(t, bearer(a.alice), chat)
	for _, r := range []struct{ method, path, auth string }{
		{"POST", "/api/v2/chat", "X-API-Key " + a.alice},
		{"POST", "/api/v2/chat", bearer(a.bob)},
		{"POST", "/api/v2/chat", bearer(a.bob)}, // rate limited: logged at debug with its key
		{"POST", "/api/v2/chat", bearer(wrong)},
		{"POST", "/api/v2/chat", bearer(a.revoked)},
		{"POST", "/api/v2/chat?token=" + a.alice, ""},
		{"POST", "/api/v2/chat", bearer(token)},
		{"GET", "/api/v2/sessions/" + sid + "/messages?token=" + url.QueryEscape(token), ""},
		{"GET", "/api/v2/costs", bearer(testAdminKey)},
		{"GET", "/api/v2/costs?token=" + url.QueryEscape(adminToken), ""},
		{"GET", "/api/v2/costs?token=" + testAdminKey, ""},
	} {
		do(t, r.method, a.URL+r.path, r.auth, chat)
	}
	ws := dialURL(t, a.URL+"/api/v2/ws?token="+url.QueryEscape(token))
	ws.send(map[string]any{"type": "session.start", "id": "1", "agentId": "fam"})
	ws.expect("session.started")
	ws.conn.Close(websocket.StatusNormalClosure, "")
	a.shutdown(t) // every request's line is written

	logs := a.logs.String()
	if !strings.Contains(logs, "path=/api/v2/chat") || !strings.Contains(logs, "status=401") || !strings.Contains(logs, "rate limited") {
		t.Fatalf("the log does not show the requests, so it proves nothing:\n%s", logs)
	}
	for i, secret := range a.secrets {
		if strings.Contains(logs, secret) || strings.Contains(logs, secret[len(secret)-20:]) {
			t.Fatalf("credential %d is in the log:\n%s", i, logs)
		}
	}
}
