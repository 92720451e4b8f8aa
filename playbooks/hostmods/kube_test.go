package hostmods

import (
	"slices"
	"strings"
	"testing"

	"orch/playbooks"
)

// The kube, helm and helm_repository modules drive kubectl and helm; no Kubernetes cluster
// runs here, so these tests check the commands built against kubespray's kube.py and
// kubernetes.core's modules (what a real run would execute), and the decisions made from
// the tools' output.

func TestKubeCommands(t *testing.T) {
	k, err := parseKube(playbooks.Args{"kubectl": "/usr/local/bin/kubectl", "filename": "/etc/kubernetes/a.yml, /etc/kubernetes/b.yml",
		"namespace": "kube-system", "resource": "deploy", "name": "coredns", "state": "latest", "wait": true})
	if err != nil {
		t.Fatal(err)
	}
	apply, _ := k.applyCmd()
	want := "/usr/local/bin/kubectl --namespace=kube-system apply --force --wait --filename=/etc/kubernetes/a.yml,/etc/kubernetes/b.yml"
	if got := strings.Join(apply, " "); got != want {
		t.Errorf("apply:\n got %s\nwant %s", got, want)
	}
	get, _ := k.getCmd()
	if got := strings.Join(get, " "); got != "/usr/local/bin/kubectl --namespace=kube-system get --filename=/etc/kubernetes/a.yml,/etc/kubernetes/b.yml --no-headers" {
		t.Errorf("get: %s", got)
	}
	k, _ = parseKube(playbooks.Args{"resource": "ds", "name": "calico-node", "namespace": "kube-system", "state": "absent", "force": "yes", "kubeconfig": "/root/.kube/config"})
	del, _ := k.deleteCmd("delete")
	if got := strings.Join(del, " "); got != "kubectl --kubeconfig=/root/.kube/config --namespace=kube-system delete ds calico-node --ignore-not-found" {
		t.Errorf("delete: %s", got)
	}
	k, _ = parseKube(playbooks.Args{"state": "present"})
	if _, err := k.applyCmd(); err == nil || !strings.Contains(err.Error(), "filename required") {
		t.Errorf("present without filename: %v", err)
	}
	if _, err := parseKube(playbooks.Args{"state": "bogus"}); err == nil {
		t.Error("state bogus accepted")
	}
}

func TestHelmPlan(t *testing.T) {
	h, err := parseHelm(playbooks.Args{"name": "csr", "namespace": "kube-system", "chart_ref": "kubelet-csr-approver/kubelet-csr-approver",
		"chart_version": "1.2.3", "wait": true, "atomic": true, "binary_path": "/usr/local/bin/helm", "values": map[string]any{"replicas": 2}})
	if err != nil {
		t.Fatal(err)
	}
	probe := `#list
[{"name":"csr","namespace":"kube-system","revision":"1","status":"deployed","chart":"kubelet-csr-approver-1.2.3","app_version":"v1"}]
#values
{"replicas":2}
#chart
apiVersion: v2
name: kubelet-csr-approver
version: 1.2.3
`
	rel, cur, chart, err := parseHelmProbe(probe, "csr")
	if err != nil || rel == nil || chart != "kubelet-csr-approver-1.2.3" {
		t.Fatalf("probe: %v %v %q", err, rel, chart)
	}
	if s, _, _ := h.plan(rel, cur, chart); s != "" {
		t.Errorf("converged release: planned %q", s)
	}
	if s, _, why := h.plan(rel, map[string]any{"replicas": 1.0}, chart); !strings.Contains(s, "upgrade -i --reset-values csr") || why != "upgrade release csr" {
		t.Errorf("other values: %q (%s)", s, why)
	}
	s, stdin, why := h.plan(nil, nil, chart)
	for _, w := range []string{"/usr/local/bin/helm upgrade -i --reset-values csr kubelet-csr-approver/kubelet-csr-approver --namespace kube-system --version 1.2.3 --wait --atomic", `--values="$f"`} {
		if !strings.Contains(s, w) {
			t.Errorf("install: %q lacks %q", s, w)
		}
	}
	if stdin != "replicas: 2\n" || why != "install release csr" {
		t.Errorf("install: stdin %q why %q", stdin, why)
	}
	h, _ = parseHelm(playbooks.Args{"release_name": "dummy", "release_namespace": "kube-system", "state": "absent", "update_repo_cache": true})
	if !strings.HasPrefix(strings.Split(h.probe(), "\n")[2], "helm repo update") {
		t.Errorf("update_repo_cache: probe\n%s", h.probe())
	}
	if s, _, _ := h.plan(nil, nil, ""); s != "" {
		t.Errorf("absent release absent: %q", s)
	}
	if s, _, _ := h.plan(&helmRelease{Name: "dummy"}, nil, ""); s != "helm uninstall dummy --namespace kube-system" {
		t.Errorf("uninstall: %q", s)
	}
}

func TestHelmRepositoryPlan(t *testing.T) {
	r, err := parseHelmRepo(playbooks.Args{"name": "cilium", "url": "https://helm.cilium.io", "username": "u", "password": "s3cret", "force_update": true})
	if err != nil {
		t.Fatal(err)
	}
	s, stdin, _ := r.plan("")
	if s != "helm repo add cilium https://helm.cilium.io --username u --password-stdin --force-update" || stdin != "s3cret" {
		t.Errorf("add: %q stdin %q", s, stdin)
	}
	if strings.Contains(s, "s3cret") {
		t.Error("the password is on the command line")
	}
	if s, _, _ := r.plan("https://helm.cilium.io"); s != "" {
		t.Errorf("present: %q", s)
	}
	r.force = false
	if s, _, msg := r.plan("https://other"); s != "" || !strings.Contains(msg, "already have a repository named cilium") {
		t.Errorf("other url without force: %q %q", s, msg)
	}
	r.state = "absent"
	if s, _, _ := r.plan("https://other"); s != "helm repo remove cilium" {
		t.Errorf("absent: %q", s)
	}
}

func TestSynchronizeArgv(t *testing.T) {
	b := func(v bool) *bool { return &v }
	s := syncSpec{src: "/cache/kubeadm", dest: "/usr/local/bin/kubeadm", mode: "push", remote: "root@10.0.0.5", port: 2222,
		key: "/k", bools: map[string]*bool{"compress": b(false), "perms": b(true), "owner": b(false), "group": b(false)}}
	got := strings.Join(s.argv(true), " ")
	want := "rsync --delay-updates -F --dry-run --archive --no-owner --no-group --rsh=ssh -S none -i /k -o Port=2222 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null --out-format=<<CHANGED>>%i %n%L /cache/kubeadm root@10.0.0.5:/usr/local/bin/kubeadm"
	if got != want {
		t.Errorf("argv:\n got %s\nwant %s", got, want)
	}
	s.mode, s.remote = "pull", "h"
	if a := s.argv(false); !slices.Equal(a[len(a)-2:], []string{"h:/cache/kubeadm", "/usr/local/bin/kubeadm"}) {
		t.Errorf("pull: %v", a[len(a)-2:])
	}
}
