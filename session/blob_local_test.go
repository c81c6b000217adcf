package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
)

// newBlobStore returns a store rooted in a folder that does not exist yet, inside a temporary
// parent folder that holds nothing else.
func newBlobStore(t *testing.T) (store *LocalBlobStore, root string) {
	t.Helper()
	root = filepath.Join(t.TempDir(), "blobs")
	store, err := NewLocalBlobStore(root)
	if err != nil {
		t.Fatalf("NewLocalBlobStore: %v", err)
	}
	return store, root
}

func mustPut(t *testing.T, b *LocalBlobStore, key, content string) {
	t.Helper()
	if err := b.Put(t.Context(), key, strings.NewReader(content), "application/octet-stream"); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func readAllClose(t *testing.T, rc io.ReadCloser) string {
	t.Helper()
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read blob: %v", err)
	}
	return string(data)
}

func assertBlob(t *testing.T, b *LocalBlobStore, key, want string) {
	t.Helper()
	rc, err := b.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if got := readAllClose(t, rc); got != want {
		t.Fatalf("Get(%q) = %q, want %q", key, got, want)
	}
}

func assertNoBlob(t *testing.T, b *LocalBlobStore, key string) {
	t.Helper()
	rc, err := b.Get(t.Context(), key)
	if err == nil {
		rc.Close()
	}
	if !errors.Is(err, ErrBlobNotFound) {
		t.Fatalf("Get(%q) error = %v, want ErrBlobNotFound", key, err)
	}
}

// filesUnder lists the regular files below dir, slash-separated and relative to it.
func filesUnder(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return out
}

func assertNoTempFiles(t *testing.T, root string) {
	t.Helper()
	for _, f := range filesUnder(t, root) {
		if strings.HasPrefix(path.Base(f), ".tmp-") {
			t.Errorf("temporary file left behind: %s", f)
		}
	}
}

func TestNewLocalBlobStoreFailsOnAFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewLocalBlobStore(file); err == nil {
		t.Fatal("NewLocalBlobStore on a regular file succeeded")
	}
}

func TestLocalBlobRoundTrip(t *testing.T) {
	for _, key := range []string{"a.txt", "tts/ab/cd.mp3", "x/y/z/w.bin", "dots..in.name", "a/.hidden"} {
		t.Run(key, func(t *testing.T) {
			b, root := newBlobStore(t)
			content := "content of " + key
			mustPut(t, b, key, content)
			assertBlob(t, b, key, content)
			if got := filesUnder(t, root); !slices.Equal(got, []string{key}) {
				t.Errorf("files under root = %v, want just %s", got, key)
			}

			if err := b.Delete(t.Context(), key); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			assertNoBlob(t, b, key)
		})
	}
}

func TestLocalBlobMissing(t *testing.T) {
	b, _ := newBlobStore(t)
	mustPut(t, b, "tts/ab/cd.mp3", "audio")
	for _, key := range []string{"missing", "tts/ab/missing.mp3", "no/such/folder/x"} {
		t.Run(key, func(t *testing.T) {
			assertNoBlob(t, b, key)
			if err := b.Delete(t.Context(), key); err != nil {
				t.Errorf("Delete(%q) = %v, want nil for a missing key", key, err)
			}
		})
	}
}

// A folder made by nested keys holds no blob: it reads as missing and deleting it is a no-op.
func TestLocalBlobFolderKeyIsNotABlob(t *testing.T) {
	b, _ := newBlobStore(t)
	mustPut(t, b, "tts/ab/cd.mp3", "audio")
	for _, key := range []string{"tts", "tts/ab"} {
		t.Run(key, func(t *testing.T) {
			assertNoBlob(t, b, key)
			if err := b.Delete(t.Context(), key); err != nil {
				t.Errorf("Delete(%q) = %v, want nil for a key holding no blob", key, err)
			}
			assertBlob(t, b, "tts/ab/cd.mp3", "audio")
		})
	}
}

func TestLocalBlobPutReplaces(t *testing.T) {
	b, root := newBlobStore(t)
	mustPut(t, b, "k", "old content")
	before, err := b.Get(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, b, "k", "new")
	// The replacement is a rename, so a reader that opened the old blob still reads all of it.
	if got := readAllClose(t, before); got != "old content" {
		t.Errorf("reader opened before the replace read %q, want the whole old blob", got)
	}
	assertBlob(t, b, "k", "new")
	assertNoTempFiles(t, root)
}

func TestLocalBlobConcurrentPutsNeverInterleave(t *testing.T) {
	const writers = 8
	b, root := newBlobStore(t)
	contents := make([]string, writers)
	for i := range contents {
		contents[i] = strings.Repeat(fmt.Sprint(i), 256<<10) // bigger than one copy buffer
	}
	var wg sync.WaitGroup
	for _, c := range contents {
		wg.Go(func() {
			if err := b.Put(t.Context(), "k", strings.NewReader(c), ""); err != nil {
				t.Errorf("Put: %v", err)
			}
		})
	}
	wg.Wait()
	rc, err := b.Get(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	if got := readAllClose(t, rc); !slices.Contains(contents, got) {
		t.Errorf("final blob (%d bytes) is not one writer's whole content", len(got))
	}
	assertNoTempFiles(t, root)
}

func TestLocalBlobFailedPutKeepsPrevious(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name    string
		reader  func(cancel context.CancelFunc) io.Reader
		precede bool // cancel the context before Put
		wantErr error
	}{
		{
			name: "reader fails midway",
			reader: func(context.CancelFunc) io.Reader {
				return io.MultiReader(strings.NewReader("partial new content"), iotest.ErrReader(errBoom))
			},
			wantErr: errBoom,
		},
		{
			name:    "context cancelled before",
			reader:  func(context.CancelFunc) io.Reader { return strings.NewReader("new content") },
			precede: true,
			wantErr: context.Canceled,
		},
		{
			name: "context cancelled midway",
			reader: func(cancel context.CancelFunc) io.Reader {
				return io.MultiReader(strings.NewReader("partial new content"), cancellingReader{cancel}, strings.NewReader("rest"))
			},
			wantErr: context.Canceled,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, root := newBlobStore(t)
			mustPut(t, b, "dir/k", "previous")
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tt.precede {
				cancel()
			}
			for _, key := range []string{"dir/k", "dir/fresh"} {
				err := b.Put(ctx, key, tt.reader(cancel), "")
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("Put(%q) error = %v, want %v", key, err, tt.wantErr)
				}
			}
			assertBlob(t, b, "dir/k", "previous")
			assertNoBlob(t, b, "dir/fresh")
			assertNoTempFiles(t, root)
		})
	}
}

// cancellingReader cancels a context when read, and is then exhausted.
type cancellingReader struct{ cancel context.CancelFunc }

func (r cancellingReader) Read([]byte) (int, error) {
	r.cancel()
	return 0, io.EOF
}

func TestLocalBlobRejectsBadKeys(t *testing.T) {
	keys := []string{
		"../x", "a/../../x", "/abs", "a//b", "", ".", "a\\b", "a/./b", ".tmp-x",
		"..", "a/..", "./a", "a/", "a/.tmp-x", "..\\x",
	}
	for _, key := range keys {
		t.Run(fmt.Sprintf("%q", key), func(t *testing.T) {
			b, root := newBlobStore(t)
			ops := map[string]func() error{
				"Put": func() error { return b.Put(t.Context(), key, bytes.NewReader([]byte("x")), "") },
				"Get": func() error {
					rc, err := b.Get(t.Context(), key)
					if err == nil {
						rc.Close()
					}
					return err
				},
				"Delete": func() error { return b.Delete(t.Context(), key) },
			}
			for name, op := range ops {
				if err := op(); !errors.Is(err, ErrBadBlobKey) {
					t.Errorf("%s(%q) error = %v, want ErrBadBlobKey", name, key, err)
				}
			}
			parent := filepath.Dir(root)
			if got := filesUnder(t, parent); len(got) != 0 {
				t.Errorf("files written: %v", got)
			}
		})
	}
}

func TestLocalBlobPing(t *testing.T) {
	tests := []struct {
		name    string
		breakIt func(t *testing.T, root string)
		wantErr bool
	}{
		{"writable", func(*testing.T, string) {}, false},
		{"read-only root", makeReadOnly, true},
		{"root removed", func(t *testing.T, root string) { mustRemoveAll(t, root) }, true},
		{"root replaced by a file", replaceWithFile, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, root := newBlobStore(t)
			tt.breakIt(t, root)
			err := b.Ping(t.Context())
			if (err != nil) != tt.wantErr {
				t.Fatalf("Ping error = %v, want error: %v", err, tt.wantErr)
			}
			if !tt.wantErr {
				if got := filesUnder(t, root); len(got) != 0 {
					t.Errorf("Ping left files behind: %v", got)
				}
			}
		})
	}
}

// makeReadOnly takes write permission away from root. Permission bits do not bind root (the
// user), so when the tests run as root the folder is replaced by a file instead, which no
// user can create files in.
func makeReadOnly(t *testing.T, root string) {
	t.Helper()
	if os.Geteuid() == 0 {
		replaceWithFile(t, root)
		return
	}
	if err := os.Chmod(root, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(root, 0o700) }) // so TempDir can be removed
}

func replaceWithFile(t *testing.T, root string) {
	t.Helper()
	mustRemoveAll(t, root)
	if err := os.WriteFile(root, []byte("not a folder"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustRemoveAll(t *testing.T, p string) {
	t.Helper()
	if err := os.RemoveAll(p); err != nil {
		t.Fatal(err)
	}
}
