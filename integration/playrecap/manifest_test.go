package playrecap

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// labPlaybook is one `run` line of the manifest: a corpus playbook, the groups of its
// generated inventory and its extra-vars file.
type labPlaybook struct {
	path   string              // relative to the corpus
	groups map[string][]string // group → inventory host names (node1, node2, ...)
	hosts  []string            // every inventory host, in order
	vars   string              // extra-vars file relative to the corpus, or ""
}

// manifest is playbooks/testdata/corpus/LAB: which corpus playbooks run on lab hosts, with
// what, which do not and why, and the known causes of differences.
type manifest struct {
	run   []labPlaybook
	skip  map[string]string // playbook → why the lab cannot run it
	known map[string]string // playbook → cause of a known recap difference
}

// readManifest parses the manifest. Lines:
//
//	run PLAYBOOK GROUPS [VARS]   GROUPS is group=h1,h2;group2=h1 (every host is also in all)
//	skip PLAYBOOK REASON...
//	known PLAYBOOK CAUSE...
func readManifest(path string) (manifest, error) {
	m := manifest{skip: map[string]string{}, known: map[string]string{}}
	f, err := os.Open(path)
	if err != nil {
		return m, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := m.add(line); err != nil {
			return m, fmt.Errorf("%s:%d: %w", path, n, err)
		}
	}
	return m, sc.Err()
}

func (m *manifest) add(line string) error {
	f := strings.Fields(line)
	if len(f) < 3 {
		return fmt.Errorf("%q: want KIND PLAYBOOK ARGS", line)
	}
	rest := strings.Join(f[2:], " ")
	switch f[0] {
	case "skip":
		m.skip[f[1]] = rest
	case "known":
		m.known[f[1]] = rest
	case "run":
		p, err := parseRun(f[1:])
		if err != nil {
			return err
		}
		m.run = append(m.run, p)
	default:
		return fmt.Errorf("unknown kind %q (run, skip, known)", f[0])
	}
	return nil
}

func parseRun(f []string) (labPlaybook, error) {
	p := labPlaybook{path: f[0], groups: map[string][]string{}}
	if len(f) > 3 {
		return p, fmt.Errorf("run %s: too many fields", f[0])
	}
	if len(f) == 3 {
		p.vars = f[2]
	}
	for _, g := range strings.Split(f[1], ";") {
		name, hosts, ok := strings.Cut(g, "=")
		if !ok || name == "" || hosts == "" {
			return p, fmt.Errorf("run %s: groups %q: want group=host,host;...", f[0], f[1])
		}
		for _, h := range strings.Split(hosts, ",") {
			p.groups[name] = append(p.groups[name], h)
			if !slices.Contains(p.hosts, h) {
				p.hosts = append(p.hosts, h)
			}
		}
	}
	return p, nil
}

// inventory is the YAML inventory of p with each host at addrs[i] (p.hosts order): YAML
// because some repositories' ansible.cfg enable only the yaml inventory plugin.
func (p labPlaybook) inventory(addrs []string, key string) string {
	var b strings.Builder
	b.WriteString("all:\n  hosts:\n")
	for i, h := range p.hosts {
		fmt.Fprintf(&b, "    %s: {ansible_host: %s, ansible_user: root, ansible_ssh_private_key_file: %s, ansible_python_interpreter: /usr/bin/python3}\n", h, addrs[i], key)
	}
	groups := make([]string, 0, len(p.groups))
	for g := range p.groups {
		if g != "all" {
			groups = append(groups, g)
		}
	}
	slices.Sort(groups)
	if len(groups) > 0 {
		b.WriteString("  children:\n")
	}
	for _, g := range groups {
		fmt.Fprintf(&b, "    %s:\n      hosts:\n", g)
		for _, h := range p.groups[g] {
			fmt.Fprintf(&b, "        %s:\n", h)
		}
	}
	return b.String()
}

// runDir is where a user of the playbook's repository runs it from: the directory of the
// nearest ansible.cfg above it inside the corpus, else the playbook's own; and that config.
func runDir(corpus, playbook string) (dir, cfg string) {
	start := filepath.Dir(filepath.Join(corpus, playbook))
	for d := start; d != corpus && len(d) > len(corpus); d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "ansible.cfg")); err == nil {
			return d, filepath.Join(d, "ansible.cfg")
		}
	}
	return start, ""
}
