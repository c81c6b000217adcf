// Package testproc holds what the test harnesses that run real servers (pgtest, redistest)
// share: a free loopback port, and a log that says when the server is ready.
package testproc

import (
	"bytes"
	"net"
	"strings"
	"sync"
)

// FreePort asks the kernel for a free port on 127.0.0.1. Another process could take it
// before the server binds it; the server then fails to start, clearly.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// LineWatcher keeps a server's output and closes Ready at the first line containing match.
type LineWatcher struct {
	match string
	ready chan struct{}

	mu   sync.Mutex
	buf  bytes.Buffer
	seen bool
}

// NewLineWatcher watches for match.
func NewLineWatcher(match string) *LineWatcher {
	return &LineWatcher{match: match, ready: make(chan struct{})}
}

// Ready is closed once the output has held match.
func (w *LineWatcher) Ready() <-chan struct{} { return w.ready }

func (w *LineWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.seen && strings.Contains(w.buf.String(), w.match) {
		w.seen = true
		close(w.ready)
	}
	return len(p), nil
}

// String is the output so far.
func (w *LineWatcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
