package session

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

const testBucket = "blobs"

// fakeS3 is an in-process S3 server (gofakes3, memory backend) that records the requests the
// real client sends it.
type fakeS3 struct {
	URL     string
	Backend *s3mem.Backend
	Client  *http.Client

	mu       sync.Mutex
	requests []*http.Request // clones, bodies not kept
}

func newFakeS3(t *testing.T) *fakeS3 {
	t.Helper()
	f := &fakeS3{Backend: s3mem.New()}
	if err := f.Backend.CreateBucket(testBucket); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	handler := gofakes3.New(f.Backend).Server()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.requests = append(f.requests, r.Clone(context.Background()))
		f.mu.Unlock()
		handler.ServeHTTP(w, r)
	}))
	transport := &http.Transport{}
	f.URL, f.Client = srv.URL, &http.Client{Transport: transport}
	t.Cleanup(func() {
		transport.CloseIdleConnections()
		srv.Close()
	})
	return f
}

func (f *fakeS3) config() S3BlobConfig {
	return S3BlobConfig{Endpoint: f.URL, Bucket: testBucket, AccessKey: "AKTEST", SecretKey: "secret", HTTPClient: f.Client}
}

func (f *fakeS3) store(t *testing.T, mutate func(*S3BlobConfig)) *S3BlobStore {
	t.Helper()
	cfg := f.config()
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := NewS3BlobStore(cfg)
	if err != nil {
		t.Fatalf("NewS3BlobStore: %v", err)
	}
	return s
}

func (f *fakeS3) lastRequest(t *testing.T, method string) *http.Request {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.requests) - 1; i >= 0; i-- {
		if f.requests[i].Method == method {
			return f.requests[i]
		}
	}
	t.Fatalf("no %s request reached the server", method)
	return nil
}

// blobStoreContract is the behaviour every BlobStore shares, run against the local folder and
// S3 so the two stay interchangeable. Each part uses its own keys, so store may be shared.
func blobStoreContract(t *testing.T, store BlobStore) {
	t.Helper()
	ctx := t.Context()
	put := func(t *testing.T, key, content string) {
		t.Helper()
		if err := store.Put(ctx, key, strings.NewReader(content), "audio/mpeg"); err != nil {
			t.Fatalf("Put(%q): %v", key, err)
		}
	}
	get := func(t *testing.T, key string) (string, error) {
		t.Helper()
		rc, err := store.Get(ctx, key)
		if err != nil {
			return "", err
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatalf("read %q: %v", key, err)
		}
		return string(b), nil
	}
	wantBlob := func(t *testing.T, key, want string) {
		t.Helper()
		got, err := get(t, key)
		if err != nil {
			t.Fatalf("Get(%q): %v", key, err)
		}
		if got != want {
			t.Fatalf("Get(%q) = %d bytes %.20q, want %d bytes %.20q", key, len(got), got, len(want), want)
		}
	}
	wantMissing := func(t *testing.T, key string) {
		t.Helper()
		if _, err := get(t, key); !errors.Is(err, ErrBlobNotFound) {
			t.Fatalf("Get(%q) error = %v, want ErrBlobNotFound", key, err)
		}
	}

	t.Run("round trip", func(t *testing.T) {
		tests := []struct{ key, content string }{
			{"rt/a.txt", "hello"},
			{"rt/tts/ab/cd.mp3", "\x00\xff binary \x00"},
			{"rt/dots..in.name", "dots"},
			{"rt/a/.hidden", "hidden"},
			{"rt/unicodé/ß.wav", "unicode"},
			{"rt/empty", ""},
			{"rt/big", strings.Repeat("0123456789abcdef", (s3SpoolMemory/16)+4096)}, // spills to disk on S3
		}
		for _, tt := range tests {
			t.Run(tt.key, func(t *testing.T) {
				put(t, tt.key, tt.content)
				wantBlob(t, tt.key, tt.content)
				if err := store.Delete(ctx, tt.key); err != nil {
					t.Fatalf("Delete: %v", err)
				}
				wantMissing(t, tt.key)
			})
		}
	})

	t.Run("missing", func(t *testing.T) {
		put(t, "miss/tts/ab.mp3", "audio")
		for _, key := range []string{"miss/none", "miss/tts/none.mp3", "miss/no/such/folder/x", "miss/tts", "miss"} {
			wantMissing(t, key)
			if err := store.Delete(ctx, key); err != nil {
				t.Errorf("Delete(%q) = %v, want nil for a key holding no blob", key, err)
			}
		}
		wantBlob(t, "miss/tts/ab.mp3", "audio") // deleting "folders" touched nothing
	})

	t.Run("overwrite", func(t *testing.T) {
		put(t, "ow/k", "old content, longer than the new one")
		put(t, "ow/k", "new")
		wantBlob(t, "ow/k", "new")
	})

	t.Run("delete twice", func(t *testing.T) {
		put(t, "del/k", "x")
		for i := range 2 {
			if err := store.Delete(ctx, "del/k"); err != nil {
				t.Fatalf("Delete #%d: %v", i+1, err)
			}
		}
		wantMissing(t, "del/k")
	})

	t.Run("failed put keeps previous", func(t *testing.T) {
		errBoom := errors.New("boom")
		put(t, "fail/k", "previous")
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		attempts := []struct {
			name    string
			ctx     context.Context
			r       io.Reader
			wantErr error
		}{
			{"reader fails midway", ctx, io.MultiReader(strings.NewReader("partial"), iotest.ErrReader(errBoom)), errBoom},
			{"context cancelled", cancelled, strings.NewReader("new"), context.Canceled},
		}
		for _, a := range attempts {
			t.Run(a.name, func(t *testing.T) {
				for _, key := range []string{"fail/k", "fail/fresh"} {
					if err := store.Put(a.ctx, key, a.r, ""); !errors.Is(err, a.wantErr) {
						t.Errorf("Put(%q) error = %v, want %v", key, err, a.wantErr)
					}
				}
				wantBlob(t, "fail/k", "previous")
				wantMissing(t, "fail/fresh")
			})
		}
	})

	t.Run("bad keys", func(t *testing.T) {
		for _, key := range []string{"../x", "a/../../x", "/abs", "a//b", "", ".", "a\\b", "a/./b", ".tmp-x", "..", "a/..", "./a", "a/", "a/.tmp-x"} {
			if err := store.Put(ctx, key, strings.NewReader("x"), ""); !errors.Is(err, ErrBadBlobKey) {
				t.Errorf("Put(%q) error = %v, want ErrBadBlobKey", key, err)
			}
			if _, err := get(t, key); !errors.Is(err, ErrBadBlobKey) {
				t.Errorf("Get(%q) error = %v, want ErrBadBlobKey", key, err)
			}
			if err := store.Delete(ctx, key); !errors.Is(err, ErrBadBlobKey) {
				t.Errorf("Delete(%q) error = %v, want ErrBadBlobKey", key, err)
			}
		}
	})

	t.Run("ping", func(t *testing.T) {
		if err := store.Ping(ctx); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
}

func TestBlobStoreContract(t *testing.T) {
	stores := map[string]func(t *testing.T) BlobStore{
		"local": func(t *testing.T) BlobStore {
			s, _ := newBlobStore(t)
			return s
		},
		"s3": func(t *testing.T) BlobStore { return newFakeS3(t).store(t, nil) },
		"s3 with prefix": func(t *testing.T) BlobStore {
			return newFakeS3(t).store(t, func(c *S3BlobConfig) { c.Prefix = "deploy/a/" })
		},
	}
	for name, newStore := range stores {
		t.Run(name, func(t *testing.T) {
			t.Setenv("TMPDIR", t.TempDir()) // the S3 store spools big uploads here
			blobStoreContract(t, newStore(t))
			if left, _ := os.ReadDir(os.TempDir()); len(left) != 0 {
				t.Errorf("temporary files left behind: %v", left)
			}
		})
	}
}

// The real client must send path-style, signed requests with the content type, under the
// prefix, and the object must land in the bucket under the prefixed key.
func TestS3BlobWireRequests(t *testing.T) {
	f := newFakeS3(t)
	s := f.store(t, func(c *S3BlobConfig) { c.Prefix = "dm" })
	if err := s.Put(t.Context(), "tts/ab.mp3", strings.NewReader("ID3 audio"), "audio/mpeg"); err != nil {
		t.Fatalf("Put: %v", err)
	}

	req := f.lastRequest(t, http.MethodPut)
	if req.URL.Path != "/blobs/dm/tts/ab.mp3" {
		t.Errorf("PUT path = %q, want /blobs/dm/tts/ab.mp3 (path-style, prefixed)", req.URL.Path)
	}
	if got := req.Header.Get("Content-Type"); got != "audio/mpeg" {
		t.Errorf("PUT Content-Type = %q, want audio/mpeg", got)
	}
	if got := req.Header.Get("Content-Length"); got != "9" {
		t.Errorf("PUT Content-Length = %q, want 9", got)
	}
	auth := req.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=AKTEST/") || !strings.Contains(auth, "/us-east-1/s3/aws4_request") {
		t.Errorf("Authorization = %q, want SigV4 with the access key and region us-east-1", auth)
	}

	obj, err := f.Backend.HeadObject(testBucket, "dm/tts/ab.mp3")
	if err != nil {
		t.Fatalf("object not stored under the prefixed key: %v", err)
	}
	if got := obj.Metadata["Content-Type"]; got != "audio/mpeg" {
		t.Errorf("stored Content-Type = %q, want audio/mpeg", got)
	}

	// An empty content type is stored as the generic binary type, not left out.
	if err := s.Put(t.Context(), "x.bin", strings.NewReader("x"), ""); err != nil {
		t.Fatal(err)
	}
	if got := f.lastRequest(t, http.MethodPut).Header.Get("Content-Type"); got != "application/octet-stream" {
		t.Errorf("PUT Content-Type for an empty type = %q, want application/octet-stream", got)
	}

	rc, err := s.Get(t.Context(), "tts/ab.mp3")
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if got := f.lastRequest(t, http.MethodGet).URL.Path; got != "/blobs/dm/tts/ab.mp3" {
		t.Errorf("GET path = %q", got)
	}
	if err := s.Delete(t.Context(), "tts/ab.mp3"); err != nil {
		t.Fatal(err)
	}
	if got := f.lastRequest(t, http.MethodDelete).URL.Path; got != "/blobs/dm/tts/ab.mp3" {
		t.Errorf("DELETE path = %q", got)
	}
	if _, err := f.Backend.HeadObject(testBucket, "dm/tts/ab.mp3"); err == nil {
		t.Error("object still in the bucket after Delete")
	}
}

func TestS3BlobPing(t *testing.T) {
	f := newFakeS3(t)
	tests := []struct {
		name    string
		bucket  string
		wantErr bool
	}{
		{"existing bucket", testBucket, false},
		{"missing bucket", "no-such-bucket", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := f.store(t, func(c *S3BlobConfig) { c.Bucket = tt.bucket })
			err := s.Ping(t.Context())
			if (err != nil) != tt.wantErr {
				t.Fatalf("Ping error = %v, want error: %v", err, tt.wantErr)
			}
			if tt.wantErr && !strings.Contains(err.Error(), tt.bucket) {
				t.Errorf("Ping error %q does not name the bucket", err)
			}
			if got := f.lastRequest(t, http.MethodHead).URL.Path; got != "/"+tt.bucket {
				t.Errorf("Ping sent HEAD %s, want HEAD /%s", got, tt.bucket)
			}
		})
	}
}

// A missing bucket is a configuration error, never "blob not found" (which the TTS cache
// would silently treat as a miss forever).
func TestS3BlobMissingBucketIsNotNotFound(t *testing.T) {
	s := newFakeS3(t).store(t, func(c *S3BlobConfig) { c.Bucket = "no-such-bucket" })
	_, err := s.Get(t.Context(), "k")
	if err == nil || errors.Is(err, ErrBlobNotFound) {
		t.Fatalf("Get from a missing bucket error = %v, want a real error", err)
	}
}

func TestNewS3BlobStoreConfig(t *testing.T) {
	valid := S3BlobConfig{Bucket: "b", AccessKey: "ak", SecretKey: "sk"}
	with := func(mut func(*S3BlobConfig)) S3BlobConfig {
		c := valid
		mut(&c)
		return c
	}
	yes, no := true, false
	tests := []struct {
		name      string
		cfg       S3BlobConfig
		wantErr   string
		region    string
		pathStyle bool
		endpoint  string
	}{
		{name: "aws defaults", cfg: valid, region: "us-east-1", pathStyle: false},
		{name: "aws region", cfg: with(func(c *S3BlobConfig) { c.Region = "eu-west-1" }), region: "eu-west-1"},
		{name: "r2", cfg: with(func(c *S3BlobConfig) { c.Endpoint = "https://acc123.r2.cloudflarestorage.com" }),
			region: "auto", pathStyle: true, endpoint: "https://acc123.r2.cloudflarestorage.com"},
		{name: "minio", cfg: with(func(c *S3BlobConfig) { c.Endpoint = "http://minio:9000" }),
			region: "us-east-1", pathStyle: true, endpoint: "http://minio:9000"},
		{name: "custom endpoint, virtual-hosted", cfg: with(func(c *S3BlobConfig) { c.Endpoint = "https://s3.example.com"; c.PathStyle = &no }),
			region: "us-east-1", pathStyle: false, endpoint: "https://s3.example.com"},
		{name: "aws, path-style", cfg: with(func(c *S3BlobConfig) { c.PathStyle = &yes }), region: "us-east-1", pathStyle: true},
		{name: "no bucket", cfg: with(func(c *S3BlobConfig) { c.Bucket = "" }), wantErr: "bucket"},
		{name: "no access key", cfg: with(func(c *S3BlobConfig) { c.AccessKey = "" }), wantErr: "access key"},
		{name: "no secret key", cfg: with(func(c *S3BlobConfig) { c.SecretKey = "" }), wantErr: "secret key"},
		{name: "endpoint without scheme", cfg: with(func(c *S3BlobConfig) { c.Endpoint = "minio:9000" }), wantErr: "endpoint"},
		{name: "endpoint ftp", cfg: with(func(c *S3BlobConfig) { c.Endpoint = "ftp://x" }), wantErr: "endpoint"},
		{name: "bad prefix", cfg: with(func(c *S3BlobConfig) { c.Prefix = "../up" }), wantErr: "prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewS3BlobStore(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			o := s.client.Options()
			if o.Region != tt.region {
				t.Errorf("region = %q, want %q", o.Region, tt.region)
			}
			if o.UsePathStyle != tt.pathStyle {
				t.Errorf("path style = %v, want %v", o.UsePathStyle, tt.pathStyle)
			}
			var endpoint string
			if o.BaseEndpoint != nil {
				endpoint = *o.BaseEndpoint
			}
			if endpoint != tt.endpoint {
				t.Errorf("endpoint = %q, want %q", endpoint, tt.endpoint)
			}
		})
	}
}

// Uploads past the in-memory spool go through a temporary file that is removed afterwards.
func TestS3BlobSpoolsLargeUploadsToDisk(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	f := newFakeS3(t)
	s := f.store(t, nil)
	content := bytes.Repeat([]byte("x"), s3SpoolMemory+1)
	seen := &sizeWatcher{dir: tmp, r: bytes.NewReader(content)}
	if err := s.Put(t.Context(), "big", seen, ""); err != nil {
		t.Fatal(err)
	}
	if !seen.sawFile {
		t.Error("no spool file was created while reading an upload larger than the memory spool")
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("spool files left behind: %v", left)
	}
	obj, err := f.Backend.HeadObject(testBucket, "big")
	if err != nil || obj.Size != int64(len(content)) {
		t.Fatalf("stored object = %+v, %v; want %d bytes", obj, err, len(content))
	}
}

// sizeWatcher notes whether a spool file exists in dir when its reader is exhausted.
type sizeWatcher struct {
	dir     string
	r       io.Reader
	sawFile bool
}

func (w *sizeWatcher) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if err == io.EOF {
		matches, _ := filepath.Glob(filepath.Join(w.dir, "dartmouth-s3-put-*"))
		w.sawFile = len(matches) > 0
	}
	return n, err
}
