package hostmods

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"orch/playbooks"
)

// gitSpec are the git module's arguments.
type gitSpec struct {
	repo, dest, version, remote string
	force, clone, update, bare  bool
	depth                       int
	env                         string // GIT_SSH_COMMAND and the like
}

var shaRe = regexp.MustCompile(`^[0-9a-fA-F]{7,40}$`)

// git clones a repository to dest on the host, or brings a clone to version (a branch, a
// tag, a commit, or HEAD). One command reads the clone's commit, its origin URL, local
// changes and what version names on the remote (git ls-remote); one more clones or fetches
// and checks out. Returns before and after as Ansible does.
func gitModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("git", a, "repo", "name", "dest", "version", "force", "depth", "clone", "update",
		"remote", "refspec", "bare", "single_branch", "accept_hostkey", "accept_newhostkey", "key_file", "ssh_opts",
		"recursive", "track_submodules", "verify_commit", "executable", "umask", "reference", "gpg_whitelist",
		"gpg_allowlist", "archive", "archive_prefix", "separate_git_dir"); err != nil {
		return playbooks.Result{}, err
	}
	g, err := gitArgs(a)
	if err != nil {
		return playbooks.Result{}, err
	}
	o, err := run(ctx, t, g.probe(), nil)
	if err != nil {
		return playbooks.Result{}, err
	}
	if o.rc != 0 {
		return playbooks.Result{Failed: true, Msg: strings.TrimSpace(o.stderr)}, nil
	}
	f := fields(o.stdout)
	before, target := f["before"], f["remote_sha"]
	if shaRe.MatchString(g.version) && target == "" {
		target = g.version
	}
	data := map[string]any{"before": nilIfEmpty(before), "after": nilIfEmpty(before), "remote_url_changed": false}
	switch {
	case before == "" && !g.clone:
		return playbooks.Result{Data: data}, nil
	case before == "":
		data["after"] = nilIfEmpty(target)
		return playbooks.Result{Data: data}, t.Change("clone "+g.repo+" into "+g.dest, func() error {
			return g.apply(ctx, t, g.cloneScript(), data)
		})
	case !g.update:
		return playbooks.Result{Data: data}, nil
	case f["modified"] == "1" && !g.force:
		return playbooks.Result{Failed: true, Data: data, Msg: "Local modifications exist in the destination: " + g.dest + " (force=no)."}, nil
	}
	if target == "" {
		return playbooks.Result{Failed: true, Data: data, Msg: fmt.Sprintf("Failed to find version %s in %s", g.version, g.repo)}, nil
	}
	urlChanged := f["url"] != g.repo
	data["remote_url_changed"] = urlChanged
	if strings.HasPrefix(before, target) && !urlChanged && f["modified"] != "1" {
		return playbooks.Result{Data: data}, nil
	}
	data["after"] = target
	return playbooks.Result{Data: data}, t.Change(fmt.Sprintf("update %s from %s to %s", g.dest, before, g.version), func() error {
		return g.apply(ctx, t, g.updateScript(urlChanged), data)
	})
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func gitArgs(a playbooks.Args) (gitSpec, error) {
	g := gitSpec{}
	var err error
	if g.repo, _ = strArg(a, "", "repo", "name"); g.repo == "" {
		return g, fmt.Errorf("%w \"repo\": required", playbooks.ErrArgs)
	}
	if g.dest, err = a.Required("dest"); err != nil {
		return g, err
	}
	g.version, _ = a.String("version", "HEAD")
	g.remote, _ = a.String("remote", "origin")
	for _, b := range []struct {
		name string
		def  bool
		dst  *bool
	}{{"force", false, &g.force}, {"clone", true, &g.clone}, {"update", true, &g.update}, {"bare", false, &g.bare}} {
		if *b.dst, err = a.Bool(b.name, b.def); err != nil {
			return g, err
		}
	}
	if g.depth, err = a.Int("depth", 0); err != nil {
		return g, err
	}
	ssh := []string{}
	if acc, _ := a.Bool("accept_hostkey", false); acc {
		ssh = append(ssh, "-o StrictHostKeyChecking=no")
	} else if acc, _ := a.Bool("accept_newhostkey", false); acc {
		ssh = append(ssh, "-o StrictHostKeyChecking=accept-new")
	}
	if k, _ := a.String("key_file", ""); k != "" {
		ssh = append(ssh, "-i "+q(k)+" -o IdentitiesOnly=yes")
	}
	if o, _ := a.String("ssh_opts", ""); o != "" {
		ssh = append(ssh, o)
	}
	if len(ssh) > 0 {
		g.env = "export GIT_SSH_COMMAND=" + q("ssh "+strings.Join(ssh, " ")) + "\n"
	}
	return g, nil
}

// probe prints before=, url=, modified= of the clone and remote_sha= of version.
func (g gitSpec) probe() string {
	gitDir := "$d/.git"
	if g.bare {
		gitDir = "$d"
	}
	refs := q("refs/heads/"+g.version) + " " + q("refs/tags/"+g.version) + " " + q("refs/tags/"+g.version+"^{}")
	if g.version == "HEAD" {
		refs = "HEAD"
	}
	return "export LC_ALL=C\n" + g.env + "command -v git >/dev/null || { echo 'git not found on the host' >&2; exit 127; }\n" +
		"d=" + q(g.dest) + "\n" +
		"if [ -e \"" + gitDir + "\" ]; then\n" +
		"  echo \"before=$(git --git-dir=\"" + gitDir + "\" rev-parse HEAD 2>/dev/null)\"\n" +
		"  echo \"url=$(git --git-dir=\"" + gitDir + "\" config --get remote." + q(g.remote) + ".url)\"\n" +
		map[bool]string{true: "", false: "  [ -n \"$(git -C \"$d\" status --porcelain --untracked-files=no)\" ] && echo modified=1\n"}[g.bare] +
		"elif [ -e \"$d\" ] && [ -n \"$(ls -A \"$d\")\" ]; then echo \"destination path $d already exists and is not an empty directory\" >&2; exit 2\nfi\n" +
		"r=$(git ls-remote " + q(g.repo) + " " + refs + ") || exit 3\n" +
		// a peeled tag (^{}) names the commit; else the first line
		"s=$(printf '%s\\n' \"$r\" | awk '$2 ~ /\\^\\{\\}$/ {print $1; exit}')\n" +
		"[ -n \"$s\" ] || s=$(printf '%s\\n' \"$r\" | awk 'NF {print $1; exit}')\n" +
		"echo \"remote_sha=$s\"\n"
}

func (g gitSpec) depthOpt() string {
	if g.depth > 0 {
		return " --depth " + strconv.Itoa(g.depth)
	}
	return ""
}

// cloneScript clones and checks out version.
func (g gitSpec) cloneScript() string {
	s := g.env + "git clone" + g.depthOpt() + " --origin " + q(g.remote)
	if g.bare {
		return s + " --bare " + q(g.repo) + " " + q(g.dest) + "\n"
	}
	if g.version != "HEAD" && !shaRe.MatchString(g.version) {
		s += " --branch " + q(g.version)
	}
	s += " -- " + q(g.repo) + " " + q(g.dest) + " || exit 1\n"
	if shaRe.MatchString(g.version) {
		s += "git -C " + q(g.dest) + " checkout -q " + q(g.version) + " || exit 1\n"
	}
	return s
}

// updateScript fetches from the remote and checks out version (force discards local
// changes).
func (g gitSpec) updateScript(urlChanged bool) string {
	d := "git -C " + q(g.dest) + " "
	s := g.env
	if urlChanged {
		s += d + "remote set-url " + q(g.remote) + " " + q(g.repo) + " || exit 1\n"
	}
	if g.bare {
		return s + d + "fetch" + g.depthOpt() + " --tags " + q(g.remote) + " '+refs/heads/*:refs/heads/*' || exit 1\n"
	}
	s += d + "fetch" + g.depthOpt() + " --tags " + q(g.remote) + " || exit 1\n"
	f := map[bool]string{true: " -f", false: ""}[g.force]
	switch {
	case g.version == "HEAD":
		s += d + "reset -q --hard " + q(g.remote) + "/HEAD 2>/dev/null || " + d + "reset -q --hard FETCH_HEAD || exit 1\n"
	case shaRe.MatchString(g.version):
		s += d + "checkout -q" + f + " " + q(g.version) + " || exit 1\n"
	default:
		s += "if " + d + "show-ref -q --verify " + q("refs/remotes/"+g.remote+"/"+g.version) + "; then " +
			d + "checkout -q" + f + " -B " + q(g.version) + " " + q(g.remote+"/"+g.version) + "; else " +
			d + "checkout -q" + f + " " + q(g.version) + "; fi || exit 1\n"
	}
	return s
}

// apply runs a clone or update script and records the resulting commit as after.
func (g gitSpec) apply(ctx context.Context, t *playbooks.TaskContext, script string, data map[string]any) error {
	gitDir := g.dest + "/.git"
	if g.bare {
		gitDir = g.dest
	}
	o, err := runOK(ctx, t, "git "+g.repo, script+"\ngit --git-dir="+q(gitDir)+" rev-parse HEAD", nil)
	if err != nil {
		return err
	}
	data["after"] = lastLines(strings.TrimSpace(o.stdout), 1)
	return nil
}
