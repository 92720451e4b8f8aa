package hostmods_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// ansibleCase is one task run by both ansible-playbook and orch on the same file.
type ansibleCase struct {
	before string // initial content of {{ d }}/fN ("" with absent: no file)
	absent bool
	task   string // module: {args}, with {{ f }} for the file
}

// ansibleCases cover the edge cases of the text-editing modules: the file each leaves, the
// changed flag and the message must be Ansible's, on a first and a second run.
var ansibleCases = []ansibleCase{
	{before: "a\nb\n", task: "lineinfile: {path: '{{ f }}', line: c}"},
	{before: "a\nb", task: "lineinfile: {path: '{{ f }}', line: c}"},
	{before: "a\nb\n", task: "lineinfile: {path: '{{ f }}', line: b}"},
	{before: "x=1\nx=2\n", task: "lineinfile: {path: '{{ f }}', regexp: '^x=', line: x=3}"},
	{before: "x=1\nx=2\n", task: "lineinfile: {path: '{{ f }}', regexp: '^x=', line: x=3, firstmatch: true}"},
	{before: "x=1\n", task: "lineinfile: {path: '{{ f }}', regexp: '^y=', line: y=1, insertbefore: '^x='}"},
	{before: "[a]\n[b]\n[a]\n", task: "lineinfile: {path: '{{ f }}', line: k, insertafter: '^\\[a\\]'}"},
	{before: "[a]\n[b]\n[a]\n", task: "lineinfile: {path: '{{ f }}', line: k, insertafter: '^\\[a\\]', firstmatch: true}"},
	{before: "[a]\nk\n", task: "lineinfile: {path: '{{ f }}', line: k, insertafter: '^\\[a\\]'}"},
	{before: "a\n", task: "lineinfile: {path: '{{ f }}', line: z, insertafter: nomatch}"},
	{before: "a\n", task: "lineinfile: {path: '{{ f }}', line: z, insertbefore: BOF}"},
	{before: "a\n", task: "lineinfile: {path: '{{ f }}', regexp: nomatch, line: z, backrefs: true}"},
	{before: "v=1 # c\n", task: "lineinfile: {path: '{{ f }}', regexp: '^v=(\\d+)(.*)$', line: 'v=\\g<1>0\\2', backrefs: true}"},
	{before: "a\nb\na\n", task: "lineinfile: {path: '{{ f }}', line: a, state: absent}"},
	{before: "foo bar\nbaz\n", task: "lineinfile: {path: '{{ f }}', search_string: 'o b', state: absent}"},
	{absent: true, task: "lineinfile: {path: '{{ f }}', line: new, create: true}"},
	{absent: true, task: "lineinfile: {path: '{{ f }}', line: new, state: absent}"},
	{before: "a\nb\n", task: "blockinfile: {path: '{{ f }}', block: 'x'}"},
	{before: "a\nb", task: "blockinfile: {path: '{{ f }}', block: \"x\\ny\", insertbefore: BOF}"},
	{before: "a\n# BEGIN ANSIBLE MANAGED BLOCK\nold\n# END ANSIBLE MANAGED BLOCK\nb\n", task: "blockinfile: {path: '{{ f }}', block: new}"},
	{before: "a\n# BEGIN ANSIBLE MANAGED BLOCK\nold\n# END ANSIBLE MANAGED BLOCK\nb\n", task: "blockinfile: {path: '{{ f }}', state: absent}"},
	{before: "a\n# BEGIN ANSIBLE MANAGED BLOCK\nold\n# END ANSIBLE MANAGED BLOCK\nb\n", task: "blockinfile: {path: '{{ f }}', block: ''}"},
	{before: "a\nb\nc\n", task: "blockinfile: {path: '{{ f }}', block: x, insertafter: '^b', marker: '<!-- {mark} -->', marker_begin: S, marker_end: E}"},
	{before: "a\nb\n", task: "blockinfile: {path: '{{ f }}', block: x, insertafter: 'nomatch'}"},
	{absent: true, task: "blockinfile: {path: '{{ f }}', block: x, create: true}"},
	{before: "a b\nab\n", task: "replace: {path: '{{ f }}', regexp: 'a(\\s*)b', replace: 'b\\1a'}"},
	{before: "x\n", task: "replace: {path: '{{ f }}', regexp: 'y', replace: z}"},
	{before: "1\nSTART\n1\nEND\n1\n", task: "replace: {path: '{{ f }}', regexp: '1', replace: '2', after: START, before: END}"},
	{before: "1\n", task: "replace: {path: '{{ f }}', regexp: '1', replace: '2', after: NOPE}"},
	{before: "[s]\na = 1\n", task: "ini_file: {path: '{{ f }}', section: s, option: a, value: '2'}"},
	{before: "[s]\na = 1\n", task: "ini_file: {path: '{{ f }}', section: s, option: b, value: '2'}"},
	{before: "[s]\n;a = 1\n\n[t]\n", task: "ini_file: {path: '{{ f }}', section: s, option: a, value: '2'}"},
	{before: "[s]\na=1\n", task: "ini_file: {path: '{{ f }}', section: s, option: a, value: '1', no_extra_spaces: true}"},
	{before: "top = 1\n[s]\na = 1\n", task: "ini_file: {path: '{{ f }}', section: null, option: top, value: '2'}"},
	{before: "[s]\na = 1\na = 2\n", task: "ini_file: {path: '{{ f }}', section: s, option: a, values: ['3', '2']}"},
	{before: "[s]\na = 1\n[t]\nb = 2\n", task: "ini_file: {path: '{{ f }}', section: s, state: absent}"},
	{before: "[s]\na = 1\nb = 2\n", task: "ini_file: {path: '{{ f }}', section: s, option: a, state: absent}"},
	{before: "[s]\na = 1\n", task: "ini_file: {path: '{{ f }}', section: t, option: flag, allow_no_value: true}"},
	{absent: true, task: "ini_file: {path: '{{ f }}', section: s, option: a, value: b}"},
	{before: "net.ipv4.ip_forward = 0\n# c\nkernel.x=1\nnet.ipv4.ip_forward=0\n", task: "sysctl: {name: net.ipv4.ip_forward, value: '1', sysctl_file: '{{ f }}', reload: false}"},
	{before: "a.b = 1\n", task: "sysctl: {name: a.b, value: '1', sysctl_file: '{{ f }}', reload: false}"},
	{before: "a.b = 1\nc = 2\n", task: "sysctl: {name: a.b, state: absent, sysctl_file: '{{ f }}', reload: false}"},
	{before: "SHELL=/bin/sh\n", task: "cron: {name: job, job: /bin/true, minute: '5', cron_file: '{{ f }}', user: root}"},
	{before: "#Ansible: job\n* * * * * root /bin/false\n", task: "cron: {name: job, job: /bin/true, hour: '2', cron_file: '{{ f }}', user: root}"},
	{before: "#Ansible: job\n* * * * * root /bin/false\nX=1\n", task: "cron: {name: job, cron_file: '{{ f }}', state: absent}"},
	{before: "", task: "cron: {name: job, job: /bin/true, special_time: daily, disabled: true, cron_file: '{{ f }}', user: root}"},
	{absent: true, task: "get_url: {url: '{{ url }}/a.txt', dest: '{{ f }}'}"},
	{before: "old\n", task: "get_url: {url: '{{ url }}/a.txt', dest: '{{ f }}', force: true}"},
	{before: "old\n", task: "get_url: {url: '{{ url }}/a.txt', dest: '{{ f }}', checksum: 'sha1:b01ddea55e77e8e2fb663fd4a406b8791a70464c'}"},
	{absent: true, task: "git: {repo: '{{ repo }}', dest: '{{ f }}'}"},
	{before: "x\n", task: "stat: {path: '{{ f }}'}"},
	{before: "x\n", task: "slurp: {src: '{{ f }}'}"},
	{before: "x\n", task: "uri: {url: '{{ url }}/a.txt', return_content: true}"},
	{before: "x\n", task: "uri: {url: '{{ url }}/none', status_code: [200, 201]}"},
	{before: "x\n", task: "find: {paths: '{{ d }}', patterns: 'f1*'}"},
	{before: "x\n", task: "getent: {database: passwd, key: root}"},
	{before: "x\n", task: "service_facts:"},
	{before: "x\n", task: "yum_repository: {name: epel, description: EPEL, baseurl: 'http://192.0.2.1/epel', gpgcheck: false, reposdir: '{{ d }}', file: '{{ f | basename }}'}"},
	{before: "x\n", task: "yum_repository: {name: epel, description: EPEL, baseurl: ['http://192.0.2.1/a', 'http://192.0.2.1/b'], gpgkey: 'http://192.0.2.1/k', exclude: [a, b], reposdir: '{{ d }}', file: '{{ f | basename }}', enabled: yes, priority: 10}"},
	{before: "x\n", task: "yum_repository: {name: epel, state: absent, reposdir: '{{ d }}', file: f57}"},
	{before: "x\n", task: "yum_repository: {name: epel, description: EPEL, reposdir: '{{ d }}'}"},
	{before: "x\n", task: "package_facts: {manager: auto}"},
	{before: "x\n", task: "pip: {name: orchdemo, virtualenv: '{{ f }}.venv', virtualenv_command: 'python3 -m venv', extra_args: '--no-index --find-links {{ wheels }}'}"},
	{before: "x\n", task: "getent: {database: passwd, key: no-such-user-orch}"},
	{before: "x\n", task: "getent: {database: passwd, key: no-such-user-orch, fail_key: false}"},
	{before: "x\n", task: "find: {paths: ['{{ d }}/nope', '{{ d }}'], file_type: directory}"},
}

// TestAgainstAnsible runs the same playbook (every case above, twice) with ansible-playbook
// (connection local) and with orch's engine and hostmods, each on its own copy of the
// files, and compares the files left, changed and msg of every task.
func TestAgainstAnsible(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: ansible-playbook takes minutes for these tasks")
	}
	ansible, err := exec.LookPath("ansible-playbook")
	if err != nil {
		t.Skip("ansible-playbook not installed (apt-get install ansible): nothing to compare with")
	}
	cases := ansibleCases
	if _, err := exec.LookPath("crontab"); err != nil {
		t.Log("crontab not installed: Ansible's cron module refuses to run, the cron cases are left out")
		cases = slices.DeleteFunc(slices.Clone(cases), func(c ansibleCase) bool { return strings.HasPrefix(c.task, "cron:") })
	}
	if _, err := exec.LookPath("curl"); err != nil {
		cases = slices.DeleteFunc(slices.Clone(cases), func(c ansibleCase) bool {
			return strings.HasPrefix(c.task, "get_url:") || strings.HasPrefix(c.task, "uri:")
		})
	}
	url := serve(t, map[string]string{"/a.txt": "served\n"})
	repo := t.TempDir()
	if out, err := exec.Command("sh", "-c", "cd "+repo+" && git init -q -b main && echo 1 > f && git add f && "+
		"git -c user.name=t -c user.email=t@t commit -qm one").CombinedOutput(); err != nil {
		t.Fatalf("making a repository: %v\n%s", err, out)
	}
	wheels := t.TempDir()
	writeWheel(t, wheels, "orchdemo", "1.0")
	pb := ansiblePlaybook(cases, map[string]string{"url": url, "repo": repo, "wheels": wheels})
	theirs, ours := t.TempDir(), newHarness(t)
	for _, dir := range []string{theirs, ours.dir} {
		for i, c := range cases {
			if !c.absent {
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d", i)), []byte(c.before), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := os.WriteFile(filepath.Join(theirs, "site.yml"), []byte(pb), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(ansible, "-i", "localhost,", "-c", "local", "-e", "d="+theirs, filepath.Join(theirs, "site.yml"))
	cmd.Env = append(os.Environ(), "ANSIBLE_NOCOLOR=1", "ANSIBLE_RETRY_FILES_ENABLED=0", "ANSIBLE_LOCALHOST_WARNING=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ansible-playbook: %v\n%s", err, out)
	}
	ours.playFile(pb)
	want, got := readResults(t, theirs), readResults(t, ours.dir)
	for i, c := range cases {
		for pass := range 2 {
			k := fmt.Sprintf("%d.%d", i, pass)
			// Python prints True where the engine prints true: not these modules' business.
			if !strings.EqualFold(want[k], got[k]) {
				t.Errorf("case %d %s, run %d:\n ansible: %s\n    orch: %s", i, c.task, pass+1, want[k], got[k])
			}
		}
		for _, name := range []string{fmt.Sprintf("f%d", i), fmt.Sprintf("f%d.repo", i)} {
			a, errA := os.ReadFile(filepath.Join(theirs, name))
			b, errB := os.ReadFile(filepath.Join(ours.dir, name))
			if string(a) != string(b) || (errA == nil) != (errB == nil) {
				t.Errorf("case %d %s: %s\n ansible: %q\n    orch: %q", i, c.task, name, a, b)
			}
		}
	}
}

// ansiblePlaybook is every case twice, each registered, then a file of results.
func ansiblePlaybook(cases []ansibleCase, vars map[string]string) string {
	var b strings.Builder
	b.WriteString("- hosts: all\n  gather_facts: false\n  vars:\n")
	for k, v := range vars {
		fmt.Fprintf(&b, "    %s: %q\n", k, v)
	}
	b.WriteString("  tasks:\n")
	var keys []string
	for pass := range 2 {
		for i, c := range cases {
			fmt.Fprintf(&b, "    - %s\n      vars: {f: '{{ d }}/f%d'}\n      register: r%d_%d\n      ignore_errors: true\n", c.task, i, i, pass)
			keys = append(keys, fmt.Sprintf("'%d.%d': (r%d_%d.changed | string) ~ ' ' ~ (r%d_%d.failed | default(false) | string) ~ ' ' ~ (r%d_%d.msg | default(''))", i, pass, i, pass, i, pass, i, pass))
		}
	}
	fmt.Fprintf(&b, "    - copy: {dest: '{{ d }}/results.json', content: \"{{ {%s} | to_json }}\"}\n", strings.Join(keys, ", "))
	return b.String()
}

func readResults(t *testing.T, dir string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s: %v", data, err)
	}
	return m
}
