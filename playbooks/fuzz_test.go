package playbooks

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that Parse never panics and that every error it returns
// is a *ParseError with a position.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/parse/*.yml")
	golden, _ := filepath.Glob("testdata/golden/*.yml")
	for _, path := range append(seeds, golden...) {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("- hosts: all\n  tasks:\n    - debug: msg={{ x | default( }}\n"))
	f.Add([]byte("- hosts: all\n  tasks: [{block: [{debug: {}}], rescue: 1}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pb, err := Parse("fuzz.yml", data)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Pos.Line <= 0 || !errors.Is(err, ErrParse) {
				t.Fatalf("error without a position: %v", err)
			}
			return
		}
		if err := Validate(pb, nil); err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Pos.Line <= 0 {
				t.Fatalf("validation error without a position: %v", err)
			}
		}
	})
}
