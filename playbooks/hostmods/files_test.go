package hostmods_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"orch/playbooks"
)

// TestLineinfile: each of Ansible's documented uses converges (--check honest, changed once,
// then ok) to the content ansible's lineinfile writes, and --diff shows before/after.
func TestLineinfile(t *testing.T) {
	cases := []struct {
		name, before, task, want, msg string
	}{
		{"replace by regexp", "SELINUX=enforcing\nother=1\n",
			"lineinfile: {path: '{{ d }}/f', regexp: '^SELINUX=', line: SELINUX=disabled}",
			"SELINUX=disabled\nother=1\n", "line replaced"},
		{"append when absent", "a\nb", "lineinfile: {path: '{{ d }}/f', line: c}", "a\nb\nc\n", "line added"},
		{"insertafter the last match", "[x]\nk=1\n[y]\nk=2\n",
			"lineinfile: {path: '{{ d }}/f', line: new, insertafter: '^\\[x\\]'}", "[x]\nnew\nk=1\n[y]\nk=2\n", "line added"},
		{"insertbefore BOF", "a\n", "lineinfile: {path: '{{ d }}/f', line: first, insertbefore: BOF}", "first\na\n", "line added"},
		{"backrefs", "#port = 80\n",
			"lineinfile: {path: '{{ d }}/f', regexp: '^#?(port) = \\d+$', line: '\\g<1> = 8080', backrefs: true}", "port = 8080\n", "line replaced"},
		{"absent by regexp", "keep\n#drop1\n#drop2\n", "lineinfile: {path: '{{ d }}/f', regexp: '^#', state: absent}", "keep\n", "2 line(s) removed"},
		{"search_string", "Listen 80\n", "lineinfile: {path: '{{ d }}/f', search_string: 'Listen 80', line: 'Listen 8080'}", "Listen 8080\n", "line replaced"},
		{"create", "", "lineinfile: {path: '{{ d }}/sub/new', line: hello, create: true, mode: '0600'}", "hello\n", "line added"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			file := "f"
			if c.before != "" {
				h.write("f", c.before)
			} else {
				file = "sub/new"
			}
			first := h.converge(c.task)
			if got := h.read(file); got != c.want {
				t.Errorf("content %q, want %q", got, c.want)
			}
			if first.res.Msg != c.msg {
				t.Errorf("msg %q, want %q", first.res.Msg, c.msg)
			}
			if c.before != "" && !strings.Contains(first.res.Diff, "--- before: ") {
				t.Errorf("no diff: %q", first.res.Diff)
			}
		})
	}
	t.Run("mode only", func(t *testing.T) {
		h := newHarness(t)
		h.write("f", "x\n")
		first := h.converge("lineinfile: {path: '{{ d }}/f', line: x, mode: '0600'}")
		if fi, _ := os.Stat(filepath.Join(h.dir, "f")); fi.Mode().Perm() != 0o600 {
			t.Errorf("mode %v", fi.Mode())
		}
		if !strings.Contains(first.res.Msg, "ownership, perms") {
			t.Errorf("msg %q", first.res.Msg)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		h := newHarness(t)
		o := h.run("lineinfile: {path: '{{ d }}/nope', line: x}", false, false)
		if o.status != playbooks.StatusFailed || !strings.Contains(o.res.Msg, "does not exist") {
			t.Errorf("status %s msg %q", o.status, o.res.Msg)
		}
	})
	t.Run("validate refuses", func(t *testing.T) {
		h := newHarness(t)
		h.write("f", "ok\n")
		o := h.run(`lineinfile: {path: '{{ d }}/f', line: bad, validate: 'test "$(grep -c bad %s)" = 0'}`, false, false)
		if o.status != playbooks.StatusFailed || !strings.Contains(o.res.Msg, "failed to validate") {
			t.Errorf("status %s msg %q", o.status, o.res.Msg)
		}
		if got := h.read("f"); got != "ok\n" {
			t.Errorf("file changed despite validation failure: %q", got)
		}
	})
	t.Run("backup", func(t *testing.T) {
		h := newHarness(t)
		h.write("f", "a\n")
		o := h.run("lineinfile: {path: '{{ d }}/f', line: b, backup: true}", false, false)
		bk, _ := o.res.Data["backup"].(string)
		if b, err := os.ReadFile(bk); err != nil || string(b) != "a\n" {
			t.Errorf("backup %q: %q %v", bk, b, err)
		}
	})
}

// TestBlockinfile: a block is inserted with its markers, replaced in place when it changes,
// and removed with state=absent.
func TestBlockinfile(t *testing.T) {
	h := newHarness(t)
	h.write("f", "head\ntail\n")
	first := h.converge("blockinfile: {path: '{{ d }}/f', block: \"one\\ntwo\", insertafter: '^head'}")
	want := "head\n# BEGIN ANSIBLE MANAGED BLOCK\none\ntwo\n# END ANSIBLE MANAGED BLOCK\ntail\n"
	if got := h.read("f"); got != want || first.res.Msg != "Block inserted" {
		t.Fatalf("content %q msg %q", got, first.res.Msg)
	}
	h.converge("blockinfile: {path: '{{ d }}/f', block: three, marker: '# {mark} X'}")
	if got := h.read("f"); !strings.HasSuffix(got, "# BEGIN X\nthree\n# END X\n") {
		t.Fatalf("second block: %q", got)
	}
	h.converge("blockinfile: {path: '{{ d }}/f', block: three2, marker: '# {mark} X'}")
	if got := h.read("f"); strings.Count(got, "# BEGIN X") != 1 || !strings.Contains(got, "three2") {
		t.Fatalf("block not replaced in place: %q", got)
	}
	h.converge("blockinfile: {path: '{{ d }}/f', state: absent}")
	if got := h.read("f"); got != "head\ntail\n# BEGIN X\nthree2\n# END X\n" {
		t.Fatalf("after absent: %q", got)
	}
}

// TestReplace: Python backreferences, the after/before window, the count message.
func TestReplace(t *testing.T) {
	h := newHarness(t)
	h.write("f", "host=a.old\n[s]\nhost=b.old\nhost=c.old\n[t]\nhost=d.old\n")
	first := h.converge("replace: {path: '{{ d }}/f', regexp: '^host=(\\w+)\\.old$', replace: 'host=\\1.new', after: '\\[s\\]', before: '\\[t\\]'}")
	if got := h.read("f"); got != "host=a.old\n[s]\nhost=b.new\nhost=c.new\n[t]\nhost=d.old\n" {
		t.Fatalf("content %q", got)
	}
	if first.res.Msg != "2 replacements made" {
		t.Errorf("msg %q", first.res.Msg)
	}
}

// TestIniFile: options set in an existing section, a new section appended, a commented-out
// option reused, an option removed.
func TestIniFile(t *testing.T) {
	h := newHarness(t)
	h.write("f.ini", "[main]\n# debug = true\nname = x\n\n[other]\nk = v\n")
	h.converge("ini_file: {path: '{{ d }}/f.ini', section: main, option: debug, value: 'false'}")
	h.converge("ini_file: {path: '{{ d }}/f.ini', section: main, option: name, value: y}")
	first := h.converge("ini_file: {path: '{{ d }}/f.ini', section: new, option: a, value: '1', no_extra_spaces: true}")
	if first.res.Msg != "section and option added" {
		t.Errorf("msg %q", first.res.Msg)
	}
	h.converge("ini_file: {path: '{{ d }}/f.ini', section: other, option: k, state: absent}")
	want := "[main]\ndebug = false\nname = y\n\n[other]\n[new]\na=1\n"
	if got := h.read("f.ini"); got != want {
		t.Fatalf("content:\n%s\nwant:\n%s", got, want)
	}
}

// TestStatSlurpFetch: stat and slurp report without changing anything; fetch copies to
// dest/HOST/path once.
func TestStatSlurpFetch(t *testing.T) {
	h := newHarness(t)
	p := h.write("data.txt", "hello\n")
	if err := os.Symlink(p, filepath.Join(h.dir, "link")); err != nil {
		t.Fatal(err)
	}
	o := h.run("stat: {path: '{{ d }}/data.txt'}", false, false)
	st, _ := o.res.Data["stat"].(map[string]any)
	if o.status != playbooks.StatusOK || st["exists"] != true || st["isreg"] != true || st["size"] != int64(6) ||
		st["mode"] != "0644" || st["checksum"] != "f572d396fae9206628714fb2ce00f72e94f2258f" {
		t.Errorf("stat: %s %v", o.status, st)
	}
	o = h.run("stat: {path: '{{ d }}/link'}", false, false)
	if st, _ := o.res.Data["stat"].(map[string]any); st["islnk"] != true || st["lnk_source"] != p {
		t.Errorf("stat of a link: %v", st)
	}
	o = h.run("stat: {path: '{{ d }}/none'}", true, false)
	if st, _ := o.res.Data["stat"].(map[string]any); st["exists"] != false || o.status != playbooks.StatusOK {
		t.Errorf("stat of nothing: %s %v", o.status, st)
	}
	o = h.run("slurp: {src: '{{ d }}/data.txt'}", false, false)
	if o.res.Data["content"] != "aGVsbG8K" || o.res.Data["encoding"] != "base64" {
		t.Errorf("slurp: %v", o.res.Data)
	}
	first := h.converge("fetch: {src: '{{ d }}/data.txt', dest: '{{ d }}/fetched'}")
	dest := filepath.Join(h.dir, "fetched", "h1", p)
	if b, err := os.ReadFile(dest); err != nil || string(b) != "hello\n" || first.res.Data["dest"] != dest {
		t.Errorf("fetched %s: %q %v (%v)", dest, b, err, first.res.Data)
	}
	o = h.run("fetch: {src: '{{ d }}/none', dest: '{{ d }}/x', flat: true}", false, false)
	if o.status != playbooks.StatusFailed {
		t.Errorf("fetch of a missing file: %s", o.status)
	}
}

// TestOneCommandWhenConverged: on a host already in the state asked, each module runs one
// command (its probe); a run that changes the host runs one more.
func TestOneCommandWhenConverged(t *testing.T) {
	for _, task := range []string{
		"lineinfile: {path: '{{ d }}/f', line: a, mode: '0644'}",
		"blockinfile: {path: '{{ d }}/f', block: b}",
		"replace: {path: '{{ d }}/f', regexp: '^a$', replace: a}",
		"ini_file: {path: '{{ d }}/f', section: s, option: o, value: v}",
		"stat: {path: '{{ d }}/f'}",
		"cron: {name: j, job: /bin/true, user: root, cron_file: '{{ d }}/c'}",
		"sysctl: {name: vm.swappiness, value: '10', sysctl_file: '{{ d }}/s', reload: false}",
		"mount: {path: /mnt/x, src: tmpfs, fstype: tmpfs, state: present, fstab: '{{ d }}/fstab'}",
	} {
		h := newHarness(t)
		h.write("f", "a\n")
		o := h.run(task, false, false)
		want := int64(map[bool]int{true: 2, false: 1}[o.status == playbooks.StatusChanged])
		if n := h.runs.Load(); n != want {
			t.Errorf("%s: %d commands for a %s run, want %d", task, n, o.status, want)
		}
		before := h.runs.Load()
		h.run(task, false, false)
		if n := h.runs.Load() - before; n != 1 {
			t.Errorf("%s: %d commands on a converged host, want 1", task, n)
		}
	}
}

// BenchmarkConvergedLineinfile is one play of one converged lineinfile task through the
// engine on this machine's sh: the engine's per-task cost plus one command.
func BenchmarkConvergedLineinfile(b *testing.B) {
	h := &harness{t: b, dir: b.TempDir(), runs: &atomic.Int64{}, limit: time.Minute}
	h.write("f", "a\n")
	b.ResetTimer()
	for range b.N {
		if o := h.run("lineinfile: {path: '{{ d }}/f', line: a}", false, false); o.status != playbooks.StatusOK {
			b.Fatalf("status %s\n%s", o.status, o.out)
		}
	}
}

// TestEditThroughLink: editing a symbolic link edits its target and keeps the link, as
// Ansible (which writes to the realpath) does.
func TestEditThroughLink(t *testing.T) {
	h := newHarness(t)
	target := h.write("target", "a\n")
	if err := os.Symlink(target, filepath.Join(h.dir, "link")); err != nil {
		t.Fatal(err)
	}
	h.converge("lineinfile: {path: '{{ d }}/link', line: b}")
	if fi, err := os.Lstat(filepath.Join(h.dir, "link")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v %v", fi.Mode(), err)
	}
	if got := h.read("target"); got != "a\nb\n" {
		t.Errorf("target %q", got)
	}
}

// TestMountFstab: state=present only writes the fstab entry (a file here), replacing the
// line of the same mount point; absent removes it.
func TestMountFstab(t *testing.T) {
	h := newHarness(t)
	h.write("fstab", "# static\nUUID=1 / ext4 defaults 0 1\ntmpfs /mnt/x tmpfs size=1m 0 0\n")
	h.converge("mount: {path: /mnt/x, src: tmpfs, fstype: tmpfs, opts: size=2m, state: present, fstab: '{{ d }}/fstab'}")
	h.converge("mount: {path: /mnt/y z, src: /dev/sdb1, fstype: ext4, state: present, boot: false, fstab: '{{ d }}/fstab'}")
	want := "# static\nUUID=1 / ext4 defaults 0 1\ntmpfs /mnt/x tmpfs size=2m 0 0\n/dev/sdb1 /mnt/y\\040z ext4 noauto 0 0\n"
	if got := h.read("fstab"); got != want {
		t.Fatalf("fstab %q, want %q", got, want)
	}
	h.converge("mount: {path: /mnt/x, state: absent_from_fstab, fstab: '{{ d }}/fstab'}")
	if got := h.read("fstab"); strings.Contains(got, "/mnt/x") {
		t.Fatalf("fstab %q", got)
	}
}
