package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/session"
)

// createKey runs `dartmouth keys create` and returns the key it printed.
func createKey(t *testing.T, env func(string) string, args ...string) (key, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := keysCommand(context.Background(), append([]string{"create"}, args...), env, &out, &errOut); err != nil {
		t.Fatalf("keys create %v: %v\n%s", args, err, errOut.String())
	}
	return strings.TrimSpace(out.String()), errOut.String()
}

func TestKeysCommandLifecycle(t *testing.T) {
	data := t.TempDir()
	env := kbEnv(data, nil)
	ctx := context.Background()

	key, stderr := createKey(t, env, "--user", "alice", "--plan", "paid", "--name", "laptop")
	if !regexp.MustCompile(`^dm_[0-9A-Za-z]{43}$`).MatchString(key) {
		t.Fatalf("stdout is not just the key: %q", key)
	}
	if strings.Contains(stderr, key) || !strings.Contains(stderr, key[:12]+"…") || !strings.Contains(stderr, "shown only this once") {
		t.Fatalf("stderr: %s", stderr)
	}
	// Flags may follow in any order; the second key is another key.
	second, _ := createKey(t, env, "--plan=free", "--user=alice")
	if second == key {
		t.Fatal("two keys are the same")
	}

	st := openKBStore(t, data)
	k, err := st.LookupKey(ctx, key)
	if err != nil || k.UserID != "alice" || k.Plan != "paid" || k.Name != "laptop" {
		t.Fatalf("the created key: %+v %v", k, err)
	}

	var out bytes.Buffer
	if err := keysCommand(ctx, []string{"list", "--user", "alice"}, env, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	list := out.String()
	if strings.Contains(list, key) || strings.Contains(list, second) || !strings.Contains(list, k.ID) || !strings.Contains(list, key[:12]+"…") ||
		!strings.Contains(list, "laptop") || strings.Count(list, "active") != 2 || !strings.Contains(list, "2 keys for alice") {
		t.Fatalf("list:\n%s", list)
	}

	// Revocation is scoped to the key's user.
	err = keysCommand(ctx, []string{"revoke", "--user", "bob", k.ID}, env, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "bob has no key") {
		t.Fatalf("bob revoking alice's key: %v", err)
	}
	out.Reset()
	if err := keysCommand(ctx, []string{"revoke", k.ID, "--user", "alice"}, env, &out, io.Discard); err != nil || !strings.Contains(out.String(), "revoked "+k.ID) {
		t.Fatalf("revoke: %v %s", err, out.String())
	}
	if _, err := st.LookupKey(ctx, key); !errors.Is(err, session.ErrKeyRevoked) {
		t.Fatalf("lookup after revoke: %v", err)
	}
	if _, err := st.LookupKey(ctx, second); err != nil {
		t.Fatalf("the other key: %v", err)
	}
	out.Reset()
	if err := keysCommand(ctx, []string{"list", "--user", "alice"}, env, &out, io.Discard); err != nil || strings.Count(out.String(), "revoked ") != 1 {
		t.Fatalf("list after revoke: %v\n%s", err, out.String())
	}
	// Plans named in DARTMOUTH_RATE_LIMITS are plans too.
	createKey(t, kbEnv(data, map[string]string{"DARTMOUTH_RATE_LIMITS": "enterprise=100000/h"}), "--user", "corp", "--plan", "enterprise")
}

func TestKeysCommandRefusesBadInput(t *testing.T) {
	env := kbEnv(t.TempDir(), nil)
	tests := map[string][]string{
		"no subcommand":        nil,
		"flag first":           {"--user", "alice"},
		"unknown subcommand":   {"rotate", "--user", "alice"},
		"create without user":  {"create", "--plan", "free"},
		"create bad user":      {"create", "--user", "al ice", "--plan", "free"},
		"create without plan":  {"create", "--user", "alice"},
		"create unknown plan":  {"create", "--user", "alice", "--plan", "gold"},
		"create stray arg":     {"create", "--user", "alice", "--plan", "free", "extra"},
		"create long name":     {"create", "--user", "alice", "--plan", "free", "--name", strings.Repeat("n", 101)},
		"list without user":    {"list"},
		"list stray arg":       {"list", "--user", "alice", "key_x"},
		"revoke without id":    {"revoke", "--user", "alice"},
		"revoke two ids":       {"revoke", "--user", "alice", "key_a", "key_b"},
		"revoke a missing key": {"revoke", "--user", "alice", "key_missing"},
		"unknown flag":         {"list", "--user", "alice", "--colour"},
	}
	for name, args := range tests {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			if err := keysCommand(context.Background(), args, env, &out, io.Discard); err == nil {
				t.Fatalf("want an error; printed %q", out.String())
			}
			if regexp.MustCompile(`dm_[0-9A-Za-z]{43}`).MatchString(out.String()) {
				t.Fatal("a refused command printed a key")
			}
		})
	}
}

func TestAuthSettings(t *testing.T) {
	c, err := parseConfig("t", nil, func(string) string { return "" }, io.Discard)
	if err != nil || c.Auth != "open" || c.JWTTTL != 15*time.Minute || c.AdminKey != "" || c.JWTSecret != "" {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	env := map[string]string{"DARTMOUTH_AUTH": "keys", "DARTMOUTH_ADMIN_KEY": strings.Repeat("a", 16), "DARTMOUTH_JWT_SECRET": strings.Repeat("s", 32), "DARTMOUTH_JWT_TTL": "5m"}
	c, err = parseConfig("t", nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil || c.Auth != "keys" || c.JWTTTL != 5*time.Minute {
		t.Fatalf("from the environment: %+v %v", c, err)
	}
	for name, bad := range map[string]map[string]string{
		"unknown mode":      {"DARTMOUTH_AUTH": "password"},
		"short admin key":   {"DARTMOUTH_ADMIN_KEY": "admin"},
		"short jwt secret":  {"DARTMOUTH_JWT_SECRET": "secret"},
		"zero token ttl":    {"DARTMOUTH_JWT_TTL": "0s"},
		"token ttl garbage": {"DARTMOUTH_JWT_TTL": "soon"},
	} {
		if _, err := parseConfig("t", nil, func(k string) string { return bad[k] }, io.Discard); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}

// syncLog collects the gateway's log lines while it runs.
type syncLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// serveInProcess runs `dartmouth serve` with env until the test ends.
func serveInProcess(t *testing.T, env map[string]string) (string, *syncLog) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs, logw := io.Pipe()
	exited := make(chan error, 1)
	go func() {
		err := run(ctx, []string{"serve"}, func(k string) string { return env[k] }, io.Discard, logw)
		logw.Close()
		exited <- err
	}()
	captured := &syncLog{}
	addr := make(chan string, 1)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(logs)
		for sc.Scan() {
			captured.mu.Lock()
			captured.lines = append(captured.lines, sc.Text())
			captured.mu.Unlock()
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == "dartmouth listening" {
				addr <- rec["addr"].(string)
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-exited; err != nil {
			t.Errorf("serve: %v", err)
		}
		<-scanned
		http.DefaultClient.CloseIdleConnections()
	})
	select {
	case a := <-addr:
		return "http://" + a, captured
	case err := <-exited:
		exited <- err
		t.Fatalf("serve exited: %v\n%s", err, captured)
	case <-time.After(30 * time.Second):
		t.Fatalf("not listening after 30s:\n%s", captured)
	}
	return "", nil
}

// The wired binary in keys mode: a key made by `dartmouth keys create` opens the API, nothing
// else does, the admin key opens the costs, tokens work, and no key reaches the log.
func TestServeInKeysMode(t *testing.T) {
	data := t.TempDir()
	admin := "admin-" + strings.Repeat("7", 20)
	env := map[string]string{
		"DARTMOUTH_ADDR": "127.0.0.1:0", "DARTMOUTH_DATA_DIR": data, "DARTMOUTH_LOG_FORMAT": "json", "DARTMOUTH_LOG_LEVEL": "debug",
		"DARTMOUTH_AUTH": "keys", "DARTMOUTH_ADMIN_KEY": admin, "DARTMOUTH_VOICE": "false",
	}
	key, _ := createKey(t, kbEnv(data, nil), "--user", "alice", "--plan", "paid")
	base, logs := serveInProcess(t, env)

	call := func(method, path, auth, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	chat := `{"agentId":"fam","message":"hi"}`
	if status, out := call("POST", "/api/v2/chat", "", chat); status != 401 {
		t.Fatalf("no key: %d %v", status, out)
	}
	status, out := call("POST", "/api/v2/chat", key, chat)
	if status != 200 {
		t.Fatalf("with the key: %d %v", status, out)
	}
	sid := out["sessionId"].(string)
	status, out = call("POST", "/api/v2/auth/token", key, "")
	if status != 200 {
		t.Fatalf("token: %d %v", status, out)
	}
	token := out["token"].(string)
	if status, out := call("GET", "/api/v2/sessions/"+sid+"/messages", token, ""); status != 200 {
		t.Fatalf("history with a token: %d %v", status, out)
	}
	if status, out := call("GET", "/api/v2/costs", key, ""); status != 403 {
		t.Fatalf("costs with a user key: %d %v", status, out)
	}
	if status, out := call("GET", "/api/v2/costs", admin, ""); status != 200 {
		t.Fatalf("costs with the admin key: %d %v", status, out)
	}
	if status, _ := call("GET", "/health/ready", "", ""); status != 200 {
		t.Fatalf("health: %d", status)
	}

	all := logs.String()
	if !strings.Contains(all, "random per-process secret") || strings.Contains(all, "AUTHENTICATION IS OFF") {
		t.Fatalf("start-up warnings:\n%s", all)
	}
	for name, secret := range map[string]string{"key": key, "token": token, "admin key": admin} {
		if strings.Contains(all, secret) {
			t.Fatalf("the %s is in the log:\n%s", name, all)
		}
	}
	st := openKBStore(t, data)
	if k, err := st.LookupKey(context.Background(), key); err != nil || k.LastUsedAt.IsZero() {
		t.Fatalf("the key's last use was not recorded: %+v %v", k, err)
	}
}
