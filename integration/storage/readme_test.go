package storage

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/integration/lab"
	"orch/internal/wait"
	"orch/nodeagent/api"
)

// readmeSection is the README's heading of the guide's preseed flow.
const readmeSection = "### The guide's preseed flow, with the agent CLI"

// readmeCertRecipe is the command the README gives for the join preseed's certificate.
const readmeCertRecipe = `sed ':a;N;$!ba;s/\n/\n\n/g' /var/lib/nodeagent/server.crt`

// readmeAddrs are the README's addresses of node1 and node2.
var readmeAddrs = [2]string{"10.0.0.11", "10.0.0.12"}

var (
	yamlBlock = regexp.MustCompile("(?s)```yaml\n(.*?)```")
	// readmeCert is the join preseed's quoted certificate, the guide's sample lines.
	readmeCert = regexp.MustCompile(`(?s)"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n"`)
)

// readmePreseeds returns the bootstrap and join preseeds of the README's guide section.
func readmePreseeds(t *testing.T) (bootstrap, join string) {
	t.Helper()
	root, err := agenttest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i := strings.Index(doc, readmeSection)
	if i < 0 {
		t.Fatalf("README.md has no section %q", readmeSection)
	}
	sec := doc[i+len(readmeSection):]
	if j := strings.Index(sec, "\n#"); j >= 0 {
		sec = sec[:j]
	}
	if !strings.Contains(sec, readmeCertRecipe) {
		t.Errorf("the README's section does not give the certificate recipe %q", readmeCertRecipe)
	}
	blocks := yamlBlock.FindAllStringSubmatch(sec, -1)
	if len(blocks) != 2 {
		t.Fatalf("the README's section has %d yaml blocks; want the bootstrap and the join preseed", len(blocks))
	}
	return blocks[0][1], blocks[1][1]
}

// TestReadmeGuidePreseeds runs the README's bootstrap and join preseeds, as printed, on two
// lab hosts: only the README's addresses become the hosts', and the join preseed's
// certificate becomes the output of the README's sed command on node1's server.crt. The
// result is the guide's cluster: two members, the pool, the bridge and the default profile
// on both, the bootstrap's config.
func TestReadmeGuidePreseeds(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces)")
	}
	for _, tool := range []string{"dnsmasq", "sed"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: install dnsmasq-base and sed", tool)
		}
	}
	bootYAML, joinYAML := readmePreseeds(t)
	l := lab.New(t, 2)
	n1 := agenttest.StartInHost(t, l.Hosts()[0], "node1")
	n2 := agenttest.StartInHost(t, l.Hosts()[1], "node2")
	addrs := strings.NewReplacer(readmeAddrs[0], n1.Host.Addr, readmeAddrs[1], n2.Host.Addr)

	n1.MustRun(addrs.Replace(bootYAML), "init", "--preseed")
	cert, err := exec.Command("sed", `:a;N;$!ba;s/\n/\n\n/g`, filepath.Join(n1.Dir, "server.crt")).Output()
	if err != nil {
		t.Fatalf("node1: sed server.crt: %v", err)
	}
	if !readmeCert.MatchString(joinYAML) {
		t.Fatalf("the README's join preseed has no quoted certificate:\n%s", joinYAML)
	}
	join := readmeCert.ReplaceAllLiteralString(addrs.Replace(joinYAML), `"`+string(cert)+`"`)
	n2.MustRun(join, "init", "--preseed")

	wait.For(t, 30*time.Second, "the guide's cluster", func() error {
		var ms []api.ClusterMember
		if err := json.Unmarshal([]byte(n2.MustRun("", "cluster", "list", "--format", "json")), &ms); err != nil {
			return err
		}
		if len(ms) != 2 || ms[0].Status != api.StatusOnline || ms[1].Status != api.StatusOnline {
			return fmt.Errorf("members %+v", ms)
		}
		n := networks(t, n2)["lxdbr0"]
		if n.Status != api.StatusCreated || len(n.Locations) != 2 || n.Config["ipv4.address"] != "192.168.100.14/24" {
			return fmt.Errorf("lxdbr0 = %+v", n)
		}
		return nil
	})
	profile := n2.MustRun("", "profile", "show", "default")
	for _, w := range []string{"pool: default", "parent: lxdbr0", "nictype: bridged"} {
		if !strings.Contains(profile, w) {
			t.Errorf("the default profile lacks %q:\n%s", w, profile)
		}
	}
	if n := networks(t, n2)["lxdbr0"]; len(n.UsedBy) != 1 || n.UsedBy[0] != "/1.0/profiles/default" {
		t.Errorf("lxdbr0 used by %q; want the default profile (its eth0)", n.UsedBy)
	}
	if v := strings.TrimSpace(n2.MustRun("", "config", "get", "images.auto_update_interval")); v != "15" {
		t.Errorf("images.auto_update_interval = %q; want the bootstrap preseed's 15", v)
	}
	for _, m := range []*agenttest.HostAgent{n1, n2} {
		if _, err := netlinkOf(t, m).LinkByName("lxdbr0"); err != nil {
			t.Errorf("%s: no lxdbr0 bridge: %v", m.Name, err)
		}
	}
}
