package session

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// s3Fault answers one request in place of the fake S3 server, or around it (next).
type s3Fault struct {
	name string
	code string // the S3 error code the client sees; "" for a broken connection
	http func(w http.ResponseWriter, r *http.Request, next http.Handler)
}

// s3ErrorReply answers with an S3 error document, as the service does.
func s3ErrorReply(status int, code, message string) s3Fault {
	return s3Fault{name: fmt.Sprintf("%d %s", status, code), code: code, http: func(w http.ResponseWriter, r *http.Request, _ http.Handler) {
		_, _ = io.Copy(io.Discard, r.Body) // keep the connection reusable, as S3 does
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("x-amz-request-id", "FAULT0001")
		w.WriteHeader(status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>%s</Code><Message>%s</Message><Resource>%s</Resource><RequestId>FAULT0001</RequestId></Error>`, code, message, r.URL.Path)
	}}
}

var (
	s3InternalError = s3ErrorReply(http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
	s3SlowDown      = s3ErrorReply(http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate.")
	s3TooMany       = s3ErrorReply(http.StatusTooManyRequests, "TooManyRequests", "Reduce your concurrent request rate for the same object.")
	s3AccessDenied  = s3ErrorReply(http.StatusForbidden, "AccessDenied", "Access Denied")

	// s3ConnDropped closes the connection without a reply, as a crashed or restarted
	// server or a load balancer timing out does.
	s3ConnDropped = s3Fault{name: "connection dropped", http: func(w http.ResponseWriter, _ *http.Request, _ http.Handler) {
		hijackClose(w, nil)
	}}

	// s3UploadCut reads half of the request body, then closes the connection.
	s3UploadCut = s3Fault{name: "upload cut midway", http: func(w http.ResponseWriter, r *http.Request, _ http.Handler) {
		_, _ = io.CopyN(io.Discard, r.Body, r.ContentLength/2)
		hijackClose(w, nil)
	}}

	// s3DownloadCut lets the server answer, then sends the status, the headers (with the
	// full Content-Length) and half of the body, and closes the connection.
	s3DownloadCut = s3Fault{name: "download cut midway", http: func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		var head bytes.Buffer
		fmt.Fprintf(&head, "HTTP/1.1 %d %s\r\n", rec.Code, http.StatusText(rec.Code))
		rec.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_ = rec.Header().Write(&head)
		head.WriteString("\r\n")
		head.Write(body[:len(body)/2])
		hijackClose(w, head.Bytes())
	}}
)

// hijackClose takes the connection from the server, writes raw to it and closes it.
func hijackClose(w http.ResponseWriter, raw []byte) {
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(fmt.Sprintf("hijack: %v", err)) // the test server is HTTP/1.1: cannot happen
	}
	if len(raw) > 0 {
		_, _ = buf.Write(raw)
		_ = buf.Flush()
	}
	_ = conn.Close()
}

// faultyS3 is the fake S3 server (gofakes3, memory backend) behind a handler that answers
// chosen requests with faults, counting the requests of each method that reach it.
type faultyS3 struct {
	URL     string
	Backend *s3mem.Backend
	client  *http.Client

	mu       sync.Mutex
	faults   []pendingFault
	requests map[string]int
}

type pendingFault struct {
	method string
	left   int // requests still to fault; negative: all of them until heal
	fault  s3Fault
}

func newFaultyS3(t *testing.T) *faultyS3 {
	t.Helper()
	f := &faultyS3{Backend: s3mem.New(), requests: map[string]int{}}
	if err := f.Backend.CreateBucket(testBucket); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	next := gofakes3.New(f.Backend).Server()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fault, ok := f.take(r.Method); ok {
			fault.http(w, r, next)
			return
		}
		next.ServeHTTP(w, r)
	}))
	transport := &http.Transport{}
	f.URL, f.client = srv.URL, &http.Client{Transport: transport}
	t.Cleanup(func() {
		transport.CloseIdleConnections()
		srv.Close()
	})
	return f
}

// store is an S3BlobStore on the server that tries each operation 3 times, 1ms apart.
func (f *faultyS3) store(t *testing.T) *S3BlobStore {
	t.Helper()
	s, err := NewS3BlobStore(S3BlobConfig{Endpoint: f.URL, Bucket: testBucket, AccessKey: "AKTEST", SecretKey: "secret",
		HTTPClient: f.client, MaxAttempts: 3, MaxBackoff: time.Millisecond})
	if err != nil {
		t.Fatalf("NewS3BlobStore: %v", err)
	}
	return s
}

// take counts a request and returns the fault it is due, if any.
func (f *faultyS3) take(method string) (s3Fault, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests[method]++
	for i := range f.faults {
		p := &f.faults[i]
		if p.method == method && p.left != 0 {
			p.left--
			return p.fault, true
		}
	}
	return s3Fault{}, false
}

// inject faults the next n requests of method (all of them until heal when n < 0), and
// resets the request counts. It also closes idle connections: Go's transport itself resends
// a GET once when a reused connection drops without a reply, which would make the counts
// depend on which connection an attempt got.
func (f *faultyS3) inject(method string, n int, fault s3Fault) {
	f.client.CloseIdleConnections()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, pendingFault{method: method, left: n, fault: fault})
	f.requests = map[string]int{}
}

func (f *faultyS3) resetCounts() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = map[string]int{}
}

func (f *faultyS3) heal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = nil
}

func (f *faultyS3) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[method]
}

// s3Op is one BlobStore operation on key, as the fault tests run it.
type s3Op struct {
	name, method string
	run          func(t *testing.T, s *S3BlobStore, key string) error
}

var s3Ops = []s3Op{
	{"put", http.MethodPut, func(t *testing.T, s *S3BlobStore, key string) error {
		return s.Put(t.Context(), key, bytes.NewReader(blobContent("new", 64<<10)), "audio/mpeg")
	}},
	{"get", http.MethodGet, func(t *testing.T, s *S3BlobStore, key string) error {
		rc, err := s.Get(t.Context(), key)
		if err != nil {
			return err
		}
		defer rc.Close()
		got, err := io.ReadAll(rc)
		if err == nil && !bytes.Equal(got, blobContent("previous", 64<<10)) {
			t.Errorf("Get(%q) read %d bytes that are not the blob", key, len(got))
		}
		return err
	}},
	{"delete", http.MethodDelete, func(t *testing.T, s *S3BlobStore, key string) error {
		return s.Delete(t.Context(), key)
	}},
}

// seedPrevious stores the blob every fault test starts from.
func seedPrevious(t *testing.T, s *S3BlobStore, key string) {
	t.Helper()
	if err := s.Put(t.Context(), key, bytes.NewReader(blobContent("previous", 64<<10)), ""); err != nil {
		t.Fatalf("seed %q: %v", key, err)
	}
}

// Faults that go away (a 5xx, throttling, a dropped connection, an upload cut off) are
// retried by the client, and the operation succeeds with the whole blob: the caller never
// sees them.
func TestS3BlobRetriesTransientFaults(t *testing.T) {
	faults := []s3Fault{s3InternalError, s3SlowDown, s3TooMany, s3ConnDropped, s3UploadCut}
	for _, op := range s3Ops {
		for _, fault := range faults {
			if fault.name == s3UploadCut.name && op.method != http.MethodPut {
				continue
			}
			t.Run(op.name+"/"+fault.name, func(t *testing.T) {
				f := newFaultyS3(t)
				s := f.store(t)
				seedPrevious(t, s, "tts/k.mp3")
				f.inject(op.method, 2, fault)
				if err := op.run(t, s, "tts/k.mp3"); err != nil {
					t.Fatalf("%s with 2 faults then success: %v", op.name, err)
				}
				if got := f.count(op.method); got != 3 {
					t.Errorf("%s requests = %d, want 3 (two faults, one success)", op.method, got)
				}
				switch op.method {
				case http.MethodPut:
					wantBlobContent(t, s, "tts/k.mp3", blobContent("new", 64<<10))
				case http.MethodDelete:
					assertS3Missing(t, s, "tts/k.mp3")
				}
			})
		}
	}
}

// Faults that last give an error that says which operation on which key failed and why
// (the S3 error code), never "not found"; the client gives up after MaxAttempts, or at once
// for a refusal (403); nothing half-written is visible once the service is back.
func TestS3BlobPersistentFaults(t *testing.T) {
	faults := []struct {
		fault    s3Fault
		attempts int
	}{
		{s3InternalError, 3}, {s3SlowDown, 3}, {s3TooMany, 3}, {s3ConnDropped, 3}, {s3UploadCut, 3}, {s3AccessDenied, 1},
	}
	for _, op := range s3Ops {
		for _, ft := range faults {
			if ft.fault.name == s3UploadCut.name && op.method != http.MethodPut {
				continue
			}
			t.Run(op.name+"/"+ft.fault.name, func(t *testing.T) {
				f := newFaultyS3(t)
				s := f.store(t)
				seedPrevious(t, s, "tts/k.mp3")
				f.inject(op.method, -1, ft.fault)
				err := op.run(t, s, "tts/k.mp3")
				if err == nil {
					t.Fatalf("%s under a lasting %s succeeded", op.name, ft.fault.name)
				}
				if errors.Is(err, ErrBlobNotFound) {
					t.Fatalf("%s error = %v: a failure must not read as a missing blob", op.name, err)
				}
				if want := "blob " + op.name + " tts/k.mp3"; !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not start with %q", err, want)
				}
				var api smithy.APIError
				if ft.fault.code != "" && (!errors.As(err, &api) || api.ErrorCode() != ft.fault.code) {
					t.Errorf("error %v does not carry the S3 code %s", err, ft.fault.code)
				}
				if got := f.count(op.method); got != ft.attempts {
					t.Errorf("%s requests = %d, want %d", op.method, got, ft.attempts)
				}

				f.heal()
				if op.method == http.MethodPut {
					// A fresh key failed the same way holds nothing.
					f.inject(http.MethodPut, -1, ft.fault)
					if err := s.Put(t.Context(), "tts/fresh.mp3", strings.NewReader("new"), ""); err == nil {
						t.Fatal("Put of a fresh key succeeded under the fault")
					}
					f.heal()
					assertS3Missing(t, s, "tts/fresh.mp3")
				}
				wantBlobContent(t, s, "tts/k.mp3", blobContent("previous", 64<<10))
			})
		}
	}
}

// A missing key is ErrBlobNotFound at once (a 404 is not retried), also when a transient
// fault came first; the TTS cache counts on it to tell a miss from a broken store.
func TestS3BlobMissingKeyUnderFaults(t *testing.T) {
	f := newFaultyS3(t)
	s := f.store(t)
	f.resetCounts()
	assertS3Missing(t, s, "tts/none.mp3")
	if got := f.count(http.MethodGet); got != 1 {
		t.Errorf("GET requests for a missing key = %d, want 1", got)
	}
	f.inject(http.MethodGet, 1, s3SlowDown)
	assertS3Missing(t, s, "tts/none.mp3")
	if got := f.count(http.MethodGet); got != 2 {
		t.Errorf("GET requests = %d, want 2 (throttled, then 404)", got)
	}
}

// A download cut off after the headers cannot be retried by the client (the caller holds
// the stream), so reading it must fail: a blob cut short never reads as a whole one.
func TestS3BlobDownloadCutMidway(t *testing.T) {
	f := newFaultyS3(t)
	s := f.store(t)
	seedPrevious(t, s, "tts/k.mp3")
	f.inject(http.MethodGet, 1, s3DownloadCut)
	rc, err := s.Get(t.Context(), "tts/k.mp3")
	if err != nil {
		t.Fatalf("Get: %v (the headers arrived whole)", err)
	}
	got, err := io.ReadAll(rc)
	_ = rc.Close()
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("reading a download cut after %d bytes: error %v, want io.ErrUnexpectedEOF", len(got), err)
	}
	// The next Get, on a healthy connection, reads the blob whole.
	wantBlobContent(t, s, "tts/k.mp3", blobContent("previous", 64<<10))
}

func assertS3Missing(t *testing.T, s *S3BlobStore, key string) {
	t.Helper()
	rc, err := s.Get(t.Context(), key)
	if err == nil {
		_ = rc.Close()
	}
	if !errors.Is(err, ErrBlobNotFound) {
		t.Fatalf("Get(%q) error = %v, want ErrBlobNotFound", key, err)
	}
}
