package llm

import (
	"context"
	"errors"
	"io"
	"iter"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// watchdog bounds how long a test waits for something that should happen at once; it only
// turns a hang into a failure and never orders events.
const watchdog = 10 * time.Second

// captured is one request a fake API received.
type captured struct {
	Method, Path string
	Header       http.Header
	Body         []byte
}

// fakeAPI is a local server standing in for a provider's API. It records every request, body
// included, before handing it to the test's handler.
type fakeAPI struct {
	*httptest.Server
	requests chan captured
}

// startAPI starts a fake API that is shut down with the test. Handlers that wait on
// r.Context() are released at the end of the test, so Close never waits on them.
func startAPI(t *testing.T, handle http.HandlerFunc) *fakeAPI {
	t.Helper()
	api := &fakeAPI{requests: make(chan captured, 16)}
	base, stop := context.WithCancel(context.Background())
	api.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case api.requests <- captured{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}:
		default:
			t.Errorf("fake API got more than %d requests", cap(api.requests))
		}
		handle(w, r)
	}))
	api.Config.BaseContext = func(net.Listener) context.Context { return base }
	api.Start()
	t.Cleanup(func() {
		stop()
		api.Close() // also closes the idle connections of api.Client()
	})
	return api
}

// onlyRequest returns the single request the API received, failing if there were none or more.
func (a *fakeAPI) onlyRequest(t *testing.T) captured {
	t.Helper()
	// A handler records its request before it answers, so every request is in by now.
	var got []captured
	for len(a.requests) > 0 {
		got = append(got, <-a.requests)
	}
	if len(got) != 1 {
		t.Fatalf("API got %d requests, want exactly 1", len(got))
	}
	return got[0]
}

// streamSSE answers with a text/event-stream made of frames, flushing after each one.
func streamSSE(frames ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { writeFrames(w, frames) }
}

func writeFrames(w http.ResponseWriter, frames []string) {
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	for _, f := range frames {
		_, _ = io.WriteString(w, f)
		w.(http.Flusher).Flush()
	}
}

// abortAfter streams frames, then drops the connection without ending the response, as a
// crashed upstream or a broken proxy would.
func abortAfter(frames ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		writeFrames(w, frames)
		panic(http.ErrAbortHandler)
	}
}

// holdOpen streams frames (none means not even the headers), then keeps the response open
// until the client goes away, which it reports on the returned channel.
func holdOpen(frames ...string) (http.HandlerFunc, <-chan struct{}) {
	gone := make(chan struct{}, 1)
	return func(w http.ResponseWriter, r *http.Request) {
		if len(frames) > 0 {
			writeFrames(w, frames)
		}
		<-r.Context().Done()
		select {
		case gone <- struct{}{}:
		default:
		}
	}, gone
}

// replyJSON answers with status and body, as an API error does; header holds extra
// name, value pairs.
func replyJSON(status int, body string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		for kv := range slices.Chunk(header, 2) {
			w.Header().Set(kv[0], kv[1])
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// waitFor fails the test unless ch delivers within the watchdog.
func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(watchdog):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// collect drains a stream into its chunks and its error, checking that nothing follows an error.
func collect(t *testing.T, seq iter.Seq2[Chunk, error]) ([]Chunk, error) {
	t.Helper()
	var chunks []Chunk
	var err error
	for c, e := range seq {
		if err != nil {
			t.Errorf("stream went on after its error %v: %+v, %v", err, c, e)
			break
		}
		if e != nil {
			err = e
			continue
		}
		chunks = append(chunks, c)
	}
	return chunks, err
}

// texts returns the text of every chunk, in order.
func texts(chunks []Chunk) []string {
	out := make([]string, 0, len(chunks))
	for _, c := range chunks {
		if c.Text != "" {
			out = append(out, c.Text)
		}
	}
	return out
}

// wantReply is a complete reply as a caller should see it.
type wantReply struct {
	Texts    []string
	Usage    Usage
	Model    string
	Provider string
}

// checkReply asserts a successful stream: the texts in order, each chunk naming model and
// provider, and exactly one usage chunk, the last, carrying no text.
func checkReply(t *testing.T, chunks []Chunk, err error, want wantReply) {
	t.Helper()
	if err != nil {
		t.Fatalf("stream failed: %v", err)
	}
	if got := texts(chunks); !slices.Equal(got, want.Texts) {
		t.Errorf("texts %q, want %q", got, want.Texts)
	}
	if len(chunks) != len(want.Texts)+1 {
		t.Fatalf("got %d chunks, want %d texts and a usage chunk: %+v", len(chunks), len(want.Texts), chunks)
	}
	for i, c := range chunks {
		if c.Model != want.Model || c.Provider != want.Provider {
			t.Errorf("chunk %d names model %q provider %q, want %q %q", i, c.Model, c.Provider, want.Model, want.Provider)
		}
		if last := i == len(chunks)-1; (c.Usage != nil) != last || (last && c.Text != "") {
			t.Errorf("chunk %d: %+v; only the last chunk may carry usage, and no text", i, c)
		}
	}
	if u := chunks[len(chunks)-1].Usage; u != nil && *u != want.Usage {
		t.Errorf("usage %+v, want %+v", *u, want.Usage)
	}
}

// asProviderError returns err as an *Error, failing the test if it is not one.
func asProviderError(t *testing.T, err error) *Error {
	t.Helper()
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not an *llm.Error", err, err)
	}
	return pe
}

// userTurn is the smallest valid request.
var userTurn = Request{Messages: []Message{{Role: "user", Content: "Hi"}}}
