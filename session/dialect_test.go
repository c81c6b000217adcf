package session

import (
	"slices"
	"strings"
	"testing"
)

func TestRebind(t *testing.T) {
	postgres := dialect{name: "postgres", numberedPlaceholders: true}
	tests := []struct {
		name  string
		d     dialect
		query string
		want  string
	}{
		{"sqlite keeps question marks", sqliteDialect, `SELECT * FROM t WHERE a = ? AND b = ?`, `SELECT * FROM t WHERE a = ? AND b = ?`},
		{"no placeholders", postgres, `SELECT 1`, `SELECT 1`},
		{"empty", postgres, ``, ``},
		{"one", postgres, `SELECT * FROM t WHERE id = ?`, `SELECT * FROM t WHERE id = $1`},
		{"numbered left to right", postgres, `INSERT INTO t (a, b, c) VALUES (?, ?, ?)`, `INSERT INTO t (a, b, c) VALUES ($1, $2, $3)`},
		{"adjacent", postgres, `??`, `$1$2`},
		{"past nine", postgres, strings.Repeat("?,", 10) + "?", "$1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11"},
		{"multi-byte text preserved", postgres, "SELECT 'é✓' WHERE x = ?\n\tAND y = ?", "SELECT 'é✓' WHERE x = $1\n\tAND y = $2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.d.rebind(tt.query); got != tt.want {
				t.Errorf("rebind(%q) = %q, want %q", tt.query, got, tt.want)
			}
		})
	}
}

func TestSplitStatements(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []string
	}{
		{"empty", "", nil},
		{"only comments and blank lines", "-- a\n\n   -- indented\n\t\n", nil},
		{"one statement", "CREATE TABLE a (x INT);", []string{"CREATE TABLE a (x INT);"}},
		{
			name: "multi-line statements, comments and blank lines dropped",
			body: "-- header\nCREATE TABLE a (\n    x INT -- kept: not a whole-line comment\n);\n\n  -- between\nCREATE INDEX a_x ON a (x);\n",
			want: []string{"CREATE TABLE a (\n    x INT -- kept: not a whole-line comment\n);", "CREATE INDEX a_x ON a (x);"},
		},
		{"two statements on one line stay together", "INSERT INTO a VALUES (1); INSERT INTO a VALUES (2);", []string{"INSERT INTO a VALUES (1); INSERT INTO a VALUES (2);"}},
		{"semicolon mid-line does not split", "INSERT INTO a VALUES (';')\n  ;", []string{"INSERT INTO a VALUES (';')\n  ;"}},
		{"trailing whitespace after semicolon", "SELECT 1;   \nSELECT 2;\t", []string{"SELECT 1;", "SELECT 2;"}},
		{"CRLF line endings", "SELECT 1;\r\n-- c\r\nSELECT 2;\r\n", []string{"SELECT 1;", "SELECT 2;"}},
		{"unterminated last statement kept", "SELECT 1;\nSELECT 2", []string{"SELECT 1;", "SELECT 2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := splitStatements(tt.body); !slices.Equal(got, tt.want) {
				t.Errorf("splitStatements(%q)\n got %q\nwant %q", tt.body, got, tt.want)
			}
		})
	}
}

func TestSplitStatementsOnInitMigration(t *testing.T) {
	body, err := migrationFiles.ReadFile("migrations/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	stmts := splitStatements(string(body))
	if len(stmts) != 8 { // four tables, four indexes
		t.Fatalf("got %d statements, want 8: %q", len(stmts), stmts)
	}
	for _, s := range stmts {
		if !strings.HasPrefix(s, "CREATE ") || !strings.HasSuffix(s, ";") || strings.Contains(s, "--") {
			t.Errorf("statement %q: want a whole CREATE statement without comments", s)
		}
	}
}
