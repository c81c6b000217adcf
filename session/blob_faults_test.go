package session

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// smallDiskSize is the capacity of the filesystem the disk-full tests fill.
const smallDiskSize = 256 << 10

// newSmallDiskStore returns a LocalBlobStore on a filesystem of smallDiskSize bytes: a tmpfs
// mounted for the test (root can mount one), or, where mounting is not permitted, the
// store's write seam enforcing the same capacity over the files under root. Either way a
// write that does not fit fails with ENOSPC.
func newSmallDiskStore(t *testing.T) (store *LocalBlobStore, root string) {
	t.Helper()
	dir := t.TempDir()
	err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, fmt.Sprintf("size=%d", smallDiskSize))
	switch {
	case err == nil:
		// Registered after TempDir's own cleanup, so it runs first: the folder is unmounted
		// before it is removed.
		t.Cleanup(func() {
			if err := syscall.Unmount(dir, 0); err != nil {
				t.Errorf("unmount %s: %v", dir, err)
			}
		})
	case errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES):
		t.Logf("cannot mount a tmpfs (%v): the disk is full through the write seam", err)
	default:
		t.Fatalf("mount a tmpfs on %s: %v", dir, err)
	}
	root = filepath.Join(dir, "blobs")
	store, err = NewLocalBlobStore(root)
	if err != nil {
		t.Fatalf("NewLocalBlobStore: %v", err)
	}
	// Only the fallback uses the seam: on the tmpfs the ENOSPC must come from the kernel.
	if !isMountPoint(t, dir) {
		store.wrapWrite = (&quotaDisk{root: root, capacity: smallDiskSize}).wrap
	}
	return store, root
}

// isMountPoint reports whether dir is the root of its own filesystem.
func isMountPoint(t *testing.T, dir string) bool {
	t.Helper()
	var self, parent syscall.Stat_t
	if err := syscall.Stat(dir, &self); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(filepath.Dir(dir), &parent); err != nil {
		t.Fatal(err)
	}
	return self.Dev != parent.Dev
}

// quotaDisk stands in for a small filesystem: writes fail with ENOSPC, as the kernel's do,
// once the files under root hold capacity bytes.
type quotaDisk struct {
	root     string
	capacity int64
}

func (d *quotaDisk) wrap(f *os.File) io.Writer { return quotaWriter{d: d, f: f} }

type quotaWriter struct {
	d *quotaDisk
	f *os.File
}

func (w quotaWriter) Write(p []byte) (int, error) {
	var used int64
	_ = filepath.WalkDir(w.d.root, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			if fi, err := e.Info(); err == nil {
				used += fi.Size()
			}
		}
		return nil
	})
	free := max(w.d.capacity-used, 0)
	if int64(len(p)) <= free {
		return w.f.Write(p)
	}
	n, err := w.f.Write(p[:free])
	if err == nil {
		err = &fs.PathError{Op: "write", Path: w.f.Name(), Err: syscall.ENOSPC}
	}
	return n, err
}

// blobContent is n bytes that differ from any other tag's, so a blob cut short or mixed with
// another cannot pass for the right one.
func blobContent(tag string, n int) []byte {
	return bytes.Repeat([]byte(tag+"|"), n/(len(tag)+1)+1)[:n]
}

// wantBlobContent checks the blob under key is exactly want, reporting sizes and digests
// rather than the bytes.
func wantBlobContent(t *testing.T, b BlobStore, key string, want []byte) {
	t.Helper()
	rc, err := b.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %d bytes (sha256 %x), want %d bytes (sha256 %x)", key, len(got), sha256.Sum256(got), len(want), sha256.Sum256(want))
	}
}

// A full disk fails the Put that does not fit with an error that names the key and wraps
// ENOSPC; it leaves nothing under a new key, the previous version of an overwritten one, and
// no temporary files; once space is freed, the same Put works.
func TestLocalBlobDiskFull(t *testing.T) {
	b, root := newSmallDiskStore(t)
	ctx := t.Context()
	put := func(key string, content []byte) error {
		return b.Put(ctx, key, bytes.NewReader(content), "application/octet-stream")
	}

	keep, victim := blobContent("keep", 96<<10), blobContent("victim v1", 64<<10)
	for key, content := range map[string][]byte{"keep/a": keep, "victim": victim} {
		if err := put(key, content); err != nil {
			t.Fatalf("Put(%q) on a disk with room: %v", key, err)
		}
	}
	// 160 KiB of 256 used: neither of these fits.
	big, victim2 := blobContent("big", 128<<10), blobContent("victim v2", 112<<10)
	for _, a := range []struct {
		key     string
		content []byte
	}{{"archive/2023/11/big", big}, {"victim", victim2}} {
		err := put(a.key, a.content)
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("Put(%q) on a full disk error = %v, want ENOSPC", a.key, err)
		}
		if !strings.Contains(err.Error(), "blob put "+a.key) {
			t.Errorf("Put(%q) error %q does not say which operation and key failed", a.key, err)
		}
		assertNoTempFiles(t, root)
	}
	assertNoBlob(t, b, "archive/2023/11/big")
	wantBlobContent(t, b, "victim", victim)
	wantBlobContent(t, b, "keep/a", keep)

	// Space comes back: the same Puts succeed and read back whole.
	if err := b.Delete(ctx, "keep/a"); err != nil {
		t.Fatal(err)
	}
	if err := put("archive/2023/11/big", big); err != nil {
		t.Fatalf("Put after space was freed: %v", err)
	}
	wantBlobContent(t, b, "archive/2023/11/big", big)
	if err := b.Delete(ctx, "archive/2023/11/big"); err != nil {
		t.Fatal(err)
	}
	if err := put("victim", victim2); err != nil {
		t.Fatalf("overwrite after space was freed: %v", err)
	}
	wantBlobContent(t, b, "victim", victim2)
	if got := filesUnder(t, root); !slices.Equal(got, []string{"victim"}) {
		t.Fatalf("files on the disk = %v, want [victim]", got)
	}
}

// The disk filling up while a Put streams (other writers took the space) fails that Put the
// same way: the half-written object never becomes visible.
func TestLocalBlobDiskFillsDuringPut(t *testing.T) {
	b, root := newSmallDiskStore(t)
	ctx := t.Context()
	first := blobContent("first half", 100<<10)
	// Halfway through the stream, another blob takes most of what is left.
	r := io.MultiReader(bytes.NewReader(first), readerFunc(func() error {
		return b.Put(ctx, "other", bytes.NewReader(blobContent("other", 120<<10)), "")
	}), bytes.NewReader(blobContent("second half", 100<<10)))
	err := b.Put(ctx, "streamed", r, "")
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Put error = %v, want ENOSPC", err)
	}
	assertNoBlob(t, b, "streamed")
	assertNoTempFiles(t, root)
	wantBlobContent(t, b, "other", blobContent("other", 120<<10))
}

// readerFunc runs fn once when first read, then reads as exhausted; fn's error is the read's.
type readerFunc func() error

func (f readerFunc) Read([]byte) (int, error) {
	if err := f(); err != nil {
		return 0, err
	}
	return 0, io.EOF
}
