package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dartmouth-gw/dartmouth/agents/rag"
	"github.com/dartmouth-gw/dartmouth/session"
)

// writeTree writes files (slash-separated names) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

var helpCentre = map[string]string{
	"returns.md":         "# Returns\n\n## Refund window\nYou can return items within 30 days for a full refund.\n\n## Exchanges\nReturn the item and place a new order.\n",
	"shipping.markdown":  "# Shipping\n\n## Delivery times\nStandard delivery takes 3 to 5 working days.\n",
	"account/faq.txt":    "Reset your password from the sign-in page with Forgot password.",
	"account/notes.json": `{"not": "a document"}`,
}

func kbEnv(dataDir string, extra map[string]string) func(string) string {
	return func(k string) string {
		if v, ok := extra[k]; ok {
			return v
		}
		return map[string]string{"DARTMOUTH_DATA_DIR": dataDir, "DARTMOUTH_LOG_LEVEL": "error"}[k]
	}
}

func openKBStore(t *testing.T, dataDir string) *session.SQLStore {
	t.Helper()
	st, err := session.OpenSQLite(context.Background(), session.SQLiteConfig{Path: filepath.Join(dataDir, "dartmouth.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func chunkIDs(t *testing.T, st *session.SQLStore, kb string) []string {
	t.Helper()
	chunks, err := st.ListChunks(context.Background(), kb)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range chunks {
		ids = append(ids, c.ID)
	}
	return ids
}

func TestKBIngestFolderIsIdempotent(t *testing.T) {
	ctx := context.Background()
	docs, data := t.TempDir(), t.TempDir()
	writeTree(t, docs, helpCentre)
	env := kbEnv(data, nil)

	var stdout, stderr bytes.Buffer
	// Flags may follow the path.
	if err := kbCommand(ctx, []string{"ingest", docs, "--kb", "help"}, env, &stdout, &stderr); err != nil {
		t.Fatalf("ingest: %v\n%s", err, stderr.String())
	}
	for _, want := range []string{"ingested 1/3 files (account/faq.txt: 1 chunks, 1 embedded)", "ingested 2/3 files (returns.md: 2 chunks, 2 embedded)", "ingested 3/3 files (shipping.markdown: 1 chunks, 1 embedded)"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	if !strings.Contains(stdout.String(), `knowledge base "help": 3 files (0 unchanged, 0 failed), 4 chunks, 4 texts embedded with local-hash-v1-1024`) {
		t.Errorf("summary: %s", stdout.String())
	}
	st := openKBStore(t, data)
	stored, err := st.ListDocuments(ctx, "help")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range stored {
		names = append(names, d.Name)
	}
	if want := []string{"account/faq.txt", "returns.md", "shipping.markdown"}; !slices.Equal(names, want) {
		t.Fatalf("documents %q, want %q", names, want)
	}
	before := chunkIDs(t, st, "help")
	if len(before) != 4 {
		t.Fatalf("%d chunks, want 4", len(before))
	}

	// Again: nothing is embedded, nothing is rewritten, nothing is duplicated.
	stdout.Reset()
	stderr.Reset()
	if err := kbCommand(ctx, []string{"ingest", "--kb=help", docs}, env, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "3 files (3 unchanged, 0 failed), 4 chunks, 0 texts embedded") || !strings.Contains(stderr.String(), "ingested 3/3 files (shipping.markdown: unchanged)") {
		t.Fatalf("second run:\n%s%s", stdout.String(), stderr.String())
	}
	if after := chunkIDs(t, st, "help"); !slices.Equal(after, before) {
		t.Fatalf("chunks changed on re-ingest: %v -> %v", before, after)
	}

	// What was ingested is searchable, listed, and deletable.
	stdout.Reset()
	if err := kbCommand(ctx, []string{"search", "--kb", "help", "how", "long", "does", "delivery", "take?"}, env, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "shipping.markdown › Delivery times") {
		t.Fatalf("search: %s", stdout.String())
	}
	stdout.Reset()
	if err := kbCommand(ctx, []string{"list", "--kb", "help"}, env, &stdout, &stderr); err != nil || !strings.Contains(stdout.String(), "returns.md\t2 chunks") || !strings.Contains(stdout.String(), `3 documents in "help"`) {
		t.Fatalf("list: %v %s", err, stdout.String())
	}
	if err := kbCommand(ctx, []string{"delete", "--kb", "help", "returns.md"}, env, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if ids := chunkIDs(t, st, "help"); len(ids) != 2 {
		t.Fatalf("%d chunks after delete, want 2", len(ids))
	}
	// The default knowledge base was never touched.
	if ids := chunkIDs(t, st, rag.DefaultKB); len(ids) != 0 {
		t.Fatalf("default knowledge base has %d chunks", len(ids))
	}
}

func TestKBIngestReportsBadFilesAndGoesOn(t *testing.T) {
	docs, data := t.TempDir(), t.TempDir()
	writeTree(t, docs, map[string]string{"a.md": "## A\nFine.", "b.md": "\xff\xfe", "c.md": "## C\nFine too."})
	var stdout, stderr bytes.Buffer
	err := kbCommand(context.Background(), []string{"ingest", docs}, kbEnv(data, nil), &stdout, &stderr)
	if err == nil || err.Error() != "kb ingest: 1 of 3 files failed" {
		t.Fatalf("error %v", err)
	}
	if !strings.Contains(stderr.String(), "ingested 2/3 files (b.md failed:") || !strings.Contains(stderr.String(), "ingested 3/3 files (c.md: 1 chunks") {
		t.Fatalf("stderr:\n%s", stderr.String())
	}
	// A single file works too, named by its base name.
	stdout.Reset()
	if err := kbCommand(context.Background(), []string{"ingest", filepath.Join(docs, "a.md"), "--kb", "one"}, kbEnv(data, nil), &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if docs, _ := openKBStore(t, data).ListDocuments(context.Background(), "one"); len(docs) != 1 || docs[0].Name != "a.md" {
		t.Fatalf("single file: %+v", docs)
	}
}

func TestKBRefusesBadInput(t *testing.T) {
	data := t.TempDir()
	env := kbEnv(data, nil)
	tests := map[string][]string{
		"no subcommand":         nil,
		"flag first":            {"--kb", "x"},
		"unknown subcommand":    {"import", "x"},
		"ingest without a path": {"ingest"},
		"ingest two paths":      {"ingest", "a", "b"},
		"missing path":          {"ingest", filepath.Join(data, "missing")},
		"bad kb name":           {"ingest", data, "--kb", "../etc"},
		"empty search":          {"search"},
		"unknown flag":          {"list", "--colour"},
		"unknown embedder":      {"list", "--embeddings", "magic"},
		"openai without a key":  {"list", "--embeddings", "openai"},
		"delete nothing":        {"delete"},
		"delete missing":        {"delete", "nope.md"},
	}
	for name, args := range tests {
		if err := kbCommand(context.Background(), args, env, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}

// With an OpenAI key, ingestion embeds through the Embeddings API, once per text.
func TestKBIngestWithOpenAIEmbeddings(t *testing.T) {
	var mu sync.Mutex
	var requests []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		requests = append(requests, body)
		mu.Unlock()
		if r.URL.Path != "/v1/embeddings" || r.Header.Get("Authorization") != "Bearer sk-test" {
			http.Error(w, `{"error":{"message":"bad request"}}`, http.StatusBadRequest)
			return
		}
		inputs, _ := body["input"].([]any)
		data := make([]map[string]any, len(inputs))
		for i := range inputs {
			data[i] = map[string]any{"object": "embedding", "index": i, "embedding": []float64{1, float64(i), 0.5}}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"object": "list", "data": data, "model": body["model"], "usage": map[string]any{"prompt_tokens": 1, "total_tokens": 1}})
	}))
	defer srv.Close()
	docs, data := t.TempDir(), t.TempDir()
	writeTree(t, docs, helpCentre)
	env := kbEnv(data, map[string]string{"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": srv.URL + "/v1"})
	var stdout bytes.Buffer
	if err := kbCommand(context.Background(), []string{"ingest", docs}, env, &stdout, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "4 texts embedded with text-embedding-3-small") {
		t.Fatalf("summary %s", stdout.String())
	}
	mu.Lock()
	first := len(requests)
	model := requests[0]["model"]
	mu.Unlock()
	if first != 3 || model != "text-embedding-3-small" {
		t.Fatalf("%d requests for model %v, want one per file for text-embedding-3-small", first, model)
	}
	if err := kbCommand(context.Background(), []string{"ingest", docs}, env, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(requests) != first {
		t.Fatalf("re-ingest made %d embedding calls", len(requests)-first)
	}
}

func TestInterspersedFlags(t *testing.T) {
	extra := func(fs *flag.FlagSet) { fs.String("kb", "", ""); fs.Int("k", 0, "") }
	tests := []struct {
		in, want []string
	}{
		{[]string{"docs", "--kb", "faq"}, []string{"--kb", "faq", "--", "docs"}},
		{[]string{"--kb=faq", "docs"}, []string{"--kb=faq", "--", "docs"}},
		{[]string{"refund", "policy", "--k", "3", "--voice"}, []string{"--k", "3", "--voice", "--", "refund", "policy"}},
		{[]string{"--offline-fallback", "docs"}, []string{"--offline-fallback", "--", "docs"}},
		{[]string{"a", "--", "--not-a-flag"}, []string{"--", "a", "--not-a-flag"}},
		{[]string{"--unknown", "docs"}, []string{"--unknown", "--", "docs"}},
		{[]string{"--kb"}, []string{"--kb", "--"}},
		{nil, []string{"--"}},
	}
	for _, tt := range tests {
		if got := interspersed(tt.in, extra); !slices.Equal(got, tt.want) {
			t.Errorf("interspersed(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestProgressBarOnATerminal(t *testing.T) {
	var buf bytes.Buffer
	p := &progress{w: &buf, tty: true}
	p.update(rag.Progress{Done: 1, Total: 2, Name: "a.md"})
	p.update(rag.Progress{Done: 2, Total: 2, Name: "b.md", Err: os.ErrPermission})
	p.finish()
	out := buf.String()
	for _, want := range []string{"\r\033[K[===============               ] 1/2 files  a.md", "b.md failed: permission denied\n", "[==============================] 2/2 files  b.md\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%q", want, out)
		}
	}
	if strings.Contains(out, "ingested") {
		t.Errorf("a terminal gets the bar, not lines: %q", out)
	}
	if newProgress(&buf).tty {
		t.Error("a buffer is not a terminal")
	}
}

// Acceptance: a folder of Markdown ingested with "kb ingest" is answered, with its source,
// by support and by fam through /api/v2/chat on the served binary, offline.
func TestKBIngestedFolderIsAnsweredBySupportAndFAM(t *testing.T) {
	docs, data := t.TempDir(), t.TempDir()
	writeTree(t, docs, map[string]string{
		"lamp.md":   "# Zephyr lamp\n\n## Pairing\nHold the power button for seven seconds until the light blinks blue. Then open the app and tap Add device.\n\n## Cleaning\nWipe the shade with a dry cloth; never use water.\n",
		"garden.md": "# Garden club\n\n## Meetings\nThe garden club meets on the first Tuesday of each month in the library annex.\n",
	})
	var stdout, stderr bytes.Buffer
	if err := kbCommand(context.Background(), []string{"ingest", docs}, kbEnv(data, nil), &stdout, &stderr); err != nil {
		t.Fatalf("ingest: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "ingested 2/2 files") {
		t.Fatalf("no progress:\n%s", stderr.String())
	}
	s := startServe(t, data)
	tests := []struct{ agent, message, answer, source string }{
		{"fam", "How do I pair the Zephyr lamp?", "Hold the power button for seven seconds", "(source: lamp.md › Pairing)"},
		{"support", "How do I pair the Zephyr lamp?", "Hold the power button for seven seconds", "(source: lamp.md › Pairing)"},
		{"fam", "When does the garden club meet?", "first Tuesday of each month", "(source: garden.md › Meetings)"},
	}
	for _, tt := range tests {
		var reply struct {
			Content string `json:"content"`
		}
		body, _ := json.Marshal(map[string]string{"agentId": tt.agent, "userId": "ada", "message": tt.message})
		if status := s.post(t, "/api/v2/chat", string(body), &reply); status != http.StatusOK {
			t.Fatalf("%s: status %d", tt.agent, status)
		}
		if !strings.Contains(reply.Content, tt.answer) || !strings.Contains(reply.Content, tt.source) {
			t.Errorf("%s %q answered %q, want %q with %s", tt.agent, tt.message, reply.Content, tt.answer, tt.source)
		}
	}
}
