package playbooks

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestGoldenOutput runs testdata/golden/site.yml on four hosts (one
// unreachable) with one fork, so that output order is fixed, and compares
// the terminal and JSON reports with the golden files.
func TestGoldenOutput(t *testing.T) {
	pb, err := Load("testdata/golden/site.yml")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, "alpha", "beta", "gamma", "delta")
	h.conn.down["delta"] = true
	var text, js bytes.Buffer
	jr := NewJSONReporter(&js)
	opts := h.options()
	opts.Forks = 1
	opts.Reporter = MultiReporter(NewTextReporter(&text, TextOptions{}), jr)
	recap, err := Run(context.Background(), pb, opts)
	if err != nil {
		t.Fatal(err)
	}
	if jr.Err() != nil {
		t.Fatal(jr.Err())
	}
	if got := ExitCode(recap, nil); got != ExitUnreachable {
		t.Errorf("exit code %d, want 4", got)
	}
	golden(t, "testdata/golden/site.txt", text.Bytes())
	golden(t, "testdata/golden/site.json", js.Bytes())
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test -run Golden -update to accept):\n%s", filepath.Base(path), got)
	}
}
