package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// API keys identify a user (and their plan) to the gateway. A key is "dm_" followed by 43
// base62 characters: 256 random bits. Only its SHA-256 is stored.
//
// Why a fast hash and not bcrypt/argon2: slow hashes exist to make guessing low-entropy
// passwords expensive. A key is 256 bits from crypto/rand, so there is nothing to guess: a
// stolen database of SHA-256 digests gives no way back to the keys, and a fast hash keeps
// every request's lookup cheap (a slow hash would cost tens of milliseconds per request).

// KeyPrefix starts every API key, so keys are recognisable (in code, logs scanners and secret
// scanners) and cannot be mistaken for session tokens.
const KeyPrefix = "dm_"

const (
	keyRandomChars = 43 // 43 base62 characters carry 256 bits
	// keyDisplayLen is how much of a key is kept in clear: enough for a human to tell keys
	// apart and for the lookup to find the row; 9 random characters (53 bits) reveal nothing
	// useful about the 34 that follow.
	keyDisplayLen = len(KeyPrefix) + 9
	keyNameMax    = 100
	// keyUseResolution bounds how often a key's last use is written: at most once a minute per
	// key, so authenticating a busy client is a read, not a write.
	keyUseResolution = time.Minute
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// ErrKeyRevoked matches (errors.Is) the error LookupKey returns for a revoked key.
var ErrKeyRevoked = errors.New("api key revoked")

// RevokedKeyError is what LookupKey returns for a key that exists but was revoked.
type RevokedKeyError struct {
	KeyID     string
	RevokedAt time.Time
}

func (e *RevokedKeyError) Error() string {
	return fmt.Sprintf("api key %s was revoked at %s", e.KeyID, e.RevokedAt.UTC().Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrKeyRevoked) true.
func (e *RevokedKeyError) Is(target error) bool { return target == ErrKeyRevoked }

// Key is an API key's record; the key itself is not part of it.
type Key struct {
	ID     string
	UserID string
	Plan   string
	Name   string
	// Prefix is the key's first characters ("dm_AbC123xyz"), shown to humans.
	Prefix    string
	CreatedAt time.Time
	// LastUsedAt is when the key last authenticated a request (to the minute); zero if never.
	LastUsedAt time.Time
	// RevokedAt is when the key was revoked; zero while it is valid.
	RevokedAt time.Time
}

// Revoked reports whether the key has been revoked.
func (k Key) Revoked() bool { return !k.RevokedAt.IsZero() }

// newKeySecret returns a fresh key: KeyPrefix and 43 characters drawn uniformly from base62.
func newKeySecret() string {
	out := make([]byte, 0, len(KeyPrefix)+keyRandomChars)
	out = append(out, KeyPrefix...)
	var buf [64]byte
	for len(out) < cap(out) {
		_, _ = rand.Read(buf[:]) // crypto/rand.Read never fails on supported platforms
		for _, b := range buf {
			if b >= 248 { // 248 = 4*62: dropping the rest keeps every character equally likely
				continue
			}
			out = append(out, base62[b%62])
			if len(out) == cap(out) {
				break
			}
		}
	}
	return string(out)
}

// wellFormedKey reports whether s has the shape of a key, so garbage is refused without a query.
func wellFormedKey(s string) bool {
	if len(s) != len(KeyPrefix)+keyRandomChars || !strings.HasPrefix(s, KeyPrefix) {
		return false
	}
	for i := len(KeyPrefix); i < len(s); i++ {
		if strings.IndexByte(base62, s[i]) < 0 {
			return false
		}
	}
	return true
}

func hashKey(plaintext string) [sha256.Size]byte { return sha256.Sum256([]byte(plaintext)) }

// CreateKey makes a new key for userID (created with plan if new) on plan. The plaintext is
// returned once and never stored: whoever asked must hand it over now.
func (s *SQLStore) CreateKey(ctx context.Context, userID, plan, name string) (string, Key, error) {
	userID, plan, name = strings.TrimSpace(userID), strings.TrimSpace(plan), strings.TrimSpace(name)
	switch {
	case userID == "" || len(userID) > 128:
		return "", Key{}, errors.New("create key: the user id must be 1-128 characters")
	case plan == "":
		return "", Key{}, errors.New("create key: a plan is required")
	case !utf8.ValidString(name) || utf8.RuneCountInString(name) > keyNameMax:
		return "", Key{}, fmt.Errorf("create key: the name must be valid text of at most %d characters", keyNameMax)
	}
	if _, err := s.EnsureUser(ctx, userID, plan); err != nil {
		return "", Key{}, fmt.Errorf("create key: %w", err)
	}
	plaintext := newKeySecret()
	sum := hashKey(plaintext)
	now := s.now()
	k := Key{ID: NewID("key"), UserID: userID, Plan: plan, Name: name, Prefix: plaintext[:keyDisplayLen], CreatedAt: time.UnixMilli(now)}
	_, err := s.db.ExecContext(ctx, s.dialect.rebind(`INSERT INTO api_keys (id, user_id, plan, name, prefix, hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`),
		k.ID, k.UserID, k.Plan, k.Name, k.Prefix, hex.EncodeToString(sum[:]), now)
	if err != nil {
		return "", Key{}, fmt.Errorf("create key: %w", err)
	}
	return plaintext, k, nil
}

const keyColumns = `id, user_id, plan, name, prefix, created_at, last_used_at, revoked_at`

type rowScanner interface{ Scan(dest ...any) error }

func scanKey(row rowScanner, extra ...any) (Key, error) {
	var k Key
	var created, used, revoked int64
	if err := row.Scan(append([]any{&k.ID, &k.UserID, &k.Plan, &k.Name, &k.Prefix, &created, &used, &revoked}, extra...)...); err != nil {
		return Key{}, err
	}
	k.CreatedAt = time.UnixMilli(created)
	if used > 0 {
		k.LastUsedAt = time.UnixMilli(used)
	}
	if revoked > 0 {
		k.RevokedAt = time.UnixMilli(revoked)
	}
	return k, nil
}

// LookupKey finds the key whose plaintext this is. An unknown or malformed key is ErrNotFound;
// a revoked one is a *RevokedKeyError (errors.Is ErrKeyRevoked). A valid key's use is recorded
// in LastUsedAt, at most once a minute.
//
// Rows are found by the key's clear prefix, then the SHA-256 digests are compared in constant
// time, so the time a lookup takes says nothing about how close a guess was.
func (s *SQLStore) LookupKey(ctx context.Context, plaintext string) (Key, error) {
	if !wellFormedKey(plaintext) {
		return Key{}, fmt.Errorf("lookup key: %w", ErrNotFound)
	}
	found, err := s.findKey(ctx, plaintext)
	if err != nil {
		return Key{}, fmt.Errorf("lookup key: %w", err)
	}
	if found.Revoked() {
		return Key{}, &RevokedKeyError{KeyID: found.ID, RevokedAt: found.RevokedAt}
	}
	now := s.clock.Now()
	if now.Sub(found.LastUsedAt) >= keyUseResolution {
		// Bookkeeping only: a failed write must not refuse a valid key, so its error is
		// dropped. The condition keeps concurrent requests from writing the same minute twice.
		res, err := s.db.ExecContext(ctx, s.dialect.rebind(`UPDATE api_keys SET last_used_at = ? WHERE id = ? AND last_used_at <= ?`),
			now.UnixMilli(), found.ID, now.Add(-keyUseResolution).UnixMilli())
		if err == nil {
			if n, _ := res.RowsAffected(); n > 0 {
				found.LastUsedAt = time.UnixMilli(now.UnixMilli())
			}
		}
	}
	return found, nil
}

// findKey returns the row whose hash matches plaintext's, or ErrNotFound.
func (s *SQLStore) findKey(ctx context.Context, plaintext string) (Key, error) {
	want := hashKey(plaintext)
	rows, err := s.db.QueryContext(ctx, s.dialect.rebind(`SELECT `+keyColumns+`, hash FROM api_keys WHERE prefix = ?`), plaintext[:keyDisplayLen])
	if err != nil {
		return Key{}, err
	}
	defer rows.Close()
	var found Key
	match := false
	for rows.Next() {
		var storedHex string
		k, err := scanKey(rows, &storedHex)
		if err != nil {
			return Key{}, err
		}
		stored, err := hex.DecodeString(storedHex)
		if err != nil || len(stored) != sha256.Size {
			continue // a corrupt row authenticates nobody
		}
		if subtle.ConstantTimeCompare(stored, want[:]) == 1 {
			found, match = k, true
		}
	}
	if err := rows.Err(); err != nil {
		return Key{}, err
	}
	if !match {
		return Key{}, ErrNotFound
	}
	return found, nil
}

// ListKeys returns the user's keys, revoked ones included, oldest first.
func (s *SQLStore) ListKeys(ctx context.Context, userID string) ([]Key, error) {
	rows, err := s.db.QueryContext(ctx, s.dialect.rebind(`SELECT `+keyColumns+` FROM api_keys WHERE user_id = ? ORDER BY created_at, id`), userID)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	defer rows.Close()
	var out []Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("list keys: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return out, nil
}

// RevokeKey revokes the user's key at once: the next request with it is refused. Revoking a
// revoked key does nothing; a key of another user is ErrNotFound, like one that does not exist.
func (s *SQLStore) RevokeKey(ctx context.Context, userID, keyID string) error {
	res, err := s.db.ExecContext(ctx, s.dialect.rebind(`UPDATE api_keys SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at = 0`),
		s.now(), keyID, userID)
	if err != nil {
		return fmt.Errorf("revoke key: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n > 0 {
		return nil
	}
	var revoked int64
	err = s.db.QueryRowContext(ctx, s.dialect.rebind(`SELECT revoked_at FROM api_keys WHERE id = ? AND user_id = ?`), keyID, userID).Scan(&revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("revoke key %s: %w", keyID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("revoke key: %w", err)
	}
	return nil
}
