// Package pgtest runs a private PostgreSQL server for tests: a cluster made by initdb in a
// temporary folder, served on a free loopback port (and a unix socket in that folder) with
// fsync off, one fresh database per test so tests stay independent, stopped and removed when
// done.
//
// The binaries come from Debian's postgresql package (/usr/lib/postgresql/N/bin, the newest
// N), else from PATH; `make test-deps` installs it. A missing PostgreSQL fails the test,
// locally and under CI=true alike: it is never skipped.
//
// PostgreSQL refuses to run as root, so as root initdb and the server run as the postgres
// system user (made by the Debian package, else created here), which owns the folder.
//
// Use Start for a server of one test (a test that stops and restarts it), or Shared for the
// one server of the test binary; a package using Shared wraps its tests so the server stops
// once they have run:
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.Tests(m)) }
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"github.com/dartmouth-gw/dartmouth/session/internal/testproc"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Superuser is the role the tests connect as, without a password (trust authentication on
// loopback and the socket only).
const Superuser = "postgres"

// Server is one running PostgreSQL cluster.
type Server struct {
	// Addr is host:port on loopback.
	Addr string

	bin   string // folder of initdb and postgres
	dir   string // everything lives here: removed by destroy
	data  string
	port  int
	owner *account // who runs the server; nil: this process's user

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan error
	logs   *testproc.LineWatcher

	databases atomic.Int64
}

// account is the system user the server runs as when this process is root.
type account struct {
	name     string
	uid, gid uint32
}

// Start makes and runs a server of the test's own, stopped and removed in t.Cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.destroy)
	return s
}

var shared struct {
	mu  sync.Mutex
	srv *Server
}

// Shared returns the test binary's server, starting it on first use. Tests(m) in TestMain
// stops it once every test has run.
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv == nil {
		s, err := start()
		if err != nil {
			t.Fatal(err)
		}
		shared.srv = s
	}
	return shared.srv
}

// StopShared stops the shared server, if one runs, and removes its files.
func StopShared() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv != nil {
		shared.srv.destroy()
		shared.srv = nil
	}
}

// M is what TestMain is given: *testing.M.
type M interface{ Run() int }

type stopSharedAfter struct{ m M }

func (w stopSharedAfter) Run() int {
	defer StopShared()
	return w.m.Run()
}

// Tests wraps a package's tests so the shared server stops when they have run (before
// goleak looks for leaked goroutines).
func Tests(m M) M { return stopSharedAfter{m} }

// URL is the postgres:// URL of a database of the server, as DARTMOUTH_DATABASE_URL takes it.
func (s *Server) URL(database string) string {
	return fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable", Superuser, s.Addr, database)
}

// NewDatabase creates an empty database (test_1, test_2, ...) for one test and returns its
// URL; it is dropped in t.Cleanup if the server still runs then.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	name := "test_" + strconv.FormatInt(s.databases.Add(1), 10)
	if err := s.Exec(t.Context(), "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: %v\n%s", err, s.Logs())
	}
	t.Cleanup(func() {
		if s.Running() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			// FORCE: a test that failed half-way may still hold connections.
			_ = s.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		}
	})
	return s.URL(name)
}

// Exec runs one statement as the superuser in the postgres database.
func (s *Server) Exec(ctx context.Context, statement string) error {
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, statement); err != nil {
		return fmt.Errorf("%s: %w", statement, err)
	}
	return nil
}

// Running reports whether the server process is up.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// Stop shuts the server down as `pg_ctl stop -m fast` does (SIGINT: connections are cut,
// transactions rolled back, the data kept) and waits for it to exit; stopping twice is fine.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.exited:
	case <-time.After(time.Minute):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
}

// Restart starts a stopped server again on the same port, with its data.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	if err := s.launch(); err != nil {
		t.Fatalf("pgtest: PostgreSQL did not restart: %v", err)
	}
}

// Logs is what the server has printed since it last started.
func (s *Server) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.logs == nil {
		return ""
	}
	return s.logs.String()
}

func (s *Server) destroy() {
	s.Stop()
	_ = os.RemoveAll(s.dir)
}

// start makes a cluster in a new temporary folder and runs it on a free port.
func start() (*Server, error) {
	bin, err := findBinaries()
	if err != nil {
		return nil, err
	}
	owner, err := serverAccount()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	s := &Server{bin: bin, dir: dir, data: filepath.Join(dir, "data"), owner: owner}
	if owner != nil {
		if err := os.Chown(dir, int(owner.uid), int(owner.gid)); err != nil {
			s.destroy()
			return nil, fmt.Errorf("pgtest: give %s to %s: %w", dir, owner.name, err)
		}
	}
	initdb := s.command("initdb", "-D", s.data, "-U", Superuser, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		s.destroy()
		return nil, fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	var lastErr error
	for range 5 { // another process may take the free port before the server binds it
		if s.port, err = testproc.FreePort(); err != nil {
			s.destroy()
			return nil, fmt.Errorf("pgtest: %w", err)
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
		if lastErr = s.launch(); lastErr == nil {
			return s, nil
		}
		if !strings.Contains(lastErr.Error(), "already in use") {
			break
		}
	}
	s.destroy()
	return nil, fmt.Errorf("pgtest: PostgreSQL did not start: %w", lastErr)
}

// command runs one of the server's binaries as the server's account, in its folder (the
// postgres user may not enter the test's working directory).
func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.dir
	cmd.SysProcAttr = sysProcAttr(s.owner)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") { // PGDATA, PGPORT ... would override the arguments
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "LC_ALL=C")
	return cmd
}

func (s *Server) launch() error {
	logs := testproc.NewLineWatcher("database system is ready to accept connections")
	ready := logs.Ready()
	cmd := s.command("postgres", "-D", s.data, "-p", strconv.Itoa(s.port), "-h", "127.0.0.1", "-k", s.dir,
		"-F", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200")
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
	case <-time.After(time.Minute):
		s.Stop()
		return fmt.Errorf("not ready after a minute: %s", logs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Exec(ctx, "SELECT 1"); err != nil {
		s.Stop()
		return fmt.Errorf("no answer on %s: %w\n%s", s.Addr, err, logs)
	}
	return nil
}

// findBinaries returns the folder holding initdb and postgres: Debian's newest version,
// else the one on PATH.
func findBinaries() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	var versions []string
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			versions = append(versions, d)
		}
	}
	if len(versions) > 0 {
		major := func(d string) float64 {
			v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(d)), 64)
			return v
		}
		sort.Slice(versions, func(i, j int) bool { return major(versions[i]) > major(versions[j]) })
		return versions[0], nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	if os.Getenv("CI") == "true" {
		return "", errors.New("pgtest: PostgreSQL is not installed, and under CI=true that is an error: `make test-deps` installs it (apt-get install postgresql, as root)")
	}
	return "", errors.New("pgtest: PostgreSQL is not installed: run `make test-deps` as root, or `apt-get install postgresql`; the SQL store tests run against a real server")
}

// serverAccount is nil unless this process is root, which PostgreSQL refuses to run as: then
// the postgres system user, created if the package did not.
func serverAccount() (*account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		out, addErr := exec.Command("useradd", "--system", "--user-group", "--no-create-home",
			"--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", "postgres").CombinedOutput()
		if addErr != nil {
			return nil, fmt.Errorf("pgtest: running as root needs a postgres system user, and useradd failed: %w\n%s", addErr, out)
		}
		if u, err = user.Lookup("postgres"); err != nil {
			return nil, fmt.Errorf("pgtest: %w", err)
		}
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pgtest: postgres uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pgtest: postgres gid %q: %w", u.Gid, err)
	}
	return &account{name: u.Username, uid: uint32(uid), gid: uint32(gid)}, nil
}
