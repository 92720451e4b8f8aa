package hostmods_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"

	"orch/internal/shell"
	"orch/playbooks"
)

// TestRPMKeyWithRPM imports and removes a real OpenPGP key (made here with gpg) with the
// real rpm, into an rpm database of its own (Debian's rpm keeps it in $HOME/.rpmdb: every
// command runs with HOME set to the test's directory); the key comes from a local HTTP
// server, as geerlingguy's roles give a URL.
func TestRPMKeyWithRPM(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts real servers / drives real tools")
	}
	for _, bin := range []string{"rpm", "gpg"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed", bin)
		}
	}
	h := newHarness(t)
	// outside h.dir, which converge fingerprints: rpm creates its database on the first query
	home, gnupg := t.TempDir(), t.TempDir()
	t.Cleanup(func() { _ = exec.Command("gpgconf", "--homedir", gnupg, "--kill", "gpg-agent").Run() })
	gen := exec.Command("gpg", "--batch", "--passphrase", "", "--quick-gen-key", "Orch Test <test@example.invalid>", "ed25519", "sign", "never")
	gen.Env = append(os.Environ(), "GNUPGHOME="+gnupg)
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("gpg --quick-gen-key: %v\n%s", err, out)
	}
	exp := exec.Command("gpg", "--batch", "--armor", "--export")
	exp.Env = append(os.Environ(), "GNUPGHOME="+gnupg)
	key, err := exp.Output()
	if err != nil || !strings.Contains(string(key), "BEGIN PGP PUBLIC KEY BLOCK") {
		t.Fatalf("gpg --export: %v", err)
	}
	fpr := exec.Command("sh", "-c", "gpg --with-colons --fingerprint | awk -F: '$1==\"fpr\"{print $10; exit}'")
	fpr.Env = append(os.Environ(), "GNUPGHOME="+gnupg)
	fp, _ := fpr.Output()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(key) }))
	t.Cleanup(srv.Close)
	h.wrap = func(cmd string) string { return "export HOME=" + shell.Quote(home) + "\n" + cmd }
	imported := func() string {
		out, _ := exec.Command("sh", "-c", "HOME="+shell.Quote(home)+" rpm -q gpg-pubkey").CombinedOutput()
		return strings.TrimSpace(string(out))
	}
	h.converge("rpm_key:\n  key: " + srv.URL + "/gpgkey\n  state: present\n  fingerprint: " + strings.TrimSpace(string(fp)))
	short := strings.ToLower(strings.TrimSpace(string(fp))[32:])
	if !strings.HasPrefix(imported(), "gpg-pubkey-"+short) {
		t.Fatalf("rpm -q gpg-pubkey: %q, want gpg-pubkey-%s", imported(), short)
	}
	keyFile := h.write("key.asc", string(key))
	if o := h.run("rpm_key: key="+keyFile, false, false); o.status != playbooks.StatusOK {
		t.Fatalf("the same key from a file: %s\n%s", o.status, o.out)
	}
	if o := h.run("rpm_key: key="+keyFile+" fingerprint=0000000000000000000000000000000000000000", false, false); o.status != playbooks.StatusFailed {
		t.Fatalf("a wrong fingerprint: %s", o.status)
	}
	h.converge("rpm_key: key=" + short + " state=absent")
	if got := imported(); strings.Contains(got, short) {
		t.Fatalf("key not removed: %q", got)
	}
}
