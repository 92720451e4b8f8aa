package hostmods

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"orch/playbooks"
)

var (
	rpmKeyID  = regexp.MustCompile(`^(0[xX])?[0-9a-fA-F]{8}([0-9a-fA-F]{8})?$`)
	urlScheme = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*://`)
)

// rpmKeyModule is ansible.builtin.rpm_key: the key (a URL downloaded on the host, a file
// on the host, or for state absent a key id) is read with gpg for its id, rpm's imported
// gpg-pubkey packages are read for theirs (one command), then `rpm --import` or `rpm
// --erase --allmatches gpg-pubkey-ID` runs. fingerprint, when given, must match the key's.
func rpmKeyModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("rpm_key", a, "key", "state", "validate_certs", "fingerprint"); err != nil {
		return playbooks.Result{}, err
	}
	key, err := a.Required("key")
	if err != nil {
		return playbooks.Result{}, err
	}
	state, _ := a.String("state", "present")
	if err := choice("state", state, "present", "absent"); err != nil {
		return playbooks.Result{}, err
	}
	fingerprints, err := listArg(a, "fingerprint")
	if err != nil {
		return playbooks.Result{}, err
	}
	validate, err := a.Bool("validate_certs", true)
	if err != nil {
		return playbooks.Result{}, err
	}
	gpg := "gpg --no-tty --batch --with-colons --fixed-list-mode"
	var b strings.Builder
	b.WriteString("export LC_ALL=C\ncommand -v rpm >/dev/null || { echo 'rpm not found on the host' >&2; exit 127; }\n" +
		"command -v gpg >/dev/null || { echo 'gpg not found on the host (install gnupg2)' >&2; exit 127; }\n" +
		"h=$(mktemp -d) || exit 1; trap 'rm -rf \"$h\"' EXIT; export GNUPGHOME=\"$h\"\n")
	keyFile, dl := "", ""
	isID := rpmKeyID.MatchString(key)
	switch {
	case urlScheme.MatchString(key):
		dl = downloadCmd(key, "$h/key")
		if !validate {
			dl = strings.Replace(strings.Replace(dl, "curl -fsSL", "curl -fsSLk", 1), "wget -q", "wget -q --no-check-certificate", 1)
		}
		b.WriteString(dl + " || { echo 'failed to download " + key + "' >&2; exit 4; }\n")
		keyFile = "$h/key"
	case isID:
		if state == "present" {
			return playbooks.Result{Failed: true, Msg: "Not a public key: " + key}, nil
		}
	default:
		b.WriteString("[ -r " + q(key) + " ] || { echo 'key file " + key + " does not exist on the host' >&2; exit 2; }\n")
		keyFile = q(key)
	}
	if keyFile != "" {
		fmt.Fprintf(&b, "%s --import --import-options show-only --dry-run --with-fingerprint %s 2>/dev/null | awk -F: '$1==\"pub\"{print \"keyid=\" $5} $1==\"fpr\"{print \"fpr=\" $10}'\n",
			gpg, strings.ReplaceAll(keyFile, "$h", "\"$h\""))
	}
	b.WriteString("if rpm -q gpg-pubkey >/dev/null 2>&1; then rpm -q gpg-pubkey --qf '%{description}\\n' | " + gpg + " --import-options show-only --import 2>/dev/null | awk -F: '$1==\"pub\"{print \"have=\" $5}'; fi\n")
	o, err := runOK(ctx, t, "reading rpm keys", b.String(), nil)
	if err != nil {
		return playbooks.Result{Failed: true, Msg: err.Error()}, nil
	}
	var keyid string
	var fprs, have []string
	for _, l := range strings.Split(o.stdout, "\n") {
		k, v, _ := strings.Cut(l, "=")
		switch k {
		case "keyid":
			if keyid == "" {
				keyid = strings.ToUpper(v)
			}
		case "fpr":
			fprs = append(fprs, strings.ToUpper(v))
		case "have":
			have = append(have, strings.ToUpper(v))
		}
	}
	if isID {
		keyid = strings.ToUpper(strings.TrimPrefix(strings.TrimPrefix(key, "0x"), "0X"))
	}
	if keyid == "" {
		return playbooks.Result{Failed: true, Msg: "Not a public key: " + key}, nil
	}
	for _, f := range fingerprints {
		if !containsStr(fprs, strings.ToUpper(strings.ReplaceAll(f, " ", ""))) {
			return playbooks.Result{Failed: true, Msg: fmt.Sprintf("The specified fingerprint, '%s', does not match any key fingerprints in '%s'", f, key)}, nil
		}
	}
	imported := false
	for _, h := range have {
		if strings.HasSuffix(h, keyid) || strings.HasSuffix(keyid, h) {
			imported = true
		}
	}
	if imported == (state == "present") {
		return playbooks.Result{}, nil
	}
	short := strings.ToLower(keyid[len(keyid)-8:])
	var cmd string
	if state == "present" {
		cmd = "rpm --import " + q(key)
		if keyFile == "$h/key" {
			cmd = "h=$(mktemp -d) || exit 1; trap 'rm -rf \"$h\"' EXIT\n" + dl + " || exit 4\nrpm --import \"$h/key\""
		}
	} else {
		cmd = "rpm --erase --allmatches gpg-pubkey-" + short
	}
	return playbooks.Result{}, t.Change(map[string]string{"present": "import", "absent": "remove"}[state]+" rpm key "+keyid, func() error {
		_, err := runOK(ctx, t, "rpm key "+keyid, cmd, nil)
		return err
	})
}
