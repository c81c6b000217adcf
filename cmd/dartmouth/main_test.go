package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// repoRoot is where the Makefile lives.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "Makefile")); err != nil {
		t.Fatalf("no Makefile at %s", dir)
	}
	return dir
}

// process is a running gateway started from the command line.
type process struct {
	cmd  *exec.Cmd
	pid  int // the gateway's own pid (under `make run` it is make's child)
	url  string
	logs *bytes.Buffer
	exit chan error
}

// start runs a command in its own process group and waits for the "listening" log line.
func start(t *testing.T, cmd *exec.Cmd) *process {
	t.Helper()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, logs: &bytes.Buffer{}, exit: make(chan error, 1)}
	type listening struct {
		addr string
		pid  int
	}
	ready := make(chan listening, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.logs.WriteString(line + "\n")
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "dartmouth listening" {
				ready <- listening{rec["addr"].(string), int(rec["pid"].(float64))}
			}
		}
		p.exit <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	select {
	case l := <-ready:
		p.url, p.pid = "http://"+l.addr, l.pid
	case err := <-p.exit:
		t.Fatalf("exited before listening (%v):\n%s", err, p.logs)
	case <-time.After(3 * time.Minute): // covers the first build
		t.Fatalf("not listening after 3 minutes:\n%s", p.logs)
	}
	return p
}

// stop sends SIGTERM to the gateway and expects it (and make, if make started it) to exit 0.
func (p *process) stop(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(p.pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exit:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.logs)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no exit 30s after SIGTERM:\n%s", p.logs)
	}
}

func chat(t *testing.T, base, body string) map[string]any {
	t.Helper()
	resp, err := http.Post(base+"/api/v2/chat", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("chat: %d %v %v", resp.StatusCode, out, err)
	}
	return out
}

func history(t *testing.T, base, sid string) []any {
	t.Helper()
	resp, err := http.Get(base + "/api/v2/sessions/" + sid + "/messages")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("history: %d %v %v", resp.StatusCode, out, err)
	}
	return out["messages"].([]any)
}

// The first acceptance point, end to end: `make run` with no configuration answers "Hello!",
// keeps a follow-up in the same session, and the history survives a restart.
func TestMakeRunServesAndPersistsAcrossRestart(t *testing.T) {
	root := repoRoot(t)
	work := t.TempDir() // the server's working folder: ./data lands here
	env := append(os.Environ(), "DARTMOUTH_ADDR=127.0.0.1:0", "DARTMOUTH_LOG_FORMAT=json", "DARTMOUTH_INSTALL_SPEECH=0")

	makeRun := exec.Command("make", "--no-print-directory", "-C", root, "run", "BIN="+filepath.Join(work, "dartmouth"))
	makeRun.Env = env
	// `make -C` runs the binary in the repo; point the default ./data at the temp folder.
	makeRun.Env = append(makeRun.Env, "DARTMOUTH_DATA_DIR="+filepath.Join(work, "data"))
	first := start(t, makeRun)

	hello := chat(t, first.url, `{"agentId":"fam","message":"Hello!"}`)
	sid, _ := hello["sessionId"].(string)
	if content, _ := hello["content"].(string); !strings.HasPrefix(content, "Hello!") || sid == "" {
		t.Fatalf("want a greeting and a session id, got %v", hello)
	}
	follow := chat(t, first.url, fmt.Sprintf(`{"agentId":"fam","message":"what is 7 * 6?","sessionId":%q}`, sid))
	if follow["sessionId"] != sid {
		t.Fatalf("follow-up left the session: %v", follow)
	}
	first.stop(t)
	if _, err := os.Stat(filepath.Join(work, "data", "dartmouth.db")); err != nil {
		t.Fatalf("no SQLite file in the data folder: %v", err)
	}

	// Restart the same binary with defaults only (no flags), from the work folder.
	again := exec.Command(filepath.Join(work, "dartmouth"))
	again.Dir = work
	again.Env = env
	second := start(t, again)
	msgs := history(t, second.url, sid)
	if len(msgs) != 4 {
		t.Fatalf("want 4 stored messages after restart, got %d", len(msgs))
	}
	if m := msgs[0].(map[string]any); m["role"] != "user" || m["content"] != "Hello!" {
		t.Fatalf("first stored message %v", m)
	}
	if m := msgs[3].(map[string]any); !strings.Contains(m["content"].(string), "42") {
		t.Fatalf("stored answer %v", m)
	}
	chat(t, second.url, fmt.Sprintf(`{"agentId":"fam","message":"thanks","sessionId":%q}`, sid))
	if n := len(history(t, second.url, sid)); n != 6 {
		t.Fatalf("the restarted server should continue the session, have %d messages", n)
	}
	second.stop(t)
}

func TestHelpListsEverySetting(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"--help"}, func(string) string { return "" }, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "help") {
		t.Fatalf("want flag.ErrHelp, got %v", err)
	}
	for _, s := range settings(&Config{}) {
		if !strings.Contains(out.String(), "--"+s.flag) || !strings.Contains(out.String(), s.env) {
			t.Errorf("--help does not list %s / %s", s.flag, s.env)
		}
	}
	for _, want := range []string{"default :8080", "default ./data", "serve", "migrate"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
}

func TestConfigPrecedence(t *testing.T) {
	env := map[string]string{"DARTMOUTH_ADDR": ":9999", "DARTMOUTH_REQUEST_TIMEOUT": "5s", "OPENAI_API_KEY": "sk-env"}
	getenv := func(k string) string { return env[k] }
	cases := []struct {
		name            string
		env             func(string) string
		args            []string
		addr, openAIKey string
		timeout         time.Duration
	}{
		{"defaults", func(string) string { return "" }, nil, ":8080", "", 30 * time.Second},
		{"env over default", getenv, nil, ":9999", "sk-env", 5 * time.Second},
		{"flag over env", getenv, []string{"--addr", "127.0.0.1:1", "--request-timeout", "2s"}, "127.0.0.1:1", "sk-env", 2 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig("t", tc.args, tc.env, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if c.Addr != tc.addr || c.OpenAIAPIKey != tc.openAIKey || c.RequestTimeout != tc.timeout || c.DataDir != "./data" || !c.OfflineFallback {
				t.Fatalf("%+v", c)
			}
		})
	}
	for name, bad := range map[string]map[string]string{
		"bad duration": {"DARTMOUTH_REQUEST_TIMEOUT": "soon"},
		"bad number":   {"DARTMOUTH_BODY_LIMIT": "lots"},
		"bad format":   {"DARTMOUTH_LOG_FORMAT": "xml"},
		"zero limit":   {"DARTMOUTH_BODY_LIMIT": "0"},
	} {
		if _, err := parseConfig("t", nil, func(k string) string { return bad[k] }, io.Discard); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
	if _, err := parseConfig("t", []string{"stray"}, getenv, io.Discard); err == nil {
		t.Error("a stray argument must be refused")
	}
}

func TestMigrateCreatesTheDatabase(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"migrate", "--data-dir", dir}, func(string) string { return "" }, &out, &out); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "dartmouth.db")); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), []string{"frobnicate"}, func(string) string { return "" }, &out, &out); err == nil {
		t.Fatal("an unknown command must fail")
	}
}
