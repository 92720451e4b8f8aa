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

// agentPkg is the nodeagent main package, relative to the module root.
const agentPkg = "./nodeagent/cmd/nodeagent"

// bin is the nodeagent binary under test and binDir the directory Main removes at the
// end; both are set by Main before any test runs and only read afterwards.
var bin, binDir string

// Main is a TestMain body: it makes a directory for binaries, builds nodeagent there once
// (unless $NODEAGENT_BIN names one), runs the tests and removes the directory. It returns
// the exit code for os.Exit.
func Main(m *testing.M) int {
	dir, err := os.MkdirTemp("", "nodeagent-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "agenttest:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	if b := os.Getenv("NODEAGENT_BIN"); b != "" {
		bin = b
		return m.Run()
	}
	bin = filepath.Join(dir, "nodeagent")
	if err := BuildAgent(bin); err != nil {
		fmt.Fprintln(os.Stderr, "agenttest: building nodeagent:", err)
		return 1
	}
	return m.Run()
}

// Bin is the nodeagent binary under test (built by Main).
func Bin() string { return bin }

// BinDir is a directory for binaries a test builds on demand, removed when Main returns.
func BinDir() string { return binDir }

// BuildAgent builds nodeagent into out with the project's tags plus extraTags (e.g.
// schemav2 for the upgraded binary of upgrade tests, a mutation's tag).
func BuildAgent(out string, extraTags ...string) error { return Build(out, agentPkg, extraTags...) }

// Build runs `go build -o out pkg` at the module root with the project's tags plus
// extraTags; GOFLAGS from the environment apply too.
func Build(out, pkg string, extraTags ...string) error {
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	tags := strings.Join(append([]string{Tags}, extraTags...), ",")
	cmd := exec.Command("go", "build", "-tags="+tags, "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s (tags %s): %w\n%s", pkg, tags, err, b)
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
