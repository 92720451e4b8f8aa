package inventory

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const patternInventory = `
[web]
web1
web2
web3
[db]
db1
db2
[staging]
web3
db2
[lb]
lb.example.com
[app:children]
web
db
[v6]
2001:db8::1
[empty]
`

func TestSelect(t *testing.T) {
	inv := mustParse(t, "inv.ini", patternInventory)
	cases := []struct {
		pattern string
		want    []string
		warning string
	}{
		// Ansible's "all" is the all group's hosts: its children level by
		// level (staging, lb, v6 and app are its children; web and db one
		// level down), not the order of the file.
		{"all", []string{"web3", "db2", "lb.example.com", "2001:db8::1", "web1", "web2", "db1"}, ""},
		{"*", []string{"web3", "db2", "lb.example.com", "2001:db8::1", "web1", "web2", "db1"}, ""},
		{"web", []string{"web1", "web2", "web3"}, ""},
		{"web:db", []string{"web1", "web2", "web3", "db1", "db2"}, ""},
		{"web,db", []string{"web1", "web2", "web3", "db1", "db2"}, ""},
		{" db , web ", []string{"db1", "db2", "web1", "web2", "web3"}, ""},
		{"app:&staging", []string{"web3", "db2"}, ""},
		{"app:!staging", []string{"web1", "web2", "db1"}, ""},
		{"!staging:web", []string{"web1", "web2"}, ""},
		{"!staging", []string{"lb.example.com", "2001:db8::1", "web1", "web2", "db1"}, ""},
		{"&web", []string{"web3", "web1", "web2"}, ""},
		{"web:&db", nil, ""},
		{"web*", []string{"web1", "web2", "web3"}, ""},
		{"*.example.com", []string{"lb.example.com"}, ""},
		{"db?", []string{"db1", "db2"}, ""},
		{"web[!3]", []string{"web1", "web2"}, ""},
		{"~web[12]", []string{"web1", "web2"}, ""},
		{"~(web|db)1", []string{"web1", "db1"}, ""},
		{"~db", []string{"db1", "db2"}, ""},
		{"web[0]", []string{"web1"}, ""},
		{"web[-1]", []string{"web3"}, ""},
		{"web[0:1]", []string{"web1", "web2"}, ""},
		{"web[1:]", []string{"web2", "web3"}, ""},
		{"web[1:0]", []string{"web2"}, ""},
		{"app[1:3]:lb", []string{"web2", "web3", "db1", "lb.example.com"}, ""},
		{"web[1-2]", []string{"web2", "web3"}, "Use [x:y] inclusive subscripts"},
		{"web1", []string{"web1"}, ""},
		{"db2,web1", []string{"db2", "web1"}, ""},
		{"2001:db8::1", []string{"2001:db8::1"}, ""},
		{"empty", nil, ""},
		{"ungrouped", nil, ""},
		{"nope", nil, "Could not match supplied host pattern, ignoring: nope"},
		{"web:nope", []string{"web1", "web2", "web3"}, "Could not match supplied host pattern, ignoring: nope"},
		{"nope*", nil, "Could not match supplied host pattern, ignoring: nope*"},
	}
	for _, c := range cases {
		hosts, warnings, err := inv.Select(c.pattern)
		if err != nil {
			t.Errorf("Select(%q): %v", c.pattern, err)
			continue
		}
		var got []string
		if hosts != nil {
			got = hostNames(hosts)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("Select(%q) = %v, want %v", c.pattern, got, c.want)
		}
		w := strings.Join(warnings, "\n")
		if (c.warning == "") != (w == "") || !strings.Contains(w, c.warning) {
			t.Errorf("Select(%q) warnings = %q, want %q", c.pattern, w, c.warning)
		}
	}
}

func TestSelectErrors(t *testing.T) {
	inv := mustParse(t, "inv.ini", patternInventory)
	cases := map[string]string{
		"":          `pattern "": invalid host pattern: empty pattern`,
		"web[3]":    `pattern "web[3]": invalid host pattern: no hosts matched the subscript [3] (3 hosts)`,
		"web[-4]":   `pattern "web[-4]": invalid host pattern: no hosts matched the subscript [-4] (3 hosts)`,
		"~web(":     "pattern \"~web(\": invalid host pattern: error parsing regexp: missing closing ): `^(?:web()`",
		"web:!":     `pattern "!": invalid host pattern: empty term`,
		"web[z-a]x": "pattern \"web[z-a]x\": invalid host pattern: error parsing regexp: invalid character class range: `z-a`",
	}
	for pattern, want := range cases {
		_, _, err := inv.Select(pattern)
		if err == nil || err.Error() != want {
			t.Errorf("Select(%q) error = %v, want %s", pattern, err, want)
		}
		if !errors.Is(err, ErrBadPattern) {
			t.Errorf("Select(%q) error %v does not wrap ErrBadPattern", pattern, err)
		}
	}
}

func TestLimit(t *testing.T) {
	inv := mustParse(t, "inv.ini", patternInventory)
	app, _, _ := inv.Select("app")
	file := filepath.Join(t.TempDir(), "retry")
	if err := os.WriteFile(file, []byte("db1\n\n  web2  \nghost\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		limit   string
		want    []string
		warning string
	}{
		{"", []string{"web1", "web2", "web3", "db1", "db2"}, ""},
		{"staging", []string{"web3", "db2"}, ""},
		{"db2,web1", []string{"web1", "db2"}, ""},
		{"!web", []string{"db1", "db2"}, ""},
		{"lb", nil, ""},
		{"@" + file, []string{"web2", "db1"}, "ignoring: ghost"},
		{"@" + file + ",web3", []string{"web2", "web3", "db1"}, "ignoring: ghost"},
	}
	for _, c := range cases {
		hosts, warnings, err := inv.Limit(app, c.limit)
		if err != nil {
			t.Errorf("Limit(%q): %v", c.limit, err)
			continue
		}
		var got []string
		if hosts != nil {
			got = hostNames(hosts)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("Limit(%q) = %v, want %v", c.limit, got, c.want)
		}
		if w := strings.Join(warnings, "\n"); !strings.Contains(w, c.warning) || (c.warning == "") != (w == "") {
			t.Errorf("Limit(%q) warnings = %q, want %q", c.limit, w, c.warning)
		}
	}
	_, _, err := inv.Limit(app, "@"+filepath.Join(t.TempDir(), "missing"))
	if !errors.Is(err, ErrBadPattern) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing limit file error = %v", err)
	}
}

func TestGlobToRegexp(t *testing.T) {
	cases := []struct {
		glob, name string
		match      bool
	}{
		{"web*", "web12", true},
		{"web*", "aweb", false},
		{"*.example.com", "a.example.com", true},
		{"*.example.com", "a.exampleXcom", false},
		{"w?b", "web", true},
		{"[ab]x", "bx", true},
		{"[!ab]x", "bx", false},
		{"[]]x", "]x", true},
		{"[x", "[x", true},
		{"a.b", "aXb", false},
		{"[^a]", "^", true},
		{`[\]`, `\`, true},
	}
	for _, c := range cases {
		re, err := compileTerm(c.glob)
		if err != nil {
			t.Errorf("compileTerm(%q): %v", c.glob, err)
			continue
		}
		if got := re.MatchString(c.name); got != c.match {
			t.Errorf("glob %q on %q = %v, want %v (regexp %s)", c.glob, c.name, got, c.match, re)
		}
	}
}

// A loaded inventory is read-only: concurrent use is safe (run with -race).
func TestConcurrentReads(t *testing.T) {
	inv := mustLoad(t, "testdata/cluster/hosts.yml")
	done := make(chan error)
	for range 4 {
		go func() {
			var err error
			for range 50 {
				if _, _, err = inv.Select("cluster:!node1"); err != nil {
					break
				}
				for _, h := range inv.Hosts() {
					h.Vars()["mutated"] = true // a copy: must not leak
					if _, err = h.Connection(); err != nil {
						break
					}
				}
				if _, err = inv.ListJSON(); err != nil {
					break
				}
			}
			done <- err
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	if _, ok := inv.Host("node1").Var("mutated"); ok {
		t.Error("Vars() returned the inventory's own map")
	}
}
