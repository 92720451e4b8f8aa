package hostmods_test

import (
	"os/exec"
	"strings"
	"testing"

	"orch/playbooks"
)

// TestKubeWithKubectl runs kubespray's kube module through the real kubectl against an API
// server address nothing listens on: kubectl accepts every flag the module builds (it fails
// on the connection, not on its command line), `state: exists` reports False, and the
// failure says what ran, as kube.py's message does. No cluster runs here.
func TestKubeWithKubectl(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Skip("kubectl not installed")
	}
	h := newHarness(t)
	kc := h.write("kubeconfig", "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"https://127.0.0.1:1\", insecure-skip-tls-verify: true}}]\n"+
		"users: [{name: u, user: {token: x}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n")
	cm := h.write("cm.yml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
	o := h.run("kube:\n  kubeconfig: "+kc+"\n  namespace: kube-system\n  filename: "+cm+"\n  state: latest\n  wait: true", false, false)
	if o.status != playbooks.StatusFailed || !strings.Contains(o.res.Msg, "error running kubectl") || !strings.Contains(o.res.Msg, "connection refused") ||
		strings.Contains(o.res.Msg, "unknown flag") {
		t.Fatalf("apply: %s %q", o.status, o.res.Msg)
	}
	o = h.run("kube:\n  kubeconfig: "+kc+"\n  resource: ds\n  name: calico-node\n  state: exists", false, false)
	if o.status != playbooks.StatusOK || o.res.Msg != "False" {
		t.Fatalf("exists: %s %q", o.status, o.res.Msg)
	}
	o = h.run("kube:\n  kubeconfig: "+kc+"\n  resource: ds\n  name: calico-node\n  state: absent\n  force: true", false, false)
	if o.status != playbooks.StatusFailed || !strings.Contains(o.res.Msg, "delete ds calico-node --ignore-not-found") || strings.Contains(o.res.Msg, "unknown flag") {
		t.Fatalf("delete: %s %q", o.status, o.res.Msg)
	}
	if o := h.run("kube:\n  filename: "+cm+"\n  kubectl: /nonexistent/kubectl", false, false); o.status != playbooks.StatusFailed || !strings.Contains(o.res.Msg, "/nonexistent/kubectl") {
		t.Fatalf("no kubectl: %s %q", o.status, o.res.Msg)
	}
}
