package gateway

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingFlusher counts the flushes that reach the connection.
type countingFlusher struct {
	http.ResponseWriter
	flushes atomic.Int64
}

func (c *countingFlusher) Flush() {
	c.flushes.Add(1)
	c.ResponseWriter.(http.Flusher).Flush()
}

func (c *countingFlusher) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// A frame right behind a flush waits for the flush timer, not for the next frame: the client
// gets it while the handler writes nothing more.
func TestSSEWriterFlushesAFrameLeftBehindByTheWindow(t *testing.T) {
	seen := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sse, err := newSSEWriter(w)
		if err != nil {
			t.Error(err)
			return
		}
		defer sse.close()
		sse.begin()
		_ = sse.data(map[string]string{"n": "first"})
		_ = sse.data(map[string]string{"n": "second"}) // within the window of the first's flush
		select {
		case <-seen:
		case <-time.After(10 * time.Second):
			t.Error("the client never got the second frame: the flush timer did not flush it")
		}
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "second") {
			close(seen)
			break
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

// A burst of frames leaves in a few writes, and all of it arrives.
func TestSSEWriterCoalescesABurst(t *testing.T) {
	const frames = 2000
	var flushes int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &countingFlusher{ResponseWriter: w}
		sse, err := newSSEWriter(cw)
		if err != nil {
			t.Error(err)
			return
		}
		sse.begin()
		for i := range frames {
			if err := sse.data(map[string]int{"n": i}); err != nil {
				t.Error(err)
				return
			}
		}
		_ = sse.done()
		sse.close()
		flushes = cw.flushes.Load()
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), `data: {"n":`) {
			got++
		}
	}
	if got != frames {
		t.Fatalf("%d frames arrived, want %d", got, frames)
	}
	// One flush per frame would be 2,001; the window allows one per millisecond.
	if flushes > frames/4 {
		t.Fatalf("%d flushes for a burst of %d frames: the burst was not coalesced", flushes, frames)
	}
	t.Logf("%d frames in %d flushes", frames, flushes)
}
