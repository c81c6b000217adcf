package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// ErrBlobNotFound is returned for a key that holds no blob.
var ErrBlobNotFound = errors.New("blob: not found")

// ErrBadBlobKey is returned for keys that could escape the store ("..", absolute paths).
var ErrBadBlobKey = errors.New("blob: bad key")

// BlobStore holds binary objects (synthesized audio, archives, uploads) under slash-separated
// keys such as "tts/ab12.mp3". The embedded default is a local folder; S3/R2 at scale.
type BlobStore interface {
	// Put stores the reader's content under key, replacing any previous blob atomically.
	Put(ctx context.Context, key string, r io.Reader, contentType string) error
	// Get opens the blob for reading, or returns ErrBlobNotFound.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// Delete removes the blob; a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// Ping reports whether the store is reachable and writable.
	Ping(ctx context.Context) error
}

// checkBlobKey refuses keys that could escape a store's root or alias another key: empty,
// absolute, backslashes, "." and ".." segments, doubled or trailing slashes (every key has one
// spelling), and segments starting with ".tmp-", which the local store keeps for its own
// temporary files. Every BlobStore applies the same rule, so a key that works on a laptop
// works on S3 and the other way round.
func checkBlobKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") || strings.Contains(key, "\\") || path.Clean(key) != key || key == "." || strings.HasPrefix(key, "../") || key == ".." {
		return fmt.Errorf("%w: %q", ErrBadBlobKey, key)
	}
	for _, part := range strings.Split(key, "/") {
		if part == ".." || strings.HasPrefix(part, ".tmp-") {
			return fmt.Errorf("%w: %q", ErrBadBlobKey, key)
		}
	}
	return nil
}
