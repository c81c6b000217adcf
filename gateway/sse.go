package gateway

import (
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// sseFlushWindow is how long a frame may wait in the buffer for the ones right behind it. A
// frame that comes after a quiet spell goes out at once, so a model's tokens (tens of
// milliseconds apart) each leave the moment they exist; a burst (a cached reply, a fast local
// model, a provider's read holding many chunks) leaves in one write instead of one system
// call per token, which is what held the relay near 20,000 tokens/s.
const sseFlushWindow = time.Millisecond

// sseMaxBuffered is how much a burst may gather before it is flushed without waiting for
// the window.
const sseMaxBuffered = 64 << 10

// sseWriteTimeout bounds one write: a client that stops reading for this long is gone.
const sseWriteTimeout = 10 * time.Second

// sseWriter writes text/event-stream frames, flushing at once or within sseFlushWindow.
// Its methods and its flush timer share mu, so the response is never written from two
// goroutines at once; close stops the timer before the handler returns.
type sseWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController

	mu sync.Mutex
	// out holds the frames written since the last flush, sent in one write: net/http's own
	// buffer would send them 4 KiB at a time, a system call each.
	out       []byte
	lastFlush time.Time
	pending   bool // written but not flushed
	timer     *time.Timer
	armed     bool // the timer will fire
	closed    bool
	err       error // the first failed write or flush: the client is gone
}

func newSSEWriter(w http.ResponseWriter) (*sseWriter, error) {
	if _, ok := w.(http.Flusher); !ok {
		return nil, errors.New("streaming is not supported by this connection")
	}
	return &sseWriter{w: w, rc: http.NewResponseController(w)}, nil
}

// begin sends the stream's headers; nothing is flushed until the first write.
func (s *sseWriter) begin() {
	h := s.w.Header()
	h.Set(echo.HeaderContentType, "text/event-stream; charset=utf-8")
	h.Set(echo.HeaderCacheControl, "no-cache")
	h.Set(echo.HeaderConnection, "keep-alive")
	h.Set("X-Accel-Buffering", "no") // nginx would otherwise hold the events back
	s.w.WriteHeader(http.StatusOK)
}

// start opens the stream with a comment, flushed, so the client sees it is live.
func (s *sseWriter) start() error {
	s.begin()
	return s.write(func(b []byte) []byte { return append(b, ": stream open\n\n"...) }, true)
}

// event writes one named event holding data as JSON (the /api/v2/chat stream).
func (s *sseWriter) event(name string, data any) error {
	payload, err := json.Marshal(data)
	if err != nil {
		return err
	}
	return s.write(func(b []byte) []byte {
		b = append(append(append(b, "event: "...), name...), "\ndata: "...)
		return append(append(b, payload...), "\n\n"...)
	}, false)
}

// data writes one "data:" frame holding v as JSON, as OpenAI streams do (no event names).
func (s *sseWriter) data(v any) error {
	payload, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.write(func(b []byte) []byte {
		return append(append(append(b, "data: "...), payload...), "\n\n"...)
	}, false)
}

// done writes the [DONE] sentinel that ends an OpenAI stream, and flushes.
func (s *sseWriter) done() error {
	return s.write(func(b []byte) []byte { return append(b, "data: [DONE]\n\n"...) }, true)
}

// close flushes what waits and stops the timer; the handler calls it before it returns.
func (s *sseWriter) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
	}
	if s.pending {
		s.flushLocked()
	}
}

// write appends one frame to the response and flushes it now, or arms the timer when the
// last flush was under sseFlushWindow ago.
func (s *sseWriter) write(frame func([]byte) []byte, flushNow bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if s.closed {
		return errors.New("sse: the stream is closed")
	}
	s.out = frame(s.out)
	s.pending = true
	wait := sseFlushWindow - time.Since(s.lastFlush)
	switch {
	case flushNow || wait <= 0 || len(s.out) >= sseMaxBuffered:
		s.flushLocked()
		return s.err
	case s.armed: // the timer will flush this frame with the others
	case s.timer == nil:
		s.armed = true
		s.timer = time.AfterFunc(wait, s.flushLater)
	default:
		s.armed = true
		s.timer.Reset(wait)
	}
	return nil
}

func (s *sseWriter) flushLater() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.armed = false
	if s.pending && !s.closed && s.err == nil {
		s.flushLocked()
	}
}

func (s *sseWriter) flushLocked() {
	s.pending = false
	s.lastFlush = time.Now()
	_ = s.rc.SetWriteDeadline(s.lastFlush.Add(sseWriteTimeout))
	_, err := s.w.Write(s.out)
	if cap(s.out) > 4*sseMaxBuffered {
		s.out = nil // an outsized frame's buffer is not kept for the rest of a long stream
	} else {
		s.out = s.out[:0]
	}
	if err == nil {
		err = s.rc.Flush()
	}
	if err != nil && s.err == nil {
		s.err = err
	}
}
