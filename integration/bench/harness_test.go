package bench

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"orch/integration/lab"
	"orch/internal/wait"
)

// bins are the binaries under test: the ones `make build` leaves in bin/ (what users run:
// static, stripped), built by TestMain when missing.
var bins struct{ orch, agent string }

// moduleRoot is the repository root, relative to this package.
const moduleRoot = "../.."

func TestMain(m *testing.M) {
	root, _ := filepath.Abs(moduleRoot)
	bins.orch, bins.agent = filepath.Join(root, "bin", "orch"), filepath.Join(root, "bin", "nodeagent")
	flag.Parse()
	if benchmarking := flag.Lookup("test.bench").Value.String() != ""; benchmarking && needsBuild() {
		cmd := exec.Command("make", "build")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "integration/bench: make build: %v\n%s", err, out)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

func needsBuild() bool {
	for _, p := range []string{bins.orch, bins.agent} {
		if _, err := os.Stat(p); err != nil {
			return true
		}
	}
	return false
}

// knobs are the run's sizes, from the environment (see doc.go).
type knobs struct {
	runs    int
	hosts   int
	members int
	idle    time.Duration
	only    map[string]bool
}

func readKnobs() knobs {
	k := knobs{runs: envInt("ORCH_BENCH_RUNS", 3), hosts: envInt("ORCH_BENCH_HOSTS", 30),
		members: envInt("ORCH_BENCH_MEMBERS", 200), idle: 45 * time.Second}
	if d, err := time.ParseDuration(os.Getenv("ORCH_BENCH_IDLE")); err == nil && d > 0 {
		k.idle = d
	}
	if s := os.Getenv("ORCH_BENCH_ONLY"); s != "" {
		k.only = map[string]bool{}
		for _, name := range strings.Split(s, ",") {
			k.only[strings.TrimSpace(name)] = true
		}
	}
	return k
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// slowRuns is the number of runs for slow peers (Ansible): at most 3.
func (k knobs) slowRuns() int { return min(k.runs, 3) }

// newLab creates n fresh test hosts whose steps are not logged (benchmark logs are always
// printed); the lab is closed and removed when b ends, or earlier by the caller.
func newLab(b testing.TB, n int) *lab.Lab {
	b.Helper()
	lab.Require(b)
	dir, err := os.MkdirTemp("", "orch-lab-bench-")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), max(2*time.Minute, time.Duration(n)*time.Second))
	defer cancel()
	l, err := lab.Create(ctx, dir, n, lab.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		os.RemoveAll(dir)
		b.Fatalf("lab of %d hosts: %v", n, err)
	}
	b.Cleanup(func() { closeLab(b, l) })
	return l
}

// closeLab closes a lab (idempotent) and removes its directory.
func closeLab(b testing.TB, l *lab.Lab) {
	if err := l.Close(); err != nil {
		b.Errorf("%v (its files stay in %s)", err, l.Dir())
		return
	}
	_ = os.RemoveAll(l.Dir())
}

// run is one command's outcome.
type run struct {
	took           time.Duration
	cpu            time.Duration // user and system CPU of the process and its waited-for children (when known)
	stdout, stderr string
	err            error
}

// timed runs a command and measures its wall time; err names the command and the tail of
// its output when it fails.
func timed(ctx context.Context, env []string, dir string, name string, args ...string) run {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := run{took: time.Since(start), stdout: out.String(), stderr: errb.String()}
	if err != nil {
		r.err = fmt.Errorf("%s %s: %w\n%s", filepath.Base(name), strings.Join(args, " "), err, tailOf(r.stdout+r.stderr, 30))
	}
	return r
}

// tailOf returns the last n lines of s.
func tailOf(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitFor polls cond every 20ms until it returns nil and returns how long that took;
// after timeout it returns an error naming what it waited for and cond's last error.
func waitFor(timeout time.Duration, what string, cond func() error) (time.Duration, error) {
	start := time.Now()
	if err := wait.UntilEvery(timeout, 20*time.Millisecond, cond); err != nil {
		return 0, fmt.Errorf("waited %v for %s; last error: %w", timeout, what, err)
	}
	return time.Since(start), nil
}

// errSkipped marks a peer that is not available here.
var errSkipped = errors.New("not available")

// readAll is a file's content, or the error reading it.
func readAll(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
