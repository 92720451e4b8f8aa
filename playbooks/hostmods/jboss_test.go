package hostmods_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"orch/playbooks"
)

// scanner plays JBoss's deployment scanner on dir, as WildFly's does: a deployment file that
// appears (or changes) gets <name>.deployed, unless its content says FAIL (then .failed); a
// removed one gets <name>.undeployed. No JBoss runs here: this is the scanner's protocol the
// module relies on, the module's own commands and waits run for real.
func scanner(t *testing.T, dir string) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	t.Cleanup(func() { close(stop); wg.Wait() })
	go func() {
		defer wg.Done()
		seen := map[string]string{}
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			entries, _ := os.ReadDir(dir)
			present := map[string]bool{}
			for _, e := range entries {
				n := e.Name()
				if strings.Contains(n, ".war.") || !strings.HasSuffix(n, ".war") {
					continue
				}
				present[n] = true
				b, _ := os.ReadFile(filepath.Join(dir, n))
				_, err := os.Stat(filepath.Join(dir, n+".deployed"))
				if seen[n] == string(b) && err == nil {
					continue
				}
				seen[n] = string(b)
				os.Remove(filepath.Join(dir, n+".undeployed"))
				marker := ".deployed"
				if strings.Contains(string(b), "FAIL") {
					marker = ".failed"
				}
				_ = os.WriteFile(filepath.Join(dir, n+marker), []byte(n), 0o644)
			}
			for n := range seen {
				if !present[n] {
					delete(seen, n)
					os.Remove(filepath.Join(dir, n+".deployed"))
					_ = os.WriteFile(filepath.Join(dir, n+".undeployed"), []byte(n), 0o644)
				}
			}
		}
	}()
}

// TestJBossDeploymentScanner deploys ansible-examples' helloworld.war, redeploys a changed
// one, undeploys it, and reports a failed deployment.
func TestJBossDeploymentScanner(t *testing.T) {
	h := newHarness(t)
	deployments := filepath.Join(t.TempDir(), "deployments") // outside h.dir: the scanner writes markers
	if err := os.Mkdir(deployments, 0o755); err != nil {
		t.Fatal(err)
	}
	scanner(t, deployments)
	war := filepath.Join(t.TempDir(), "jboss-helloworld.war")
	if err := os.WriteFile(war, []byte("war v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	task := "jboss:\n  deploy_path: " + deployments + "/\n  src: " + war + "\n  deployment: helloworld.war\n  state: present"
	h.converge(task)
	if _, err := os.Stat(filepath.Join(deployments, "helloworld.war.deployed")); err != nil {
		t.Fatalf("not deployed: %v", err)
	}
	if err := os.WriteFile(war, []byte("war v2"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.converge(task)
	if b, _ := os.ReadFile(filepath.Join(deployments, "helloworld.war")); string(b) != "war v2" {
		t.Fatalf("not redeployed: %q", b)
	}
	h.converge("jboss: deployment=helloworld.war state=absent deploy_path=" + deployments)
	if _, err := os.Stat(filepath.Join(deployments, "helloworld.war.undeployed")); err != nil {
		t.Fatalf("not undeployed: %v", err)
	}
	if err := os.WriteFile(war, []byte("FAIL"), 0o644); err != nil {
		t.Fatal(err)
	}
	if o := h.run(task, false, false); o.status != playbooks.StatusFailed || !strings.Contains(o.res.Msg, "Deploying helloworld.war failed") {
		t.Fatalf("a failing deployment: %s %q", o.status, o.res.Msg)
	}
}
