// Package playrecap compares `orch play` with ansible-playbook on the third-party playbooks
// of the corpus (playbooks/testdata/corpus): each playbook that can run on lab hosts runs
// for real, ansible-playbook on fresh Debian 12 hosts and orch on their fresh twins, and the
// per-host PLAY RECAP (ok, changed, unreachable, failed, skipped) must be the same for at
// least 90% of them (issue 17's measure). `make recap-compare` runs it and writes the
// figures to playbooks/testdata/corpus/RECAP-LAB.
package playrecap

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/integration/lab"
)

// target is the fraction of the lab-runnable playbooks whose recaps must be equal.
const target = 0.90

// runTimeout bounds one playbook's run on one side (packages such as a JDK take minutes).
const runTimeout = 20 * time.Minute

// orchBin is the orch binary under test, built by TestMain.
var orchBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "playrecap-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	orchBin = filepath.Join(dir, "orch")
	code := 0
	if os.Getenv("ORCH_RECAP_LAB") != "" {
		if err := agenttest.Build(orchBin, "./orchestrator/cmd/orch", agenttest.BuildOptions{}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	if code == 0 {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// outcome is one playbook's comparison.
type outcome struct {
	path          string
	ansible, orch map[string]string // host → "ok=N changed=N unreachable=N failed=N skipped=N"
	took          time.Duration
	err           string // why there is nothing to compare, or ""
}

func (o outcome) equal() bool {
	return o.err == "" && fmt.Sprint(o.ansible) == fmt.Sprint(o.orch)
}

// TestCorpusRecapOnLab runs every corpus playbook the manifest (playbooks/testdata/corpus/LAB)
// lists as runnable on lab hosts with ansible-playbook and with orch, each on fresh Debian 12
// hosts, and compares the per-host recaps. It fails below 90% equal, and on a difference
// whose cause LAB does not give (a `known` line). It needs root, debootstrap, LXC and
// ansible-playbook, and ORCH_RECAP_LAB=1 (it takes half an hour: `make recap-compare`).
func TestCorpusRecapOnLab(t *testing.T) {
	if os.Getenv("ORCH_RECAP_LAB") == "" {
		t.Skip("the corpus recap comparison takes about 40 minutes on lab hosts (36 playbooks, 3 at a time): run it with `make recap-compare` (ORCH_RECAP_LAB=1)")
	}
	ansible, err := exec.LookPath("ansible-playbook")
	if err != nil {
		t.Skip("ansible-playbook not installed (apt-get install ansible; scripts/install-deps.sh): nothing to compare with")
	}
	lab.Require(t)
	corpus, err := filepath.Abs("../../playbooks/testdata/corpus")
	if err != nil {
		t.Fatal(err)
	}
	m, err := readManifest(filepath.Join(corpus, "LAB"))
	if err != nil {
		t.Fatal(err)
	}
	checkSelection(t, corpus, m)
	var mu sync.Mutex
	var results []outcome
	only, err := regexp.Compile(os.Getenv("ORCH_RECAP_ONLY"))
	if err != nil {
		t.Fatalf("ORCH_RECAP_ONLY: %v", err)
	}
	t.Run("playbooks", func(t *testing.T) {
		for _, p := range m.run {
			if !only.MatchString(p.path) {
				continue
			}
			t.Run(p.path, func(t *testing.T) {
				t.Parallel()
				o := compare(t, ansible, corpus, p)
				mu.Lock()
				results = append(results, o)
				mu.Unlock()
			})
		}
	})
	report(t, corpus, m, results, ansible)
}

// checkSelection fails unless every playbook ansible-playbook accepts is either run or
// skipped with a reason, so that the selection rule is applied to the whole corpus.
func checkSelection(t *testing.T, corpus string, m manifest) {
	data, err := os.ReadFile(filepath.Join(corpus, "ANSIBLE"))
	if err != nil {
		t.Fatal(err)
	}
	run := map[string]bool{}
	for _, p := range m.run {
		run[p.path] = true
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 2 || f[1] != "accepted" {
			continue
		}
		if _, skipped := m.skip[f[0]]; !run[f[0]] && !skipped {
			t.Errorf("LAB: %s (accepted by ansible-playbook) is neither run nor skipped", f[0])
		}
	}
}

// compare runs p with ansible-playbook on k fresh hosts and with orch on k others.
func compare(t *testing.T, ansible, corpus string, p labPlaybook) outcome {
	start := time.Now()
	o := outcome{path: p.path}
	k := len(p.hosts)
	l := lab.New(t, 2*k, lab.WithOS(lab.OSDebian))
	hosts := l.Hosts()
	prepare(t, hosts)
	addrs := func(hs []*lab.Host) []string {
		var out []string
		for _, h := range hs {
			out = append(out, h.Addr)
		}
		return out
	}
	dir := t.TempDir()
	invA, invB := filepath.Join(dir, "ansible.yml"), filepath.Join(dir, "orch.yml")
	writeFile(t, invA, p.inventory(addrs(hosts[:k]), l.KeyFile()))
	writeFile(t, invB, p.inventory(addrs(hosts[k:]), l.KeyFile()))
	var extra []string
	if p.vars != "" {
		extra = []string{"-e", "@" + filepath.Join(corpus, p.vars)}
	}
	wd, cfg := runDir(corpus, p.path)
	path := filepath.Join(corpus, p.path)
	var wg sync.WaitGroup
	var aOut, oOut string
	wg.Add(2)
	go func() {
		defer wg.Done()
		args := append([]string{"-i", invA, "--ssh-common-args=-o UserKnownHostsFile=" + l.KnownHostsFile() + " -o StrictHostKeyChecking=yes"}, extra...)
		aOut = run(wd, []string{"ANSIBLE_CONFIG=" + cfg, "ANSIBLE_NOCOLOR=1", "ANSIBLE_RETRY_FILES_ENABLED=0", "ANSIBLE_ROLES_PATH="},
			ansible, append(args, path)...)
	}()
	go func() {
		defer wg.Done()
		args := append([]string{"-i", invB, "--known-hosts", l.KnownHostsFile(), "--state-dir", filepath.Join(dir, "state"), "play"}, extra...)
		oOut = run(wd, []string{"ANSIBLE_CONFIG=" + cfg, "ANSIBLE_ROLES_PATH="}, orchBin, append(args, path)...)
	}()
	wg.Wait()
	o.ansible, o.orch, o.took = recap(aOut), recap(oOut), time.Since(start)
	switch {
	case !strings.Contains(aOut, "PLAY RECAP"):
		o.err = "ansible-playbook did not run it"
	case !strings.Contains(oOut, "PLAY RECAP"):
		o.err = "orch did not run it: " + strings.ReplaceAll(firstLine(oOut, "Error: "), corpus+"/", "")
	}
	if !o.equal() {
		t.Logf("ansible-playbook:\n%s\norch:\n%s", aOut, oOut)
		t.Logf("recaps differ: ansible %v, orch %v", o.ansible, o.orch)
	}
	return o
}

// prepare makes fresh Debian hosts what a cloud gives and Ansible needs: apt lists,
// python3 and sudo. Both twins get the same.
func prepare(t *testing.T, hosts []*lab.Host) {
	var wg sync.WaitGroup
	errs := make([]error, len(hosts))
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			_, errs[i] = h.Exec(ctx, "sh", "-c", "apt-get -q update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3 sudo >/dev/null")
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("preparing the hosts: %v", err)
		}
	}
}

// run runs a command in dir with env added, stdin empty (vars_prompt must not wait), and
// returns its combined output.
func run(dir string, env []string, name string, args ...string) string {
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(&out, "\n[%s: %v]\n", filepath.Base(name), err)
	}
	return out.String()
}

// firstLine is the first line of out starting with prefix, or "".
func firstLine(out, prefix string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			return strings.TrimPrefix(l, prefix)
		}
	}
	return ""
}

var recapLine = regexp.MustCompile(`(?m)^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)`)

// recap reads the PLAY RECAP lines of a run's output.
func recap(out string) map[string]string {
	m := map[string]string{}
	for _, g := range recapLine.FindAllStringSubmatch(out, -1) {
		m[g[1]] = fmt.Sprintf("ok=%s changed=%s unreachable=%s failed=%s skipped=%s", g[2], g[3], g[4], g[5], g[6])
	}
	return m
}

// report logs the fraction and each difference with its known cause, writes RECAP-LAB when
// ORCH_RECAP_WRITE is set (a run of some playbooks, ORCH_RECAP_ONLY, replaces their lines
// and keeps the others'), and fails below the target.
func report(t *testing.T, corpus string, m manifest, results []outcome, ansible string) {
	path := filepath.Join(corpus, "RECAP-LAB")
	lines := map[string]string{}
	if os.Getenv("ORCH_RECAP_ONLY") != "" {
		lines = previousLines(path, m)
	}
	equal := 0
	for _, o := range results {
		lines[o.path] = resultLine(o, m)
		if !o.equal() && m.known[o.path] == "" {
			t.Errorf("%s: recaps differ (ansible %s, orch %s) and LAB knows no cause: find it, fix it or say it", o.path, fmtRecap(o.ansible), fmtRecap(o.orch))
		}
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "same\t") {
			equal++
		}
	}
	frac := float64(equal) / float64(max(len(lines), 1))
	var b strings.Builder
	version, _ := exec.Command(ansible, "--version").Output()
	first, _, _ := strings.Cut(string(version), "\n")
	fmt.Fprintf(&b, "# Per-host PLAY RECAP of orch play vs %s on fresh Debian 12 lab hosts,\n", first)
	fmt.Fprintf(&b, "# %s (integration/playrecap TestCorpusRecapOnLab, `make recap-compare`; the corpus/LAB selection).\n", time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&b, "# %d of %d playbooks have equal recaps (%.1f%%; target %.0f%%); %d corpus playbooks skipped (LAB says why).\n",
		equal, len(lines), 100*frac, 100*target, len(m.skip))
	b.WriteString("# state\tplaybook\tseconds (both runs, in parallel)\tansible's recap\t[orch's recap, cause when different]\n")
	for _, p := range slices.Sorted(maps.Keys(lines)) {
		b.WriteString(lines[p] + "\n")
	}
	t.Log("\n" + b.String())
	if os.Getenv("ORCH_RECAP_WRITE") != "" {
		writeFile(t, path, b.String())
	}
	if frac < target {
		t.Errorf("%.1f%% of the recaps are equal, target %.0f%%", 100*frac, 100*target)
	}
}

// resultLine is o's line in RECAP-LAB.
func resultLine(o outcome, m manifest) string {
	state := "same"
	if !o.equal() {
		state = "DIFF"
	}
	l := fmt.Sprintf("%s\t%s\t%ds\tansible %s", state, o.path, int(o.took.Seconds()), fmtRecap(o.ansible))
	if o.equal() {
		return l
	}
	l += "\torch " + fmtRecap(o.orch)
	if o.err != "" {
		l += "\t(" + o.err + ")"
	}
	if c := m.known[o.path]; c != "" {
		l += "\tcause: " + c
	}
	return l
}

// previousLines reads RECAP-LAB's result lines of the playbooks the manifest still runs.
func previousLines(path string, m manifest) map[string]string {
	out := map[string]string{}
	data, _ := os.ReadFile(path)
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Split(l, "\t")
		if len(f) > 2 && (f[0] == "same" || f[0] == "DIFF") && slices.ContainsFunc(m.run, func(p labPlaybook) bool { return p.path == f[1] }) {
			out[f[1]] = l
		}
	}
	return out
}

func fmtRecap(m map[string]string) string {
	var parts []string
	for _, h := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, h+": "+m[h])
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
