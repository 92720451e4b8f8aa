package hostmods

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"orch/playbooks"
)

// helmArgNames are the arguments of kubernetes.core.helm orch handles.
var helmArgNames = []string{"binary_path", "chart_ref", "chart_repo_url", "chart_version", "release_name", "name",
	"release_namespace", "namespace", "release_state", "state", "release_values", "values", "values_files",
	"update_repo_cache", "wait", "wait_timeout", "atomic", "create_namespace", "force", "purge", "disable_hook",
	"kubeconfig", "kubeconfig_path", "context", "kube_context", "skip_crds", "history_max", "replace", "timeout"}

// helmRelease is what `helm list -o json` says of a release.
type helmRelease struct {
	Name, Namespace, Status, Chart string
	AppVersion                     string `json:"app_version"`
}

// helmSpec is a parsed helm task.
type helmSpec struct {
	bin, name, ns, state, chart, repoURL, version string
	global                                        []string // --kubeconfig, --kube-context
	values                                        map[string]any
	valuesFiles                                   []string
	updateCache, wait, atomic, createNS, force    bool
	purge, noHooks, skipCRDs, replace             bool
	timeout                                       string
	historyMax                                    int
}

// helmModule is kubernetes.core.helm over the helm CLI on the host: it reads the release
// (`helm list`), its values (`helm get values`) and the chart's name and version (`helm show
// chart`) in one command, installs or upgrades (`helm upgrade -i`) when the release is
// missing or its chart or values differ, and uninstalls it for state absent. Values go to
// helm through a temporary file. update_repo_cache runs `helm repo update` first.
func helmModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	if err := playbooks.AllowArgs("helm", t.Args, helmArgNames...); err != nil {
		return playbooks.Result{}, err
	}
	h, err := parseHelm(t.Args)
	if err != nil {
		return playbooks.Result{}, err
	}
	o, err := run(ctx, t, h.probe(), nil)
	if err != nil {
		return playbooks.Result{}, err
	}
	if o.rc == 127 {
		return playbooks.Result{Failed: true, Msg: fmt.Sprintf("Failed to find required executable %q in paths", h.bin)}, nil
	}
	rel, cur, chart, err := parseHelmProbe(o.stdout, h.name)
	if err != nil {
		return playbooks.Result{Failed: true, Msg: err.Error()}, nil
	}
	if o.rc != 0 {
		return playbooks.Result{Failed: true, Msg: "helm: " + lastLines(strings.TrimSpace(o.stderr), 5)}, nil
	}
	res := playbooks.Result{Data: map[string]any{"status": helmStatus(rel)}}
	script, stdin, why := h.plan(rel, cur, chart)
	if script == "" {
		return res, nil
	}
	return res, t.Change(why, func() error {
		o, err := runOK(ctx, t, "helm "+h.name, script, strings.NewReader(stdin))
		if err == nil {
			res.Data["stdout"], res.Data["stderr"] = o.stdout, o.stderr
		}
		return err
	})
}

func helmStatus(rel *helmRelease) any {
	if rel == nil {
		return nil
	}
	return map[string]any{"name": rel.Name, "namespace": rel.Namespace, "status": rel.Status, "chart": rel.Chart, "app_version": rel.AppVersion}
}

// parseHelm reads a helm task's arguments with kubernetes.core's defaults.
func parseHelm(a playbooks.Args) (helmSpec, error) {
	h := helmSpec{}
	var err error
	h.bin, _ = a.String("binary_path", "helm")
	h.name, _ = strArg(a, "", "release_name", "name")
	h.ns, _ = strArg(a, "", "release_namespace", "namespace")
	if h.name == "" || h.ns == "" {
		return h, fmt.Errorf("%w: release_name and release_namespace are required", playbooks.ErrArgs)
	}
	h.state, _ = strArg(a, "present", "release_state", "state")
	if err := choice("release_state", h.state, "present", "absent"); err != nil {
		return h, err
	}
	h.chart, _ = a.String("chart_ref", "")
	h.repoURL, _ = a.String("chart_repo_url", "")
	h.version, _ = a.String("chart_version", "")
	h.timeout, _ = strArg(a, "", "wait_timeout", "timeout")
	if kc, _ := strArg(a, "", "kubeconfig", "kubeconfig_path"); kc != "" {
		h.global = append(h.global, "--kubeconfig", kc)
	}
	if c, _ := strArg(a, "", "context", "kube_context"); c != "" {
		h.global = append(h.global, "--kube-context", c)
	}
	if v := firstSet(a, "release_values", "values"); v != nil {
		m, ok := v.(map[string]any)
		if !ok {
			return h, fmt.Errorf("%w \"release_values\": expected a mapping, got %T", playbooks.ErrArgs, v)
		}
		h.values = m
	}
	if h.valuesFiles, err = listArg(a, "values_files"); err != nil {
		return h, err
	}
	if h.historyMax, err = a.Int("history_max", 0); err != nil {
		return h, err
	}
	for name, p := range map[string]*bool{"update_repo_cache": &h.updateCache, "wait": &h.wait, "atomic": &h.atomic,
		"create_namespace": &h.createNS, "force": &h.force, "disable_hook": &h.noHooks, "skip_crds": &h.skipCRDs, "replace": &h.replace} {
		if *p, err = a.Bool(name, false); err != nil {
			return h, err
		}
	}
	if h.purge, err = a.Bool("purge", true); err != nil {
		return h, err
	}
	if h.state == "present" && h.chart == "" {
		return h, fmt.Errorf("%w \"chart_ref\": required when release_state is present", playbooks.ErrArgs)
	}
	return h, nil
}

func firstSet(a playbooks.Args, names ...string) any {
	for _, n := range names {
		if a.Has(n) {
			return a[n]
		}
	}
	return nil
}

func (h helmSpec) cmd(args ...string) string {
	return shellJoin(append(append([]string{h.bin}, h.global...), args...))
}

// probe prints the release list, the release's values and the chart's metadata, each after
// a marker line. With update_repo_cache it refreshes the repositories first (as the Python
// module does before reading anything, check mode included).
func (h helmSpec) probe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "command -v %s >/dev/null 2>&1 || exit 127\nset -e\n", q(h.bin))
	if h.updateCache {
		b.WriteString(h.cmd("repo", "update") + " >/dev/null\n")
	}
	b.WriteString("echo '#list'\n" + h.cmd("list", "--all", "--output=json", "--namespace", h.ns, "--filter", "^"+regexp.QuoteMeta(h.name)+"$") + "\n")
	b.WriteString("echo '#values'\n" + h.cmd("get", "values", h.name, "--namespace", h.ns, "--output=json") + " 2>/dev/null || echo null\n")
	if h.state == "present" {
		show := []string{"show", "chart", h.chart}
		if h.version != "" {
			show = append(show, "--version", h.version)
		}
		if h.repoURL != "" {
			show = append(show, "--repo", h.repoURL)
		}
		b.WriteString("echo '#chart'\n" + h.cmd(show...) + "\n")
	}
	return b.String()
}

// parseHelmProbe splits the probe's output: the release (nil if not installed), its
// values and the chart's "name-version".
func parseHelmProbe(out, name string) (*helmRelease, map[string]any, string, error) {
	parts := map[string]string{}
	key := ""
	for _, l := range strings.SplitAfter(out, "\n") {
		if k, ok := strings.CutPrefix(strings.TrimSpace(l), "#"); ok && (k == "list" || k == "values" || k == "chart") {
			key = k
			continue
		}
		parts[key] += l
	}
	var rel *helmRelease
	if s := strings.TrimSpace(parts["list"]); s != "" {
		var list []helmRelease
		if err := json.Unmarshal([]byte(s), &list); err != nil {
			return nil, nil, "", fmt.Errorf("helm list: %w", err)
		}
		for i := range list {
			if list[i].Name == name {
				rel = &list[i]
			}
		}
	}
	var values map[string]any
	if s := strings.TrimSpace(parts["values"]); s != "" && s != "null" {
		if err := json.Unmarshal([]byte(s), &values); err != nil {
			return nil, nil, "", fmt.Errorf("helm get values: %w", err)
		}
	}
	chart := ""
	if s := parts["chart"]; s != "" {
		var meta struct{ Name, Version string }
		if err := yaml.Unmarshal([]byte(s), &meta); err != nil {
			return nil, nil, "", fmt.Errorf("helm show chart: %w", err)
		}
		chart = meta.Name + "-" + meta.Version
	}
	return rel, values, chart, nil
}

// plan decides what to run: the script, its stdin (the values file) and why; "" when the
// release is as asked.
func (h helmSpec) plan(rel *helmRelease, cur map[string]any, chart string) (script, stdin, why string) {
	if h.state == "absent" {
		if rel == nil {
			return "", "", ""
		}
		args := []string{"uninstall", h.name, "--namespace", h.ns}
		if !h.purge {
			args = append(args, "--keep-history")
		}
		if h.wait {
			args = append(args, "--wait")
		}
		return h.cmd(args...), "", "uninstall release " + h.name
	}
	if rel != nil && !h.force && rel.Status == "deployed" && rel.Chart == chart && sameValues(cur, h.values) {
		return "", "", ""
	}
	args := []string{"upgrade", "-i", "--reset-values", h.name, h.chart, "--namespace", h.ns}
	if h.version != "" {
		args = append(args, "--version", h.version)
	}
	if h.repoURL != "" {
		args = append(args, "--repo", h.repoURL)
	}
	for _, f := range []struct {
		flag string
		on   bool
	}{{"--wait", h.wait}, {"--atomic", h.atomic}, {"--create-namespace", h.createNS}, {"--force", h.force},
		{"--no-hooks", h.noHooks}, {"--skip-crds", h.skipCRDs}} {
		if f.on {
			args = append(args, f.flag)
		}
	}
	if h.timeout != "" {
		args = append(args, "--timeout", h.timeout)
	}
	if h.historyMax > 0 {
		args = append(args, fmt.Sprintf("--history-max=%d", h.historyMax))
	}
	for _, f := range h.valuesFiles {
		args = append(args, "--values="+f)
	}
	why = "install release " + h.name
	if rel != nil {
		why = "upgrade release " + h.name
	}
	if h.values == nil {
		return h.cmd(args...), "", why
	}
	vals, _ := yaml.Marshal(h.values)
	script = "f=$(mktemp) && trap 'rm -f \"$f\"' EXIT && cat >\"$f\" && " + h.cmd(args...) + " --values=\"$f\""
	return script, string(vals), why
}

// sameValues compares the release's values with the asked ones as JSON does (numbers as
// float64), an empty mapping equal to none.
func sameValues(cur, want map[string]any) bool {
	if len(cur) == 0 && len(want) == 0 {
		return true
	}
	a, _ := json.Marshal(cur)
	b, _ := json.Marshal(want)
	var x, y any
	_ = json.Unmarshal(a, &x)
	_ = json.Unmarshal(b, &y)
	return reflect.DeepEqual(x, y)
}
