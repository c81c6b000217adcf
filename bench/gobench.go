package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The Go benchmarks of the packages (voice, TTS cache, MP3, replayed workload) run from test
// binaries compiled once per package, and their reported metrics are parsed from the output.

// goBench is one Go benchmark and how to run it.
type goBench struct {
	Pkg       string   // ./voice/
	Name      string   // BenchmarkTTSCacheHit
	BenchTime string   // -test.benchtime
	CPU       string   // -test.cpu; empty keeps GOMAXPROCS
	Env       []string // extra environment
}

// benchLine is one parsed result line: the iterations and each metric by unit.
type benchLine struct {
	Name       string
	Iterations int64
	Metrics    map[string]float64
}

// parseBenchOutput reads `go test -bench` output and returns its result lines.
func parseBenchOutput(out []byte) []benchLine {
	var lines []benchLine
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") || len(fields)%2 != 0 {
			continue
		}
		iters, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			continue
		}
		l := benchLine{Name: trimCPUSuffix(fields[0]), Iterations: iters, Metrics: map[string]float64{}}
		ok := true
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				ok = false
				break
			}
			l.Metrics[fields[i+1]] = v
		}
		if ok {
			lines = append(lines, l)
		}
	}
	return lines
}

// trimCPUSuffix drops the -GOMAXPROCS suffix Go adds to a benchmark's name.
func trimCPUSuffix(name string) string {
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			return name[:i]
		}
	}
	return name
}

// testBinaries compiles each package's tests once and remembers where.
type testBinaries struct {
	repo, dir string
	built     map[string]string // package -> binary
}

func (t *testBinaries) binary(ctx context.Context, pkg string) (string, error) {
	if bin, ok := t.built[pkg]; ok {
		return bin, nil
	}
	bin := filepath.Join(t.dir, strings.NewReplacer("/", "_", ".", "").Replace(strings.Trim(pkg, "./"))+".test")
	cmd := exec.CommandContext(ctx, "go", "test", "-c", "-o", bin, pkg)
	cmd.Dir = t.repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go test -c %s: %w\n%s", pkg, err, out)
	}
	t.built[pkg] = bin
	return bin, nil
}

// run runs one benchmark in its package folder (where its testdata is) and returns its
// result line. A benchmark that reports its figures and then fails its own target still
// gives its line; the failure is for the table to show.
func (t *testBinaries) run(ctx context.Context, b goBench) (benchLine, error) {
	bin, err := t.binary(ctx, b.Pkg)
	if err != nil {
		return benchLine{}, err
	}
	args := []string{"-test.run", "^$", "-test.bench", "^" + b.Name + "$", "-test.benchtime", b.BenchTime, "-test.timeout", "10m"}
	if b.CPU != "" {
		args = append(args, "-test.cpu", b.CPU)
	}
	ctx, cancel := context.WithTimeout(ctx, 11*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = filepath.Join(t.repo, b.Pkg)
	cmd.Env = append(os.Environ(), b.Env...)
	out, runErr := cmd.CombinedOutput()
	for _, l := range parseBenchOutput(out) {
		if l.Name == b.Name {
			return l, nil
		}
	}
	if runErr == nil {
		runErr = fmt.Errorf("no result line")
	}
	return benchLine{}, fmt.Errorf("%s %s: %w%s\n%s", b.Pkg, b.Name, runErr, failureReason(out), tail(out, 3000))
}

// failureReason is the first message a failed benchmark logged ("x_test.go:31: why"), to put
// on the error's first line, which the table's notes show.
func failureReason(out []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.Contains(line, "_test.go:") {
			return " (" + line + ")"
		}
	}
	return ""
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
