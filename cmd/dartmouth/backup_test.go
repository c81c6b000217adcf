package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/session"
	"github.com/dartmouth-gw/dartmouth/session/pgtest"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// fillStore writes rows into most tables through the store's own methods.
func fillStore(t *testing.T, st *session.SQLStore) {
	t.Helper()
	ctx := t.Context()
	if _, err := st.EnsureUser(ctx, "alice", "paid"); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateSession(ctx, session.Session{ID: "ses_1", UserID: "alice", AgentID: "fam", Metadata: map[string]any{"lang": "fr"}}); err != nil {
		t.Fatal(err)
	}
	for i, content := range []string{"Bonjour, ça va ?", "Très bien.\n\"Merci\" !"} {
		role := []string{session.RoleUser, session.RoleAssistant}[i]
		if err := st.AppendMessage(ctx, session.Message{ID: session.NewID("msg"), SessionID: "ses_1", Role: role, Content: content}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.RecordCost(ctx, session.Cost{ID: "c1", UserID: "alice", AgentID: "fam", SessionID: "ses_1", Kind: "llm", InputTokens: 12, USD: 0.000123}); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordEvent(ctx, session.Event{Type: "turn.completed", UserID: "alice", AgentID: "fam", Data: map[string]any{"intent": "greeting"}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.CreateKey(ctx, "alice", "paid", "phone"); err != nil {
		t.Fatal(err)
	}
	if err := st.PutEmbeddings(ctx, []session.Embedding{{Key: "e1", Model: "m", Vector: []float32{1.5, -2, 0.25}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateReminder(ctx, session.Reminder{UserID: "alice", Text: "call mom", DueAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
}

// tableRows reads every row of the store, by table, through a backup: rows as sorted JSON.
func tableRows(t *testing.T, st *session.SQLStore) map[string][]string {
	t.Helper()
	var buf bytes.Buffer
	if _, err := st.Backup(t.Context(), &buf); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(zr)
	out := map[string][]string{}
	table := ""
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if raw[0] == '[' {
			out[table] = append(out[table], string(raw))
			continue
		}
		var head struct {
			Table string `json:"table"`
		}
		_ = json.Unmarshal(raw, &head)
		if head.Table != "" {
			table = head.Table
			out[table] = []string{}
		}
	}
	for _, rows := range out {
		slices.Sort(rows)
	}
	return out
}

func runCmd(t *testing.T, fn func(context.Context, []string, func(string) string, io.Writer, io.Writer) error, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := fn(t.Context(), args, func(k string) string { return env[k] }, &out, &errOut)
	return out.String(), errOut.String(), err
}

// A backup of SQLite, written to the local blob store, restores into PostgreSQL with every
// row intact.
func TestBackupSQLiteRestorePostgres(t *testing.T) {
	dataDir := t.TempDir()
	src := openKBStore(t, dataDir)
	fillStore(t, src)
	want := tableRows(t, src)

	env := map[string]string{"DARTMOUTH_DATA_DIR": dataDir, "DARTMOUTH_LOG_LEVEL": "error"}
	key, stderr, err := runCmd(t, backupCommand, env, "--to", "backups/test.jsonl.gz")
	if err != nil || strings.TrimSpace(key) != "backups/test.jsonl.gz" || !strings.Contains(stderr, "sqlite") {
		t.Fatalf("backup: %v\nstdout %q\nstderr %q", err, key, stderr)
	}

	dbURL := pgtest.Start(t).NewDatabase(t)
	env["DARTMOUTH_DATABASE_URL"] = dbURL
	out, _, err := runCmd(t, restoreCommand, env, "backups/test.jsonl.gz")
	if err != nil || !strings.Contains(out, "restored") || !strings.Contains(out, "a sqlite backup") {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	dst, err := session.OpenPostgres(t.Context(), session.PostgresConfig{URL: dbURL})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if got := tableRows(t, dst); !reflect.DeepEqual(got, want) {
		t.Fatalf("PostgreSQL after restore:\n%v\nwant\n%v", got, want)
	}
	msgs, err := dst.ListMessages(t.Context(), "alice", "ses_1", 0)
	if err != nil || len(msgs) != 2 || msgs[1].Content != "Très bien.\n\"Merci\" !" {
		t.Fatalf("messages on PostgreSQL: %+v %v", msgs, err)
	}
	// Again: the database holds rows now.
	if _, _, err := runCmd(t, restoreCommand, env, "backups/test.jsonl.gz"); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("a second restore: %v, want a refusal naming --force", err)
	}
}

// A backup to S3 (a real S3 API server, gofakes3) restores into a fresh SQLite elsewhere;
// --force replaces what the database holds.
func TestBackupToS3(t *testing.T) {
	backend := s3mem.New()
	if err := backend.CreateBucket("backups"); err != nil {
		t.Fatal(err)
	}
	var puts atomic.Int32
	fake := gofakes3.New(backend).Server()
	s3 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			puts.Add(1)
		}
		fake.ServeHTTP(w, r)
	}))
	defer s3.Close()
	s3env := func(dataDir string) map[string]string {
		return map[string]string{
			"DARTMOUTH_DATA_DIR": dataDir, "DARTMOUTH_LOG_LEVEL": "error",
			"DARTMOUTH_S3_BUCKET": "backups", "DARTMOUTH_S3_ENDPOINT": s3.URL, "DARTMOUTH_S3_PREFIX": "prod",
			"AWS_ACCESS_KEY_ID": "AKTEST", "AWS_SECRET_ACCESS_KEY": "secret",
		}
	}
	srcDir := t.TempDir()
	src := openKBStore(t, srcDir)
	fillStore(t, src)
	want := tableRows(t, src)

	key, _, err := runCmd(t, backupCommand, s3env(srcDir))
	key = strings.TrimSpace(key)
	if err != nil || !strings.HasPrefix(key, "backups/"+time.Now().UTC().Format("2006/01/02")+"/dartmouth-") || !strings.HasSuffix(key, ".jsonl.gz") {
		t.Fatalf("backup: %v, key %q", err, key)
	}
	if n := puts.Load(); n != 1 {
		t.Fatalf("%d PUTs reached S3, want 1", n)
	}
	obj, err := backend.GetObject("backups", "prod/"+key, nil)
	if err != nil {
		t.Fatalf("the backup is not in the bucket under the prefix: %v", err)
	}
	_ = obj.Contents.Close()

	dstDir := t.TempDir()
	if _, _, err := runCmd(t, restoreCommand, s3env(dstDir), key); err != nil {
		t.Fatalf("restore: %v", err)
	}
	dst := openKBStore(t, dstDir)
	if got := tableRows(t, dst); !reflect.DeepEqual(got, want) {
		t.Fatalf("restored:\n%v\nwant\n%v", got, want)
	}
	if _, err := dst.EnsureUser(t.Context(), "zed", "free"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCmd(t, restoreCommand, s3env(dstDir), key, "--force"); err != nil {
		t.Fatalf("forced restore: %v", err)
	}
	if got := tableRows(t, dst); !reflect.DeepEqual(got, want) {
		t.Fatalf("after a forced restore:\n%v\nwant\n%v", got, want)
	}
}

func TestBackupCommandErrors(t *testing.T) {
	env := map[string]string{"DARTMOUTH_DATA_DIR": t.TempDir(), "DARTMOUTH_LOG_LEVEL": "error"}
	tests := []struct {
		name    string
		fn      func(context.Context, []string, func(string) string, io.Writer, io.Writer) error
		args    []string
		wantErr string
	}{
		{"restore without a key", restoreCommand, nil, "name one backup key"},
		{"restore of a missing key", restoreCommand, []string{"backups/nope.jsonl.gz"}, `no backup at "backups/nope.jsonl.gz"`},
		{"backup with a stray argument", backupCommand, []string{"somewhere"}, "unexpected argument"},
		{"backup to a key escaping the store", backupCommand, []string{"--to", "../outside.gz"}, "bad key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runCmd(t, tt.fn, env, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(env["DARTMOUTH_DATA_DIR"], "outside.gz")); !os.IsNotExist(err) {
		t.Fatalf("a backup was written outside the blob store (%v)", err)
	}
}
