package jobs

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dartmouth-gw/dartmouth/session"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// smallDiskSize is the capacity of the filesystem the disk-full test fills.
const smallDiskSize = 256 << 10

// smallDiskBlobs returns a local blob store on a filesystem of smallDiskSize bytes: a tmpfs
// mounted for the test (root can mount one), or, where mounting is not permitted, a wrapper
// that refuses, with the kernel's ENOSPC, a Put that would take the files under root past
// that size.
func smallDiskBlobs(t *testing.T) (blobs session.BlobStore, root string) {
	t.Helper()
	dir := t.TempDir()
	err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, fmt.Sprintf("size=%d", smallDiskSize))
	mounted := err == nil
	switch {
	case mounted:
		// Registered after TempDir's cleanup, so it runs first.
		t.Cleanup(func() {
			if err := syscall.Unmount(dir, 0); err != nil {
				t.Errorf("unmount %s: %v", dir, err)
			}
		})
	case errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES):
		t.Logf("cannot mount a tmpfs (%v): the disk is full through a quota wrapper", err)
	default:
		t.Fatalf("mount a tmpfs on %s: %v", dir, err)
	}
	root = filepath.Join(dir, "blobs")
	local, err := session.NewLocalBlobStore(root)
	if err != nil {
		t.Fatal(err)
	}
	if mounted {
		return local, root
	}
	return quotaBlobs{BlobStore: local, root: root}, root
}

// quotaBlobs stands in for a small disk where none can be mounted.
type quotaBlobs struct {
	session.BlobStore
	root string
}

func (q quotaBlobs) Put(ctx context.Context, key string, r io.Reader, contentType string) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	var used int64
	_ = filepath.WalkDir(q.root, func(_ string, e fs.DirEntry, err error) error {
		if fi, ierr := e.Info(); err == nil && ierr == nil && e.Type().IsRegular() {
			used += fi.Size()
		}
		return nil
	})
	if used+int64(len(data)) > smallDiskSize {
		return fmt.Errorf("blob put %s: %w", key, &fs.PathError{Op: "write", Path: filepath.Join(q.root, key), Err: syscall.ENOSPC})
	}
	return q.BlobStore.Put(ctx, key, bytes.NewReader(data), contentType)
}

// seedConversation writes a conversation of two messages, the user's of size bytes that do
// not compress (so its archive is about as big), and returns its id and messages' content.
func seedConversation(t *testing.T, store *session.SQLStore, size int) (string, []string) {
	t.Helper()
	ctx := t.Context()
	if _, err := store.EnsureUser(ctx, "alice", "paid"); err != nil {
		t.Fatal(err)
	}
	id := session.NewID("ses")
	if err := store.CreateSession(ctx, session.Session{ID: id, UserID: "alice", AgentID: "fam"}); err != nil {
		t.Fatal(err)
	}
	noise := make([]byte, size*3/4)
	_, _ = rand.Read(noise)
	contents := []string{base64.StdEncoding.EncodeToString(noise), "noted"}
	for i, role := range []string{session.RoleUser, session.RoleAssistant} {
		if err := store.AppendMessage(ctx, session.Message{ID: session.NewID("msg"), SessionID: id, Role: role, Content: contents[i]}); err != nil {
			t.Fatal(err)
		}
	}
	return id, contents
}

// wantHot checks a conversation is still in hot storage, whole and not marked archived.
func wantHot(t *testing.T, store *session.SQLStore, id string, contents []string) {
	t.Helper()
	if key, err := store.SessionArchiveKey(t.Context(), id); err != nil || key != "" {
		t.Fatalf("%s archive key = %q, %v; want it in hot storage", id, key, err)
	}
	msgs, err := store.ListMessages(t.Context(), "alice", id, 0)
	if err != nil || len(msgs) != len(contents) {
		t.Fatalf("%s: %d messages, %v; want %d", id, len(msgs), err, len(contents))
	}
	for i, m := range msgs {
		if m.Content != contents[i] {
			t.Fatalf("%s message %d changed: %d bytes, want %d", id, i, len(m.Content), len(contents[i]))
		}
	}
}

// wantArchived checks a conversation left hot storage for its archive, which holds it whole.
func wantArchived(t *testing.T, store *session.SQLStore, blobs session.BlobStore, id string, contents []string) {
	t.Helper()
	key, err := store.SessionArchiveKey(t.Context(), id)
	if err != nil || key != ArchiveKey(id, epoch) {
		t.Fatalf("%s archive key = %q, %v", id, key, err)
	}
	if msgs, _ := store.ListMessages(t.Context(), "alice", id, 0); len(msgs) != 0 {
		t.Fatalf("%s kept %d messages in hot storage", id, len(msgs))
	}
	arc, err := ReadArchive(t.Context(), blobs, key)
	if err != nil {
		t.Fatalf("archive of %s: %v", id, err)
	}
	if arc.Session.ID != id || len(arc.Messages) != len(contents) {
		t.Fatalf("archive of %s: session %q, %d messages", id, arc.Session.ID, len(arc.Messages))
	}
	for i, m := range arc.Messages {
		if m.Content != contents[i] {
			t.Fatalf("archive of %s: message %d differs", id, i)
		}
	}
}

// A full disk fails the archive of the conversation that does not fit: it stays in hot
// storage whole, the run reports ENOSPC, nothing half-written is left on the disk, and the
// other conversations are archived. Once space returns, the next run archives it, once.
func TestArchivalDiskFull(t *testing.T) {
	clock := newFakeClock()
	store := openSQLite(t, clock)
	disk, root := smallDiskBlobs(t)
	blobs := &countingBlobs{BlobStore: disk, puts: map[string]int{}}
	ctx := t.Context()

	big, bigContents := seedConversation(t, store, 96<<10)
	small, smallContents := seedConversation(t, store, 1<<10)
	clock.Advance(31 * 24 * time.Hour)
	// Something else took most of the disk: 200 KiB of 256.
	if err := disk.Put(ctx, "tts/filler.mp3", bytes.NewReader(make([]byte, 200<<10)), ""); err != nil {
		t.Fatal(err)
	}

	archiver, err := NewArchiver(ArchiveConfig{Store: store, Blobs: blobs, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	err = archiver.Run(ctx)
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), big) {
		t.Fatalf("run on a full disk: %v; want an error naming %s and wrapping ENOSPC", err, big)
	}
	wantHot(t, store, big, bigContents)
	if _, err := disk.Get(ctx, ArchiveKey(big, epoch)); !errors.Is(err, session.ErrBlobNotFound) {
		t.Fatalf("archive of the conversation that did not fit: %v, want none", err)
	}
	wantArchived(t, store, disk, small, smallContents)
	wantNoTempFiles(t, root)

	// The next run, still full, fails the same way and loses nothing.
	if err := archiver.Run(ctx); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("second run on a full disk: %v", err)
	}
	wantHot(t, store, big, bigContents)

	if err := disk.Delete(ctx, "tts/filler.mp3"); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := archiver.Run(ctx); err != nil {
			t.Fatalf("run %d after space returned: %v", i+1, err)
		}
	}
	wantArchived(t, store, disk, big, bigContents)
	if n := blobs.counts()[ArchiveKey(big, epoch)]; n != 3 {
		t.Fatalf("%d writes of the archive, want 3: two refused, one stored, none after", n)
	}
	wantNoTempFiles(t, root)
}

func wantNoTempFiles(t *testing.T, root string) {
	t.Helper()
	_ = filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(path.Base(filepath.ToSlash(p)), ".tmp-") {
			t.Errorf("temporary file left on the disk: %s", p)
		}
		return nil
	})
}

// failingS3 is a fake S3 server (gofakes3) whose uploads fail with 500 InternalError while
// failing is set, and an S3BlobStore on it that tries twice.
type failingS3 struct {
	failing atomic.Bool
	backend *s3mem.Backend
	store   *session.S3BlobStore

	mu   sync.Mutex
	puts map[string]int // uploads that reached the server, by path
}

func newFailingS3(t *testing.T) *failingS3 {
	t.Helper()
	f := &failingS3{backend: s3mem.New(), puts: map[string]int{}}
	if err := f.backend.CreateBucket("blobs"); err != nil {
		t.Fatal(err)
	}
	next := gofakes3.New(f.backend).Server()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			f.mu.Lock()
			f.puts[r.URL.Path]++
			f.mu.Unlock()
			if f.failing.Load() {
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>`)
				return
			}
		}
		next.ServeHTTP(w, r)
	}))
	transport := &http.Transport{}
	t.Cleanup(func() {
		transport.CloseIdleConnections()
		srv.Close()
	})
	var err error
	f.store, err = session.NewS3BlobStore(session.S3BlobConfig{Endpoint: srv.URL, Bucket: "blobs", AccessKey: "AK", SecretKey: "SK",
		HTTPClient: &http.Client{Transport: transport}, MaxAttempts: 2, MaxBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *failingS3) putsOf(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.puts["/blobs/"+key]
}

// S3 failing every upload: the run reports the S3 error for each conversation, all stay in
// hot storage and nothing reaches the bucket; once S3 is back, one run archives each once.
func TestArchivalS3Failing(t *testing.T) {
	clock := newFakeClock()
	store := openSQLite(t, clock)
	s3 := newFailingS3(t)
	ctx := t.Context()
	a, aContents := seedConversation(t, store, 4<<10)
	b, bContents := seedConversation(t, store, 4<<10)
	clock.Advance(31 * 24 * time.Hour)

	archiver, err := NewArchiver(ArchiveConfig{Store: store, Blobs: s3.store, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	s3.failing.Store(true)
	err = archiver.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "2 sessions failed") || !strings.Contains(err.Error(), "InternalError") {
		t.Fatalf("run while S3 fails: %v; want both sessions failed with the S3 error", err)
	}
	for id, contents := range map[string][]string{a: aContents, b: bContents} {
		wantHot(t, store, id, contents)
		if _, err := s3.backend.HeadObject("blobs", ArchiveKey(id, epoch)); err == nil {
			t.Fatalf("an archive of %s reached the bucket", id)
		}
		if n := s3.putsOf(ArchiveKey(id, epoch)); n != 2 {
			t.Fatalf("%d uploads of %s's archive, want 2 (the client's retry)", n, id)
		}
	}

	s3.failing.Store(false)
	for i := range 2 {
		if err := archiver.Run(ctx); err != nil {
			t.Fatalf("run %d with S3 back: %v", i+1, err)
		}
	}
	for id, contents := range map[string][]string{a: aContents, b: bContents} {
		wantArchived(t, store, s3.store, id, contents)
		if n := s3.putsOf(ArchiveKey(id, epoch)); n != 3 {
			t.Fatalf("%d uploads of %s's archive, want 3: two failed, one stored, none after", n, id)
		}
	}
}

// Through the queue, an archive job that fails on S3 is retried, not lost: the retry after
// S3 is back archives the conversation, and nothing lands in the dead letters.
func TestArchivalJobRetriedAfterS3Failure(t *testing.T) {
	clock := newFakeClock()
	store := openSQLite(t, clock)
	s3 := newFailingS3(t)
	ctx := t.Context()
	id, contents := seedConversation(t, store, 4<<10)
	clock.Advance(31 * 24 * time.Hour)

	q := NewMemoryQueue(MemoryQueueConfig{MaxAttempts: 3, Backoff: func(int) time.Duration { return time.Millisecond }})
	archiver, err := NewArchiver(ArchiveConfig{Store: store, Blobs: s3.store, Clock: clock, Queue: q})
	if err != nil {
		t.Fatal(err)
	}
	s3.failing.Store(true)
	if err := archiver.Run(ctx); err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	results := make(chan error, 3)
	background(t, func(ctx context.Context) {
		_ = q.Work(ctx, map[string]Handler{ArchiveJobType: func(ctx context.Context, j Job) error {
			err := archiver.Handle(ctx, j)
			if err != nil {
				// The attempt failed with the conversation still hot: S3 comes back for the retry.
				if key, _ := store.SessionArchiveKey(ctx, id); key != "" {
					err = errors.Join(err, errors.New("marked archived after a failed upload"))
				}
				s3.failing.Store(false)
			}
			results <- err
			return err
		}})
	})
	if err := receive(t, results, "the first attempt"); err == nil || !strings.Contains(err.Error(), "InternalError") || strings.Contains(err.Error(), "marked archived") {
		t.Fatalf("first attempt while S3 fails: %v", err)
	}
	if err := receive(t, results, "the retry"); err != nil {
		t.Fatalf("retry with S3 back: %v", err)
	}
	wantArchived(t, store, s3.store, id, contents)
	if d := q.DeadLetters(); len(d) != 0 {
		t.Fatalf("dead letters: %+v", d)
	}
}
