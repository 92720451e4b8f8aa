package inventory

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// addFileSeeds adds every file matching glob as a seed.
func addFileSeeds(f *testing.F, glob string) {
	files, err := filepath.Glob(glob)
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// checkLocated fails unless err is an *Error with a line or a subject.
func checkLocated(t *testing.T, err error) {
	t.Helper()
	var ie *Error
	if !errors.As(err, &ie) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	if ie.Pos.Line == 0 && ie.Subject == "" {
		t.Fatalf("error %q has neither a line nor a subject", err)
	}
}

// exercise runs everything a loaded inventory offers; none of it may panic
// and every accessor error must be located.
func exercise(t *testing.T, inv *Inventory) {
	if _, err := inv.ListJSON(); err != nil {
		t.Fatalf("ListJSON: %v", err)
	}
	if _, err := inv.Graph(""); err != nil {
		t.Fatalf("Graph: %v", err)
	}
	if _, _, err := inv.Select("all:!ungrouped"); err != nil {
		t.Fatalf("Select: %v", err)
	}
	for _, h := range inv.Hosts() {
		if _, err := h.Connection(); err != nil {
			checkLocated(t, err)
		}
		if _, err := h.Agent(); err != nil {
			checkLocated(t, err)
		}
	}
}

func FuzzINI(f *testing.F) {
	addFileSeeds(f, "testdata/basic/hosts.ini")
	addFileSeeds(f, "testdata/fuzz-seeds/*.ini")
	f.Add([]byte(patternInventory))
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := ParseINI("fuzz.ini", data)
		if err != nil {
			checkLocated(t, err)
			return
		}
		exercise(t, inv)
	})
}

func FuzzYAML(f *testing.F) {
	addFileSeeds(f, "testdata/cluster/hosts.yml")
	addFileSeeds(f, "testdata/fuzz-seeds/*.yml")
	f.Add([]byte(yamlInventory))
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := ParseYAML("fuzz.yml", data)
		if err != nil {
			checkLocated(t, err)
			return
		}
		exercise(t, inv)
	})
}

func FuzzPattern(f *testing.F) {
	for _, p := range []string{"all", "*", "web:db", "app:&staging:!web1", "~(web|db)[12]", "web[0]", "web[-1]",
		"web[1:]", "web[0:1]", "*.example.com", "[!w]*", "2001:db8::1", "web1:22", "!web", "&", "~[", "web[1-2]"} {
		f.Add(p)
	}
	inv, err := Parse("inv.ini", []byte(patternInventory))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, pattern string) {
		hosts, _, err := inv.Select(pattern)
		if err != nil {
			checkLocated(t, err)
			if !errors.Is(err, ErrBadPattern) {
				t.Fatalf("error %v does not wrap ErrBadPattern", err)
			}
			return
		}
		if strings.Contains(pattern, "@") {
			return // @FILE would read arbitrary files
		}
		if _, _, err := inv.Limit(hosts, pattern); err != nil {
			t.Fatalf("Limit failed where Select worked: %v", err)
		}
	})
}
