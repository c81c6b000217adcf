package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"

	"github.com/dartmouth-gw/dartmouth/session"
)

// openStore opens the SQL store the configuration names, applying its migrations: PostgreSQL
// when database-url is set (the replicas share it), else the SQLite file in the data folder.
// where names it for logs, without a password. logger may be nil.
func openStore(ctx context.Context, cfg *Config, logger *slog.Logger) (store *session.SQLStore, where string, err error) {
	if cfg.DatabaseURL == "" {
		path := filepath.Join(cfg.DataDir, "dartmouth.db")
		store, err = session.OpenSQLite(ctx, session.SQLiteConfig{Path: path})
		return store, path, err
	}
	where = redactedDatabaseURL(cfg.DatabaseURL)
	store, err = session.OpenPostgres(ctx, session.PostgresConfig{URL: cfg.DatabaseURL, Logger: logger})
	return store, where, err
}

func (c *Config) validateDatabase() error {
	if c.DatabaseURL == "" {
		return nil
	}
	// The URL is not repeated in errors: it usually carries a password.
	u, err := url.Parse(c.DatabaseURL)
	if err != nil {
		return fmt.Errorf("database-url is not a URL: want postgres://user:password@host:5432/dbname")
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return fmt.Errorf("database-url: unsupported scheme %q: want postgres://user:password@host:5432/dbname (empty keeps SQLite in the data folder)", u.Scheme)
	}
	return nil
}

func redactedDatabaseURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "postgres"
	}
	return u.Redacted()
}
