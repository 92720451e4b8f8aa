package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// run is orch with args, its exit code and outputs.
func run(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// oneHostInventory writes a one-host inventory and returns the global flags that use it.
func oneHostInventory(t *testing.T) []string {
	t.Helper()
	dir := t.TempDir()
	inv := filepath.Join(dir, "inventory.ini")
	if err := os.WriteFile(inv, []byte("host1 ansible_host=127.0.0.1 node_name=n1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{"-i", inv, "--state-dir", filepath.Join(dir, "state")}
}

// TestImageProfileRemoteVerbs: the verbs exist with the agent CLI's names (alias add is
// alias create), and their local errors name the file, the stdin position or the member.
func TestImageProfileRemoteVerbs(t *testing.T) {
	parser, err := kong.New(&CLI{}, kong.Exit(func(int) {}))
	if err != nil {
		t.Fatal(err)
	}
	for cmd, args := range map[string][]string{
		"image import <tarball>":             {"image", "import", "x.tar", "--alias", "a", "--target", "n1"},
		"image alias create <name> <target>": {"image", "alias", "add", "a", "fp"},
		"profile edit <name>":                {"profile", "edit", "p"},
		"remote add <name> <url>":            {"remote", "add", "r", "https://example.invalid"},
		"remote list":                        {"remote", "list", "--format", "json"},
	} {
		kctx, err := parser.Parse(args)
		if err != nil {
			t.Errorf("orch %v: %v", args, err)
		} else if kctx.Command() != cmd {
			t.Errorf("orch %v: command %q, want %q", args, kctx.Command(), cmd)
		}
	}
	g := oneHostInventory(t)
	missing := filepath.Join(t.TempDir(), "nope.tar.xz")
	code, _, errb := run(t, "", append(g, "image", "import", missing, "--alias", "x")...)
	if code != 1 || !strings.Contains(errb, missing) {
		t.Errorf("import of a missing file: exit %d, %q", code, errb)
	}
	tarball := filepath.Join(t.TempDir(), "img.tar")
	if err := os.WriteFile(tarball, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errb = run(t, "", append(g, "image", "import", tarball, "--target", "n9")...)
	if code != 1 || !strings.Contains(errb, "--target n9") {
		t.Errorf("import to an unknown member: exit %d, %q", code, errb)
	}
	code, _, errb = run(t, "devices: [\n", append(g, "profile", "edit", "p1")...)
	if code != 1 || !strings.Contains(errb, "<stdin>") {
		t.Errorf("profile edit with bad YAML: exit %d, %q", code, errb)
	}
	code, _, errb = run(t, "name: p2\n", append(g, "profile", "edit", "p1")...)
	if code != 1 || !strings.Contains(errb, `"p2" differs from "p1"`) {
		t.Errorf("profile edit of another name: exit %d, %q", code, errb)
	}
}

// TestNegativeValues: `orch config set cluster.images_minimal_replica -1` (the guide's
// command) parses: it fails reaching the member (none runs here), not with "unknown flag".
func TestNegativeValues(t *testing.T) {
	g := oneHostInventory(t)
	for _, args := range [][]string{
		{"config", "set", "cluster.images_minimal_replica", "-1"},
		{"storage", "volume", "create", "p", "v", "size=1GiB", "--target", "n1"},
		{"exec", "c1", "--", "sh", "-c", "exit -1"},
	} {
		code, _, errb := run(t, "", append(g, args...)...)
		if code != 1 || strings.Contains(errb, "unknown flag") || !strings.Contains(errb, "no cluster member answered") {
			t.Errorf("orch %v: exit %d, %q", args, code, errb)
		}
	}
}
