package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// LocalBlobStore keeps blobs as files under a root folder.
type LocalBlobStore struct {
	root string

	// wrapWrite, when set, stands between a Put and its temporary file. It is a test seam
	// only: where a small filesystem cannot be mounted (not root), the disk-full tests make
	// writes fail with ENOSPC through it. nil in production.
	wrapWrite func(f *os.File) io.Writer
}

var _ BlobStore = (*LocalBlobStore)(nil)

// NewLocalBlobStore creates root if needed.
func NewLocalBlobStore(root string) (*LocalBlobStore, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("blob store: %w", err)
	}
	return &LocalBlobStore{root: root}, nil
}

// resolve maps a key to a file path inside root, refusing keys that would leave it.
func (l *LocalBlobStore) resolve(key string) (string, error) {
	if err := checkBlobKey(key); err != nil {
		return "", err
	}
	return filepath.Join(l.root, filepath.FromSlash(key)), nil
}

// Put implements BlobStore: it writes to a temporary file in the blob's folder, syncs it and
// renames it over the key, so readers never see half a blob, a failed write (disk full)
// leaves the previous one intact, and a crash right after Put returns cannot leave an empty
// or short file under the key (the rename reaching the disk before the data would).
func (l *LocalBlobStore) Put(ctx context.Context, key string, r io.Reader, _ string) error {
	p, err := l.resolve(key)
	if err != nil {
		return err
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("blob put %s: %w", key, err)
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("blob put %s: %w", key, err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	var w io.Writer = tmp
	if l.wrapWrite != nil {
		w = l.wrapWrite(tmp)
	}
	if _, err := io.Copy(w, contextReader{ctx: ctx, r: r}); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("blob put %s: %w", key, err)
	}
	// Some filesystems (NFS, quotas) report a full disk only when the data is flushed.
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("blob put %s: %w", key, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("blob put %s: %w", key, err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("blob put %s: %w", key, err)
	}
	if err := syncDir(dir); err != nil {
		// The new blob is in place but might not survive a crash: say so, so a caller that
		// deletes its source afterwards (archival) keeps it and tries again.
		return fmt.Errorf("blob put %s: sync folder: %w", key, err)
	}
	return nil
}

// syncDir makes a rename in dir durable. Filesystems that cannot sync a folder say EINVAL;
// there the rename is as durable as it gets, which is not an error.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, syscall.EINVAL) {
		return nil
	}
	return err
}

// Get implements BlobStore.
func (l *LocalBlobStore) Get(_ context.Context, key string) (io.ReadCloser, error) {
	p, err := l.resolve(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrBlobNotFound, key)
	}
	if err != nil {
		return nil, fmt.Errorf("blob get %s: %w", key, err)
	}
	// A folder made by nested keys ("tts" for "tts/ab.mp3") opens fine but holds no blob.
	if fi, err := f.Stat(); err != nil || fi.IsDir() {
		_ = f.Close()
		if err != nil {
			return nil, fmt.Errorf("blob get %s: %w", key, err)
		}
		return nil, fmt.Errorf("%w: %s", ErrBlobNotFound, key)
	}
	return f, nil
}

// Delete implements BlobStore.
func (l *LocalBlobStore) Delete(_ context.Context, key string) error {
	p, err := l.resolve(key)
	if err != nil {
		return err
	}
	if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
		return nil // a folder made by nested keys holds no blob: nothing to delete
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob delete %s: %w", key, err)
	}
	return nil
}

// Ping implements BlobStore by creating and removing a probe file.
func (l *LocalBlobStore) Ping(context.Context) error {
	f, err := os.CreateTemp(l.root, ".tmp-ping-*")
	if err != nil {
		return fmt.Errorf("blob store %s not writable: %w", l.root, err)
	}
	name := f.Name()
	_ = f.Close()
	return os.Remove(name)
}

// contextReader stops a copy when its context ends.
type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (c contextReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
