// Package redistest runs a private redis-server for a test: on a free loopback port, in a
// temporary folder, without persistence, killed when the test ends.
//
// redis-server must be installed (`make test-deps` installs it as root on Debian). A missing
// binary fails the test, locally and under CI=true alike: it is never skipped.
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"github.com/dartmouth-gw/dartmouth/session/internal/testproc"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Server is one running redis-server.
type Server struct {
	// Addr is host:port on loopback.
	Addr string

	t    testing.TB
	bin  string
	dir  string
	port int

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan error
	logs   *testproc.LineWatcher
}

// Start runs redis-server and waits until it answers PING. It is killed in t.Cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server is not installed, and under CI=true that is an error: `make test-deps` installs it (apt-get install redis-server, as root)")
		}
		t.Fatal("redis-server is not installed: run `make test-deps` as root, or `apt-get install redis-server`; the rate-limit tests need a real Redis")
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir()}
	t.Cleanup(s.Stop)
	var lastErr error
	for range 5 { // another process may take the free port before redis-server binds it
		if s.port, err = testproc.FreePort(); err != nil {
			t.Fatal(err)
		}
		if lastErr = s.launch(); lastErr == nil {
			s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
			return s
		}
		if !strings.Contains(lastErr.Error(), "in use") {
			break
		}
	}
	t.Fatalf("redis-server did not start: %v", lastErr)
	return nil
}

// URL is the server's redis:// URL, as DARTMOUTH_REDIS_URL takes it.
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

// Client returns a client of the server, closed in t.Cleanup (before the server stops).
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr: s.Addr,
		// Fail fast when a test stops the server on purpose.
		DialerRetries:            1,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Stop kills the server and waits for it to exit; stopping twice is fine.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Restart starts a stopped server again on the same port, empty.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.launch(); err != nil {
		s.t.Fatalf("redis-server did not restart: %v", err)
	}
}

// Logs is what the server has printed.
func (s *Server) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.logs == nil {
		return ""
	}
	return s.logs.String()
}

func (s *Server) launch() error {
	logs := testproc.NewLineWatcher("Ready to accept connections")
	ready := logs.Ready()
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--dir", s.dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", "", "--loglevel", "notice")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	s.mu.Lock()
	s.cmd, s.exited, s.logs = cmd, exited, logs
	s.mu.Unlock()
	select {
	case <-ready:
	case err := <-exited:
		s.mu.Lock()
		s.cmd = nil
		s.mu.Unlock()
		return fmt.Errorf("exited (%v): %s", err, logs)
	case <-time.After(30 * time.Second):
		s.Stop()
		return fmt.Errorf("not ready after 30s: %s", logs)
	}
	if err := ping(net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))); err != nil {
		s.Stop()
		return fmt.Errorf("no answer to PING: %w\n%s", err, logs)
	}
	return nil
}

// ping speaks just enough RESP to ask PING.
func ping(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return errors.New("unexpected answer " + strconv.Quote(line))
	}
	return nil
}
