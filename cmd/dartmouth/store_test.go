package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dartmouth-gw/dartmouth/session/pgtest"
	"github.com/jackc/pgx/v5"
)

// `dartmouth migrate` with DARTMOUTH_DATABASE_URL applies the migrations to PostgreSQL (twice
// is fine), writes no SQLite file, and never logs the password.
func TestMigrateOnPostgres(t *testing.T) {
	srv := pgtest.Start(t)
	dbURL := strings.Replace(srv.NewDatabase(t), pgtest.Superuser+"@", pgtest.Superuser+":pw-secret@", 1)
	dataDir := t.TempDir()
	env := map[string]string{"DARTMOUTH_DATABASE_URL": dbURL, "DARTMOUTH_DATA_DIR": dataDir}
	for range 2 {
		var out bytes.Buffer
		if err := run(t.Context(), []string{"migrate"}, func(k string) string { return env[k] }, &out, &out); err != nil {
			t.Fatalf("migrate: %v\n%s", err, out.String())
		}
		if !strings.Contains(out.String(), "migrations applied") || !strings.Contains(out.String(), srv.Addr) || strings.Contains(out.String(), "pw-secret") {
			t.Fatalf("migrate printed %q: want the database named, without its password", out.String())
		}
	}
	if _, err := os.Stat(filepath.Join(dataDir, "dartmouth.db")); !os.IsNotExist(err) {
		t.Fatalf("a SQLite file was made next to PostgreSQL (%v)", err)
	}
	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var versions, distinct int
	if err := conn.QueryRow(t.Context(), `SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_migrations`).Scan(&versions, &distinct); err != nil {
		t.Fatal(err)
	}
	if versions < 5 || versions != distinct {
		t.Fatalf("schema_migrations holds %d rows (%d versions): want each migration once", versions, distinct)
	}
}

func TestDatabaseURLValidation(t *testing.T) {
	tests := map[string]struct {
		url     string
		wantErr string
	}{
		"empty keeps SQLite":  {"", ""},
		"postgres":            {"postgres://u:p@db.internal:5432/dartmouth?sslmode=require", ""},
		"postgresql":          {"postgresql://u@db/dartmouth", ""},
		"unix socket":         {"postgres:///dartmouth?host=/var/run/postgresql", ""},
		"another engine":      {"mysql://u:p@db/dartmouth", `unsupported scheme "mysql"`},
		"a path":              {"/var/lib/dartmouth.db", `unsupported scheme ""`},
		"not a URL at all":    {"postgres://u:pw-secret@[::1", "not a URL"},
		"password not echoed": {"mysql://u:pw-secret@db/x", "unsupported scheme"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{"DARTMOUTH_DATABASE_URL": tt.url}
			c, err := parseConfig("t", nil, func(k string) string { return env[k] }, io.Discard)
			if tt.wantErr == "" {
				if err != nil || c.DatabaseURL != tt.url {
					t.Fatalf("parseConfig: %v (DatabaseURL %q)", err, c.DatabaseURL)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "pw-secret") {
				t.Fatalf("err = %v, want one containing %q and no password", err, tt.wantErr)
			}
		})
	}
}
