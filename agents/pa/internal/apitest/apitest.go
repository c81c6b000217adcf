// Package apitest holds the local stand-ins for the PA's service APIs (Google, SendGrid,
// Twilio) that the clients' tests run against: a server answering scripted replies and
// recording what it got, one that never answers, and a recorder of retry pauses.
package apitest

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
)

// Reply is one scripted answer of a fake API.
type Reply struct {
	Status int
	Header map[string]string
	Body   string
}

// Request is what a fake API received.
type Request struct {
	Method string
	Path   string // as escaped on the wire
	Query  url.Values
	Header http.Header
	Body   []byte
}

// Form decodes a form-encoded body.
func (r Request) Form(t *testing.T) url.Values {
	t.Helper()
	v, err := url.ParseQuery(string(r.Body))
	if err != nil {
		t.Fatalf("body %q is not a form: %v", r.Body, err)
	}
	return v
}

// FakeAPI is a local server standing in for a provider: it answers with the scripted replies
// in order (the last repeats) and records every request.
type FakeAPI struct {
	Srv     *httptest.Server
	replies []Reply

	mu  sync.Mutex
	got []Request
}

// NewFakeAPI starts a FakeAPI until the test ends.
func NewFakeAPI(t *testing.T, replies ...Reply) *FakeAPI {
	t.Helper()
	f := &FakeAPI{replies: replies}
	f.Srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Srv.Close)
	return f
}

func (f *FakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.got = append(f.got, Request{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.Query(), Header: r.Header.Clone(), Body: body})
	rep := f.replies[min(len(f.got), len(f.replies))-1]
	f.mu.Unlock()
	for k, v := range rep.Header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(rep.Status)
	io.WriteString(w, rep.Body)
}

// Requests returns what the server got so far.
func (f *FakeAPI) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.got)
}

// Only returns the one request the server got, failing the test if there were more or none.
func (f *FakeAPI) Only(t *testing.T) Request {
	t.Helper()
	got := f.Requests()
	if len(got) != 1 {
		t.Fatalf("the server got %d requests, want 1", len(got))
	}
	return got[0]
}

// Hanging starts a server that never answers: it reports each request on arrived and holds
// it until the client goes away.
func Hanging(t *testing.T) (srv *httptest.Server, arrived <-chan struct{}) {
	t.Helper()
	ch := make(chan struct{}, 16)
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The server notices a client leaving only once the body has been read.
		io.Copy(io.Discard, r.Body)
		ch <- struct{}{}
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

// Waits records the pauses between attempts without taking them.
type Waits struct {
	mu  sync.Mutex
	got []time.Duration
}

// Sleep is the clients' pause between attempts.
func (w *Waits) Sleep(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	w.got = append(w.got, d)
	w.mu.Unlock()
	return ctx.Err()
}

// Want checks the pauses taken.
func (w *Waits) Want(t *testing.T, want ...time.Duration) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.got) != len(want) || (len(want) > 0 && !reflect.DeepEqual(w.got, want)) {
		t.Errorf("waited %v between attempts, want %v", w.got, want)
	}
}

// WantJSON checks that body is exactly the JSON document want, key order aside.
func WantJSON(t *testing.T, body []byte, want string) {
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

// WantHeader checks request headers.
func WantHeader(t *testing.T, h http.Header, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
}
