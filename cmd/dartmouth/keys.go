package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dartmouth-gw/dartmouth/agents"
	"github.com/dartmouth-gw/dartmouth/gateway"
	"github.com/dartmouth-gw/dartmouth/session"
)

const keysUsage = `usage:
  dartmouth keys create --user USER --plan free|paid|premium [--name NAME]
                                      make an API key; it is printed once on stdout and
                                      never stored (only its SHA-256 is)
  dartmouth keys list --user USER     list the user's keys: id, prefix, plan, name, dates
  dartmouth keys revoke --user USER ID
                                      revoke a key at once (ID as listed)
flags: every gateway flag (--data-dir ...). Plans are free, paid, premium and any plan
named in DARTMOUTH_RATE_LIMITS.`

// keysCommand runs `dartmouth keys ...` on the gateway's database (the SQLite file, or
// PostgreSQL with --database-url). Keys are only checked when the gateway runs with
// DARTMOUTH_AUTH=keys.
func keysCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(stderr, keysUsage)
		return errors.New("keys: name a subcommand: create, list or revoke")
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "create", "list", "revoke":
	case "help":
		fmt.Fprintln(stdout, keysUsage)
		return nil
	default:
		fmt.Fprintln(stderr, keysUsage)
		return fmt.Errorf("keys: unknown subcommand %q", sub)
	}
	var user, plan, name string
	extra := func(fs *flag.FlagSet) {
		fs.StringVar(&user, "user", "", "the user the key belongs to")
		fs.StringVar(&plan, "plan", "", "create: the key's plan (free, paid, premium)")
		fs.StringVar(&name, "name", "", "create: a label for humans (the device, the app)")
	}
	cfg, rest, err := parseConfigArgs("dartmouth keys "+sub, interspersed(args, extra), getenv, stderr, extra)
	if err != nil {
		return err
	}
	if !agents.ValidUserID(user) {
		return fmt.Errorf("keys %s: --user must be 1-128 letters, digits or _.@:- (got %q)", sub, user)
	}
	switch {
	case sub == "revoke" && len(rest) != 1:
		return errors.New("keys revoke: name one key id, as `dartmouth keys list` shows it")
	case sub != "revoke" && len(rest) != 0:
		return fmt.Errorf("keys %s: unexpected argument %q", sub, rest[0])
	}
	if sub == "create" {
		plans, err := gateway.ParseRateLimits(cfg.RateLimits)
		if err != nil {
			return err
		}
		if _, ok := plans[plan]; !ok {
			return fmt.Errorf("keys create: --plan must be one of %s (got %q)", strings.Join(slices.Sorted(maps.Keys(plans)), ", "), plan)
		}
	}
	// The store serve uses: PostgreSQL when --database-url is set, so every replica sees the key.
	store, _, err := openStore(ctx, cfg, nil)
	if err != nil {
		return err
	}
	defer store.Close()

	switch sub {
	case "create":
		plaintext, k, err := store.CreateKey(ctx, user, plan, name)
		if err != nil {
			return err
		}
		// The key alone on stdout, so `KEY=$(dartmouth keys create ...)` works; the rest on stderr.
		fmt.Fprintln(stdout, plaintext)
		fmt.Fprintf(stderr, "created %s (%s…) for %s on the %s plan. Store the key now: it is shown only this once.\n", k.ID, k.Prefix, k.UserID, k.Plan)
		return nil
	case "list":
		keys, err := store.ListKeys(ctx, user)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tPREFIX\tPLAN\tNAME\tCREATED\tLAST USED\tSTATUS")
		for _, k := range keys {
			status := "active"
			if k.Revoked() {
				status = "revoked " + stamp(k.RevokedAt)
			}
			fmt.Fprintf(tw, "%s\t%s…\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Prefix, k.Plan, orDefault(k.Name, "-"), stamp(k.CreatedAt), stamp(k.LastUsedAt), status)
		}
		tw.Flush()
		fmt.Fprintf(stdout, "%d keys for %s\n", len(keys), user)
		return nil
	default: // revoke
		if err := store.RevokeKey(ctx, user, rest[0]); err != nil {
			if errors.Is(err, session.ErrNotFound) {
				return fmt.Errorf("keys revoke: %s has no key %q", user, rest[0])
			}
			return err
		}
		fmt.Fprintf(stdout, "revoked %s of %s\n", rest[0], user)
		return nil
	}
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04")
}

// validateAuth checks the authentication settings.
func (c *Config) validateAuth() error {
	switch {
	case c.Auth != gateway.AuthOpen && c.Auth != gateway.AuthKeys:
		return fmt.Errorf("auth must be open or keys (got %q)", c.Auth)
	case c.JWTTTL <= 0:
		return errors.New("jwt-ttl must be positive")
	case c.JWTSecret != "" && len(c.JWTSecret) < 32:
		return errors.New("jwt-secret must be at least 32 bytes (try: openssl rand -hex 32)")
	case c.AdminKey != "" && len(c.AdminKey) < 16:
		return errors.New("admin-key must be at least 16 characters (try: openssl rand -hex 32)")
	}
	return nil
}

// authConfig is the gateway's authentication from the settings; keys are looked up in store.
func authConfig(c *Config, store gateway.KeyStore) gateway.AuthConfig {
	auth := gateway.AuthConfig{Mode: c.Auth, AdminKey: c.AdminKey, TokenTTL: c.JWTTTL, Keys: store}
	if c.JWTSecret != "" {
		auth.TokenSecret = []byte(c.JWTSecret)
	}
	return auth
}
