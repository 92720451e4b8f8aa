package hostmods

import (
	"context"
	"fmt"
	"strings"

	"orch/playbooks"
)

// apt_key adds or removes an APT signing key: from data, a file or a URL on the host, or a
// keyserver; into keyring (with gpg) or APT's trusted keys (apt-key). Whether the key is
// there is read by fingerprint (its last 8 or 16 hex digits are enough, as in Ansible).
func aptKeyModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("apt_key", a, "id", "data", "file", "keyring", "url", "keyserver", "state", "validate_certs"); err != nil {
		return playbooks.Result{}, err
	}
	id, _ := a.String("id", "")
	id = strings.ToUpper(strings.TrimPrefix(strings.ReplaceAll(id, " ", ""), "0x"))
	data, _ := a.String("data", "")
	file, _ := a.String("file", "")
	url, _ := a.String("url", "")
	keyserver, _ := a.String("keyserver", "")
	keyring, _ := a.String("keyring", "")
	state, _ := a.String("state", "present")
	if err := choice("state", state, "present", "absent"); err != nil {
		return playbooks.Result{}, err
	}
	// source prints the key material on stdout.
	source := ""
	switch {
	case data != "":
		source = "printf '%s\\n' " + q(data)
	case file != "":
		source = "cat -- " + q(file)
	case url != "":
		source = "{ t=$(mktemp) && " + downloadCmd(url, "$t") + " && cat \"$t\"; r=$?; rm -f \"$t\"; exit $r; }"
	case keyserver != "" && id == "":
		return playbooks.Result{}, fmt.Errorf("%w: keyserver needs id", playbooks.ErrArgs)
	case state == "present" && keyserver == "":
		return playbooks.Result{}, fmt.Errorf("%w: apt_key needs one of data, file, url or keyserver", playbooks.ErrArgs)
	}
	gpg := "gpg --batch --no-tty --no-default-keyring --homedir \"$h\""
	rings := "--keyring /etc/apt/trusted.gpg $(for k in /etc/apt/trusted.gpg.d/*.gpg; do [ -f \"$k\" ] && printf -- '--keyring %s ' \"$k\"; done)"
	if keyring != "" {
		rings = "--keyring " + q(keyring)
	}
	probe := "export LC_ALL=C\ncommand -v gpg >/dev/null || { echo 'gpg not found on the host (install gnupg)' >&2; exit 127; }\n" +
		"h=$(mktemp -d) || exit 1\ntrap 'rm -rf \"$h\"' EXIT\n"
	if id == "" && source != "" {
		probe += "echo \"id=$(" + source + " | " + gpg + " --with-colons --show-keys 2>/dev/null | awk -F: '$1==\"fpr\"{print $10; exit}')\"\n"
	}
	probe += "echo \"have=$(" + gpg + " " + rings + " --with-colons --list-keys 2>/dev/null | awk -F: '$1==\"fpr\"{print $10}' | tr '\\n' ' ')\"\n"
	o, err := runOK(ctx, t, "reading APT keys", probe, nil)
	if err != nil {
		return playbooks.Result{}, err
	}
	f := fields(o.stdout)
	if id == "" {
		id = f["id"]
	}
	if id == "" {
		return playbooks.Result{Failed: true, Msg: "could not read a key id from the key given"}, nil
	}
	present := false
	for _, fpr := range strings.Fields(f["have"]) {
		if strings.HasSuffix(fpr, id) {
			present = true
		}
	}
	res := playbooks.Result{Data: map[string]any{"id": id, "fp": id, "key_id": id}}
	if present == (state == "present") {
		return res, nil
	}
	target := "apt-key add -"
	if keyring != "" {
		target = gpg + " --keyring " + q(keyring) + " --import"
	}
	apply := "h=$(mktemp -d) || exit 1\ntrap 'rm -rf \"$h\"' EXIT\n"
	switch {
	case state == "absent" && keyring != "":
		apply += gpg + " --keyring " + q(keyring) + " --yes --delete-keys " + q(id)
	case state == "absent":
		apply += "apt-key del " + q(id)
	case source != "":
		apply += source + " | " + target
	default:
		apply += gpg + " --keyserver " + q(keyserver) + " --recv-keys " + q(id) + " && " + gpg + " --export " + q(id) + " | " + target
	}
	return res, t.Change(fmt.Sprintf("%s APT key %s", map[bool]string{true: "add", false: "remove"}[state == "present"], id), func() error {
		_, err := runOK(ctx, t, "apt_key "+id, "export LC_ALL=C APT_KEY_DONT_WARN_ON_DANGEROUS_USAGE=1\n"+apply, nil)
		return err
	})
}
