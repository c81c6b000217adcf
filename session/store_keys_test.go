package session

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var keyShape = regexp.MustCompile(`^dm_[0-9A-Za-z]{43}$`)

func TestKeyLifecycle(t *testing.T) { forEachBackend(t, testKeyLifecycle) }

func testKeyLifecycle(t *testing.T) {
	s, clock, _ := newTestStore(t)
	ctx := t.Context()

	plaintext, k, err := s.CreateKey(ctx, "alice", "paid", "  laptop  ")
	if err != nil {
		t.Fatal(err)
	}
	if !keyShape.MatchString(plaintext) {
		t.Fatalf("key %q does not look like dm_ + 43 base62 characters", plaintext)
	}
	if k.UserID != "alice" || k.Plan != "paid" || k.Name != "laptop" || !strings.HasPrefix(k.ID, "key_") ||
		k.Prefix != plaintext[:12] || !k.CreatedAt.Equal(testEpoch) || !k.LastUsedAt.IsZero() || k.Revoked() {
		t.Fatalf("created key %+v", k)
	}
	// The user exists now, on the key's plan.
	if u, err := s.EnsureUser(ctx, "alice", "free"); err != nil || u.Plan != "paid" {
		t.Fatalf("user %+v %v", u, err)
	}

	clock.Advance(time.Second)
	got, err := s.LookupKey(ctx, plaintext)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != k.ID || got.UserID != "alice" || got.Plan != "paid" || !got.LastUsedAt.Equal(testEpoch.Add(time.Second)) {
		t.Fatalf("lookup %+v", got)
	}
	// Uses within the minute are not written again; later ones are.
	clock.Advance(30 * time.Second)
	if got, _ := s.LookupKey(ctx, plaintext); !got.LastUsedAt.Equal(testEpoch.Add(time.Second)) {
		t.Fatalf("last use moved within the minute: %v", got.LastUsedAt)
	}
	clock.Advance(time.Minute)
	if got, _ := s.LookupKey(ctx, plaintext); !got.LastUsedAt.Equal(testEpoch.Add(91 * time.Second)) {
		t.Fatalf("last use not recorded after a minute: %v", got.LastUsedAt)
	}

	second, k2, err := s.CreateKey(ctx, "alice", "paid", "")
	if err != nil {
		t.Fatal(err)
	}
	if second == plaintext || k2.ID == k.ID {
		t.Fatal("two keys are the same")
	}
	_, bobKey, err := s.CreateKey(ctx, "bob", "free", "")
	if err != nil {
		t.Fatal(err)
	}
	list, err := s.ListKeys(ctx, "alice")
	if err != nil || len(list) != 2 || list[0].ID != k.ID || list[1].ID != k2.ID {
		t.Fatalf("alice's keys %+v %v", list, err)
	}

	// Revocation is scoped to the owner: bob cannot revoke alice's key, nor tell it exists.
	if err := s.RevokeKey(ctx, "bob", k.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoke by another user: %v", err)
	}
	if err := s.RevokeKey(ctx, "alice", "key_missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoke a missing key: %v", err)
	}
	clock.Advance(time.Hour)
	if err := s.RevokeKey(ctx, "alice", k.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeKey(ctx, "alice", k.ID); err != nil {
		t.Fatalf("revoking twice: %v", err)
	}
	_, err = s.LookupKey(ctx, plaintext)
	var revoked *RevokedKeyError
	if !errors.Is(err, ErrKeyRevoked) || !errors.As(err, &revoked) || revoked.KeyID != k.ID || !revoked.RevokedAt.Equal(clock.Now()) {
		t.Fatalf("lookup of a revoked key: %v", err)
	}
	// The other keys still work.
	if got, err := s.LookupKey(ctx, second); err != nil || got.ID != k2.ID {
		t.Fatalf("alice's second key: %+v %v", got, err)
	}
	list, _ = s.ListKeys(ctx, "alice")
	if !list[0].Revoked() || list[1].Revoked() {
		t.Fatalf("list after revoke %+v", list)
	}
	if list, _ := s.ListKeys(ctx, "bob"); len(list) != 1 || list[0].ID != bobKey.ID {
		t.Fatalf("bob's keys %+v", list)
	}
}

func TestLookupKeyRefusesWhatIsNotAKey(t *testing.T) {
	forEachBackend(t, testLookupKeyRefusesWhatIsNotAKey)
}

func testLookupKeyRefusesWhatIsNotAKey(t *testing.T) {
	s, _, _ := newTestStore(t)
	ctx := t.Context()
	plaintext, _, err := s.CreateKey(ctx, "alice", "free", "")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(plaintext))
	flip := "a"
	if strings.HasSuffix(plaintext, "a") {
		flip = "b"
	}
	lastFlipped := plaintext[:len(plaintext)-1] + flip
	tests := map[string]string{
		"empty":                  "",
		"prefix only":            "dm_",
		"the displayed prefix":   plaintext[:12],
		"one character changed":  lastFlipped, // same prefix: reaches the hash comparison
		"one character short":    plaintext[:len(plaintext)-1],
		"one character more":     plaintext + "a",
		"not base62":             plaintext[:20] + "-" + plaintext[21:],
		"the stored hash":        hex.EncodeToString(sum[:]),
		"another prefix":         "sk_" + plaintext[3:],
		"surrounding whitespace": " " + plaintext,
	}
	for name, candidate := range tests {
		t.Run(name, func(t *testing.T) {
			if k, err := s.LookupKey(ctx, candidate); !errors.Is(err, ErrNotFound) {
				t.Fatalf("LookupKey = %+v, %v; want ErrNotFound", k, err)
			}
		})
	}
}

func TestCreateKeyRefusesBadInput(t *testing.T) { forEachBackend(t, testCreateKeyRefusesBadInput) }

func testCreateKeyRefusesBadInput(t *testing.T) {
	s, _, _ := newTestStore(t)
	tests := []struct{ name, user, plan, keyName string }{
		{"no user", "", "free", ""},
		{"blank user", "   ", "free", ""},
		{"user too long", strings.Repeat("u", 129), "free", ""},
		{"no plan", "alice", "", ""},
		{"name too long", "alice", "free", strings.Repeat("n", 101)},
		{"name not UTF-8", "alice", "free", "\xff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if key, _, err := s.CreateKey(t.Context(), tt.user, tt.plan, tt.keyName); err == nil || key != "" {
				t.Fatalf("CreateKey(%q, %q, %q) = %q, %v; want an error", tt.user, tt.plan, tt.keyName, key, err)
			}
		})
	}
}

// Acceptance: a key is never stored in clear. Every byte of the database folder (main file,
// WAL, shared memory) is searched for each key and for its secret part.
func TestKeyPlaintextNeverAppearsInTheDatabaseFile(t *testing.T) {
	s, _, path := newTestStore(t)
	ctx := t.Context()
	var keys []string
	var hashes []string
	for i, user := range []string{"alice", "alice", "bob"} {
		plaintext, k, err := s.CreateKey(ctx, user, "paid", "device "+string(rune('a'+i)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.LookupKey(ctx, plaintext); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			if err := s.RevokeKey(ctx, user, k.ID); err != nil {
				t.Fatal(err)
			}
		}
		sum := sha256.Sum256([]byte(plaintext))
		keys, hashes = append(keys, plaintext), append(hashes, hex.EncodeToString(sum[:]))
	}

	scan := func(stage string) {
		t.Helper()
		var all []byte
		entries, err := os.ReadDir(filepath.Dir(path))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(filepath.Dir(path), e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, b...)
		}
		for i, key := range keys {
			if bytes.Contains(all, []byte(key)) || bytes.Contains(all, []byte(key[12:])) {
				t.Fatalf("%s: key %d (or its secret part) is in the database files", stage, i)
			}
			// The scan does see what is stored: the digest and the clear prefix are there.
			if !bytes.Contains(all, []byte(hashes[i])) || !bytes.Contains(all, []byte(key[:12])) {
				t.Fatalf("%s: the scan does not find key %d's stored digest; it proves nothing", stage, i)
			}
		}
	}
	scan("while open") // rows may still be in the write-ahead log
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	scan("after close") // checkpointed into the main file
}
