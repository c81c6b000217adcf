package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// gatewayProc is one real gateway process (the binary `make build` makes) on a loopback port,
// with a fresh data folder.
type gatewayProc struct {
	URL     string // http://127.0.0.1:PORT
	Addr    string // 127.0.0.1:PORT
	cmd     *exec.Cmd
	exited  chan struct{}
	exitErr error
	logPath string
}

// buildGateway compiles ./cmd/dartmouth into dir and returns the binary's path.
func buildGateway(ctx context.Context, repo, dir string) (string, error) {
	bin := filepath.Join(dir, "dartmouth")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/dartmouth")
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/dartmouth: %w\n%s", err, out)
	}
	return bin, nil
}

// freeLoopbackAddr asks the kernel for a free port on 127.0.0.1. Another process could take
// it before the gateway binds it; startGateway then fails clearly rather than measuring
// something else.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startGateway runs the binary with rate limits off, a fresh data folder under workDir, the
// fake provider as its OpenAI-compatible model and extra flags, and waits until it answers
// /health/live. Its log goes to a file in the data folder, shown when it fails.
func startGateway(ctx context.Context, bin, workDir, providerURL string, extra ...string) (*gatewayProc, error) {
	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	dataDir, err := os.MkdirTemp(workDir, "gateway-data-")
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dataDir, "gateway.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child holds its own descriptor
	args := append([]string{"serve", "--addr", addr, "--data-dir", dataDir, "--rate-limit=false", "--log-level", "warn"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "OPENAI_BASE_URL="+providerURL, "OPENAI_API_KEY=")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start gateway: %w", err)
	}
	g := &gatewayProc{URL: "http://" + addr, Addr: addr, cmd: cmd, exited: make(chan struct{}), logPath: logPath}
	go func() {
		g.exitErr = cmd.Wait()
		close(g.exited)
	}()
	if err := g.waitLive(ctx, 30*time.Second); err != nil {
		g.Stop()
		return nil, fmt.Errorf("%w\n%s", err, g.logTail())
	}
	return g, nil
}

// waitLive polls /health/live: an external process has no other way to say it is ready.
func (g *gatewayProc) waitLive(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get(g.URL + "/health/live")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-g.exited:
			return fmt.Errorf("gateway exited before it was live: %v", g.exitErr)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gateway not live after %s (last error: %v)", limit, err)
		}
	}
}

// Stop sends SIGTERM and waits for the process, killing it after the gateway's own grace
// period has had time to pass.
func (g *gatewayProc) Stop() error {
	select {
	case <-g.exited:
		return nil
	default:
	}
	g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.exited:
		return nil
	case <-time.After(30 * time.Second):
		g.cmd.Process.Kill()
		<-g.exited
		return errors.New("gateway did not stop within 30 s of SIGTERM; killed")
	}
}

func (g *gatewayProc) PID() int { return g.cmd.Process.Pid }

// logTail is the end of the gateway's log, for error messages.
func (g *gatewayProc) logTail() string {
	data, _ := os.ReadFile(g.logPath)
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return string(data)
}

// rssBytes is the process's resident set (VmRSS of /proc/PID/status).
func rssBytes(pid int) (int64, error) {
	return procFieldBytes(fmt.Sprintf("/proc/%d/status", pid), "VmRSS")
}

// procFieldBytes reads a "Name:   123 kB" line of a /proc file.
func procFieldBytes(path, field string) (int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s in %s: %w", field, path, err)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("no %s in %s", field, path)
}

// openFileLimit is the soft "Max open files" of a running process (/proc/PID/limits): what
// the gateway really runs with, whoever raised it.
func openFileLimit(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return 0, err
	}
	return parseOpenFileLimit(data)
}

func parseOpenFileLimit(limits []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(limits))
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, "Max open files")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) < 2 {
			break
		}
		if fields[0] == "unlimited" {
			return 1 << 31, nil
		}
		return strconv.ParseInt(fields[0], 10, 64)
	}
	return 0, errors.New("no \"Max open files\" line in the limits")
}

// raiseOpenFileLimit lifts this process's RLIMIT_NOFILE to want, or as far as the hard limit
// allows when raising the hard limit is not permitted (it needs CAP_SYS_RESOURCE). The
// gateway, a Go program, raises its own soft limit to its hard limit at start-up (the os
// package does since Go 1.19), and inherits the hard limit from this process.
func raiseOpenFileLimit(want uint64) (syscall.Rlimit, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return lim, err
	}
	if lim.Max < want {
		raised := syscall.Rlimit{Cur: want, Max: want}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err == nil {
			return raised, nil
		}
	}
	lim.Cur = min(want, lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return lim, err
	}
	return lim, nil
}
