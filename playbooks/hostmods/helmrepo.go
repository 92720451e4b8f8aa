package hostmods

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"orch/playbooks"
)

// helmRepoSpec is a parsed helm_repository task.
type helmRepoSpec struct {
	bin, name, url, user, password, state string
	force, passCreds                      bool
}

// helmRepositoryModule is kubernetes.core.helm_repository over the helm CLI: `helm repo
// list` decides; a missing repository is added (`helm repo add`, the password on stdin,
// never on the command line), one with another URL is re-added with force_update and
// refused otherwise, state absent removes it (`helm repo remove`).
func helmRepositoryModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("helm_repository", a, "binary_path", "repo_name", "name", "repo_url", "url",
		"repo_username", "username", "repo_password", "password", "repo_state", "state", "force_update", "force",
		"pass_credentials"); err != nil {
		return playbooks.Result{}, err
	}
	r, err := parseHelmRepo(a)
	if err != nil {
		return playbooks.Result{}, err
	}
	o, err := run(ctx, t, "command -v "+q(r.bin)+" >/dev/null 2>&1 || exit 127\n"+shellJoin([]string{r.bin, "repo", "list", "--output=json"})+" 2>/dev/null || echo '[]'", nil)
	if err != nil {
		return playbooks.Result{}, err
	}
	if o.rc == 127 {
		return playbooks.Result{Failed: true, Msg: fmt.Sprintf("Failed to find required executable %q in paths", r.bin)}, nil
	}
	var repos []struct{ Name, URL string }
	if err := json.Unmarshal([]byte(strings.TrimSpace(o.stdout)), &repos); err != nil {
		return playbooks.Result{Failed: true, Msg: "helm repo list: " + err.Error()}, nil
	}
	cur := ""
	for _, x := range repos {
		if x.Name == r.name {
			cur = x.URL
		}
	}
	script, stdin, msg := r.plan(cur)
	if msg != "" && script == "" {
		return playbooks.Result{Failed: true, Msg: msg}, nil
	}
	res := playbooks.Result{Data: map[string]any{"repo_name": r.name}}
	if script == "" {
		return res, nil
	}
	return res, t.Change(msg, func() error {
		_, err := runOK(ctx, t, msg, script, strings.NewReader(stdin))
		return err
	})
}

func parseHelmRepo(a playbooks.Args) (helmRepoSpec, error) {
	r := helmRepoSpec{}
	var err error
	r.bin, _ = a.String("binary_path", "helm")
	r.name, _ = strArg(a, "", "repo_name", "name")
	if r.name == "" {
		return r, fmt.Errorf("%w \"repo_name\": required", playbooks.ErrArgs)
	}
	r.url, _ = strArg(a, "", "repo_url", "url")
	r.user, _ = strArg(a, "", "repo_username", "username")
	r.password, _ = strArg(a, "", "repo_password", "password")
	r.state, _ = strArg(a, "present", "repo_state", "state")
	if err := choice("repo_state", r.state, "present", "absent"); err != nil {
		return r, err
	}
	if r.state == "present" && r.url == "" {
		return r, fmt.Errorf("%w \"repo_url\": required when repo_state is present", playbooks.ErrArgs)
	}
	if (r.user == "") != (r.password == "") {
		return r, fmt.Errorf("%w: repo_username and repo_password must be given together", playbooks.ErrArgs)
	}
	if v := firstSet(a, "force_update", "force"); v != nil {
		if r.force, err = (playbooks.Args{"force_update": v}).Bool("force_update", false); err != nil {
			return r, err
		}
	}
	if r.passCreds, err = a.Bool("pass_credentials", false); err != nil {
		return r, err
	}
	return r, nil
}

// plan returns the command (with the password as stdin) and what it does, given the URL
// the repository has now ("" when missing); a message without script is a failure.
func (r helmRepoSpec) plan(cur string) (script, stdin, msg string) {
	if r.state == "absent" {
		if cur == "" {
			return "", "", ""
		}
		return shellJoin([]string{r.bin, "repo", "remove", r.name}), "", "remove helm repository " + r.name
	}
	if cur == r.url {
		return "", "", ""
	}
	if cur != "" && !r.force {
		return "", "", fmt.Sprintf("Repository already have a repository named %s", r.name)
	}
	args := []string{r.bin, "repo", "add", r.name, r.url}
	if r.user != "" {
		args = append(args, "--username", r.user, "--password-stdin")
		stdin = r.password
	}
	if r.passCreds {
		args = append(args, "--pass-credentials")
	}
	if r.force {
		args = append(args, "--force-update")
	}
	return shellJoin(args), stdin, "add helm repository " + r.name
}
