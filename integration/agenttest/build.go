package agenttest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Tags are the build tags of every build of the project (the Makefile's): another set
// rebuilds cgo SQLite for minutes.
const Tags = "osusergo,netgo,sqlite_omit_load_extension"

// AgentPkg is the nodeagent main package, relative to the module root.
const AgentPkg = "./nodeagent/cmd/nodeagent"

// bin is the nodeagent binary under test and binDir the directory Main removes at the
// end; both are set by Main before any test runs and only read afterwards.
var bin, binDir string

// Main is a TestMain body: it makes a directory for binaries, builds nodeagent there once
// (unless $NODEAGENT_BIN names one), runs each setup (building other binaries, say), runs
// the tests and removes the directory. It returns the exit code for os.Exit.
func Main(m *testing.M, setup ...func() error) int {
	dir, err := os.MkdirTemp("", "nodeagent-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "agenttest:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	if bin = os.Getenv("NODEAGENT_BIN"); bin == "" {
		bin = filepath.Join(dir, "nodeagent")
		if err := BuildAgent(bin); err != nil {
			fmt.Fprintln(os.Stderr, "agenttest: building nodeagent:", err)
			return 1
		}
	}
	for _, f := range setup {
		if err := f(); err != nil {
			fmt.Fprintln(os.Stderr, "agenttest:", err)
			return 1
		}
	}
	return m.Run()
}

// Bin is the nodeagent binary under test (built by Main).
func Bin() string { return bin }

// BinDir is a directory for binaries a test builds on demand, removed when Main returns.
func BinDir() string { return binDir }

// BuildOptions are what a build adds to `go build -tags=Tags -o out pkg`.
type BuildOptions struct {
	Tags  []string // added to the project's Tags (schemav2, a mutation's tag)
	Flags []string // other go build flags, e.g. "-ldflags", "-X orch/nodeagent/version.Version=0.9.0"
	Env   []string // added to the environment, e.g. CGO_ENABLED=1
}

// BuildAgent builds nodeagent into out with the project's tags plus extraTags (e.g.
// schemav2 for the upgraded binary of upgrade tests, a mutation's tag).
func BuildAgent(out string, extraTags ...string) error {
	return Build(out, AgentPkg, BuildOptions{Tags: extraTags})
}

// BuildAgentAt builds nodeagent as it was at the git revision rev of this repository (its
// tree extracted with git archive into a temporary directory), with the project's tags:
// the previous release for upgrade tests.
func BuildAgentAt(out, rev string) error {
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	src, err := os.MkdirTemp("", "orch-at-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(src)
	archive := exec.Command("git", "-C", root, "archive", rev)
	untar := exec.Command("tar", "-x", "-C", src)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return err
	}
	untar.Stdin = pipe
	var errb strings.Builder
	archive.Stderr, untar.Stderr = &errb, &errb
	if err := untar.Start(); err != nil {
		return err
	}
	if err := archive.Run(); err != nil {
		_ = untar.Wait()
		return fmt.Errorf("git archive %s: %w: %s", rev, err, errb.String())
	}
	if err := untar.Wait(); err != nil {
		return fmt.Errorf("extracting %s: %w: %s", rev, err, errb.String())
	}
	cmd := exec.Command("go", "build", "-tags="+Tags, "-o", out, AgentPkg)
	cmd.Dir = src
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build at %s: %w\n%s", rev, err, b)
	}
	return nil
}

// Build runs `go build` of pkg (relative to the module root, e.g. AgentPkg) into out at the
// module root, with the project's tags and o's additions; GOFLAGS from the environment
// apply too.
func Build(out, pkg string, o BuildOptions) error {
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	tags := strings.Join(append([]string{Tags}, o.Tags...), ",")
	args := append(append([]string{"build", "-tags=" + tags}, o.Flags...), "-o", out, pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), o.Env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, b)
	}
	return nil
}

// ModuleRoot is the nearest directory above the working directory holding go.mod.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
