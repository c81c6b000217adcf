package gcal_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// reply is one scripted answer of a fake provider.
type reply struct {
	status int
	header map[string]string
	body   string
}

// recorded is what a fake provider received.
type recorded struct {
	method string
	path   string // as escaped on the wire
	query  url.Values
	header http.Header
	body   []byte
}

// form decodes a form-encoded body.
func (r recorded) form(t *testing.T) url.Values {
	t.Helper()
	v, err := url.ParseQuery(string(r.body))
	if err != nil {
		t.Fatalf("body %q is not a form: %v", r.body, err)
	}
	return v
}

// fakeAPI is a local server standing in for a provider: it answers with the scripted replies
// in order (the last repeats) and records every request.
type fakeAPI struct {
	srv     *httptest.Server
	replies []reply

	mu  sync.Mutex
	got []recorded
}

func newFakeAPI(t *testing.T, replies ...reply) *fakeAPI {
	t.Helper()
	f := &fakeAPI{replies: replies}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.got = append(f.got, recorded{method: r.Method, path: r.URL.EscapedPath(), query: r.URL.Query(), header: r.Header.Clone(), body: body})
	rep := f.replies[min(len(f.got), len(f.replies))-1]
	f.mu.Unlock()
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(rep.status)
	io.WriteString(w, rep.body)
}

func (f *fakeAPI) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.got)
}

// only returns the one request the server got, failing the test if there were more or none.
func (f *fakeAPI) only(t *testing.T) recorded {
	t.Helper()
	got := f.requests()
	if len(got) != 1 {
		t.Fatalf("the server got %d requests, want 1", len(got))
	}
	return got[0]
}

// hangingAPI never answers: it reports each request on arrived and holds it until the
// client goes away.
func hangingAPI(t *testing.T) (*httptest.Server, <-chan struct{}) {
	t.Helper()
	arrived := make(chan struct{}, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The server notices a client leaving only once the body has been read.
		io.Copy(io.Discard, r.Body)
		arrived <- struct{}{}
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	return srv, arrived
}

// waits records the pauses between attempts without taking them.
type waits struct {
	mu  sync.Mutex
	got []time.Duration
}

func (w *waits) sleep(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	w.got = append(w.got, d)
	w.mu.Unlock()
	return ctx.Err()
}

func (w *waits) want(t *testing.T, want ...time.Duration) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.got) != len(want) || (len(want) > 0 && !reflect.DeepEqual(w.got, want)) {
		t.Errorf("waited %v between attempts, want %v", w.got, want)
	}
}

// wantJSON checks that body is exactly the JSON document want, key order aside.
func wantJSON(t *testing.T, body []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(body, &g); err != nil {
		t.Fatalf("body %s is not JSON: %v", body, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want %s: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("body\n %s\nwant\n %s", body, want)
	}
}

// wantHeader checks request headers.
func wantHeader(t *testing.T, h http.Header, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
}

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2025, time.March, 4, 15, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// zone loads a time zone, failing the test if it cannot.
func zone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}
