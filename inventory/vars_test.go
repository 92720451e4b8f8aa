package inventory

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// writeTree creates files (path -> content) under a new temporary directory
// and returns it.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func mustLoad(t *testing.T, path string) *Inventory {
	t.Helper()
	inv, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	return inv
}

// TestGroupMergeOrder checks the order among inventory group vars: all,
// then by depth, then ansible_group_priority, then name.
func TestGroupMergeOrder(t *testing.T) {
	cases := []struct {
		name, ini, host, want string
	}{
		{"child beats parent beats all", "[all:vars]\nx=all\n[parent:children]\nchild\n[parent:vars]\nx=parent\n[child]\nh\n[child:vars]\nx=child\n", "h", "child"},
		{"parent beats all", "[all:vars]\nx=all\n[parent:children]\nchild\n[parent:vars]\nx=parent\n[child]\nh\n", "h", "parent"},
		{"same level: later name wins", "[b_group]\nh\n[b_group:vars]\nx=b\n[a_group]\nh\n[a_group:vars]\nx=a\n", "h", "b"},
		{"priority beats name", "[a_group]\nh\n[a_group:vars]\nx=a\nansible_group_priority=10\n[b_group]\nh\n[b_group:vars]\nx=b\n", "h", "a"},
		{"depth beats priority", "[p:children]\nc\n[p:vars]\nx=p\nansible_group_priority=100\n[c]\nh\n[c:vars]\nx=c\n", "h", "c"},
		{"depth is the longest path", "[a:children]\nb\n[b:children]\nc\n[z:children]\nc\n[c]\nh\n[z:vars]\nx=z\n[b:vars]\nx=b\n", "h", "b"},
		{"host var beats groups", "[g]\nh x=host\n[g:vars]\nx=g\n", "h", "host"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			inv := mustParse(t, "inv.ini", c.ini)
			v, _ := inv.Host(c.host).Var("x")
			if v != c.want {
				t.Errorf("x = %v, want %v", v, c.want)
			}
			if _, ok := inv.Host(c.host).Var("ansible_group_priority"); ok {
				t.Errorf("ansible_group_priority leaked into vars")
			}
		})
	}
}

// TestVarsDirPrecedence follows Ansible's documented order: inventory group
// vars < group_vars/all < group_vars/* < inventory host vars < host_vars/*.
func TestVarsDirPrecedence(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"inv/hosts": "[all:vars]\na=inv_all\nb=inv_all\n[child]\nh1 e=inv_host f=inv_host\nh2\n" +
			"[child:vars]\nb=inv_child\nc=inv_child\nd=inv_child\n",
		"inv/group_vars/all.yml":       "c: gv_all\nd: gv_all\n",
		"inv/group_vars/child.yml":     "d: gv_child\ne: gv_child\n",
		"inv/host_vars/h1.yaml":        "f: hv\n",
		"inv/host_vars/h2/one.yml":     "g: one\nh: one\n",
		"inv/host_vars/h2/two.json":    `{"h": "two"}`,
		"inv/host_vars/h2/.hidden":     "h: hidden\n",
		"inv/host_vars/h2/x.yml~":      "h: backup\n",
		"inv/host_vars/h2/sub/z":       "i: sub\n",
		"inv/host_vars/h2/notes.txt":   "not: vars\n",
		"inv/group_vars/child":         "shadow: bare file wins over child.yml\n",
		"inv/group_vars/nosuchgroup":   "x: 1\n",
		"inv/host_vars/nosuchhost.yml": "x: 1\n",
	})
	inv := mustLoad(t, filepath.Join(dir, "inv", "hosts"))
	want := map[string]any{
		"a":      "inv_all",   // only in inventory all
		"b":      "inv_child", // inventory child group beats inventory all
		"c":      "gv_all",    // group_vars/all beats inventory child group
		"d":      "gv_all",    // group_vars/child.yml is shadowed by group_vars/child
		"e":      "inv_host",  // inventory host var beats group_vars
		"f":      "hv",        // host_vars beats inventory host var
		"shadow": "bare file wins over child.yml",
	}
	if got := inv.Host("h1").Vars(); !reflect.DeepEqual(got, want) {
		t.Errorf("h1 vars:\n got %#v\nwant %#v", got, want)
	}
	h2 := inv.Host("h2").Vars()
	if h2["g"] != "one" || h2["h"] != "two" || h2["i"] != "sub" {
		t.Errorf("h2 vars from host_vars/h2/: %#v", h2)
	}
	if p, _ := inv.Host("h1").VarPos("f"); p != (Pos{filepath.Join(dir, "inv/host_vars/h1.yaml"), 1, 1}) {
		t.Errorf("f set at %v", p)
	}
	if p, _ := inv.Host("h1").VarPos("e"); p != (Pos{filepath.Join(dir, "inv/hosts"), 5, 4}) {
		t.Errorf("e set at %v", p)
	}
	warnings := strings.Join(inv.Warnings(), "\n")
	for _, w := range []string{"group_vars/nosuchgroup: matches no group", "host_vars/nosuchhost.yml: matches no host"} {
		if !strings.Contains(warnings, w) {
			t.Errorf("warnings %q lack %q", warnings, w)
		}
	}
	if got := inv.Group("child").Vars; got["shadow"] == nil || got["b"] != "inv_child" {
		t.Errorf("child group vars = %#v", got)
	}
}

func TestVarsDirGroupPriorityAmongFiles(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"hosts.yml":          "a_group:\n  hosts:\n    h:\n  vars:\n    ansible_group_priority: 10\nb_group:\n  hosts:\n    h:\n",
		"group_vars/a_group": "x: a\n",
		"group_vars/b_group": "x: b\n",
	})
	inv := mustLoad(t, filepath.Join(dir, "hosts.yml"))
	if v, _ := inv.Host("h").Var("x"); v != "a" {
		t.Errorf("x = %v, want a (a_group has the higher priority)", v)
	}
}

func TestVarsFileErrors(t *testing.T) {
	cases := []struct {
		file, content, want string
	}{
		{"group_vars/all.yml", "- a list\n", "group_vars/all.yml:1:1: bad vars file: variables must be a mapping, got a list"},
		{"group_vars/all.yml", "a: [\n", "group_vars/all.yml:1: syntax error: did not find expected node content"},
		{"host_vars/h.yml", "$ANSIBLE_VAULT;1.1;AES256\n6162\n", "host_vars/h.yml:1:1: bad vars file: Ansible Vault files are not supported"},
		{"host_vars/h.yml", "a: 1\na: 2\n", `host_vars/h.yml:2:1: syntax error: key "a" already defined at line 1`},
	}
	for _, c := range cases {
		dir := writeTree(t, map[string]string{"hosts": "h\n", c.file: c.content})
		_, err := Load(filepath.Join(dir, "hosts"))
		if err == nil || err.Error() != filepath.Join(dir, c.want) {
			t.Errorf("%s %q: error %v, want %s", c.file, c.content, err, c.want)
		}
	}
}

func TestLoadDirectory(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"01-hosts.yml":       "web:\n  hosts:\n    w1:\n",
		"02-more":            "[db]\nd1\n[web]\nw2\n",
		"sub/03-nested.yaml": "extra:\n  hosts:\n    e1:\n",
		"ignored.ini":        "[ini]\ni1\n",
		"README.md":          "# notes\n",
		".hidden":            "[hidden]\nx1\n",
		"group_vars/web.yml": "role: web\n",
	})
	inv := mustLoad(t, dir)
	if got := hostNames(inv.Hosts()); !reflect.DeepEqual(got, []string{"w1", "d1", "w2", "e1"}) {
		t.Errorf("hosts = %v", got)
	}
	if v, _ := inv.Host("w2").Var("role"); v != "web" {
		t.Errorf("w2 role = %v", v)
	}
	if w := strings.Join(inv.Warnings(), "\n"); !strings.Contains(w, "ignored.ini: skipped") {
		t.Errorf("warnings %q lack the skipped .ini", w)
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error = %v, want ErrNotExist", err)
	}
}
