package session

import (
	"strings"
	"testing"
)

func TestNewID(t *testing.T) {
	for _, prefix := range []string{"ses", "msg", "x"} {
		t.Run(prefix, func(t *testing.T) {
			const n = 10_000
			seen := make(map[string]bool, n)
			for range n {
				id := NewID(prefix)
				body, ok := strings.CutPrefix(id, prefix+"_")
				if !ok {
					t.Fatalf("NewID(%q) = %q, want prefix %q", prefix, id, prefix+"_")
				}
				if len(body) != 26 { // 128 bits in unpadded base32
					t.Fatalf("NewID(%q) = %q: random part has %d chars, want 26", prefix, id, len(body))
				}
				if i := strings.IndexFunc(body, func(r rune) bool { return !('a' <= r && r <= 'z' || '2' <= r && r <= '7') }); i >= 0 {
					t.Fatalf("NewID(%q) = %q: %q is not a lowercase base32 character", prefix, id, body[i])
				}
				if seen[id] {
					t.Fatalf("NewID(%q) repeated %q", prefix, id)
				}
				seen[id] = true
			}
		})
	}
}
