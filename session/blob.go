package session

import (
	"context"
	"errors"
	"io"
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
