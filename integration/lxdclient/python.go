package lxdclient

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"orch/integration/agenttest"
)

// SystemPython is the interpreter python3-pylxd is installed for (Debian's, not a
// pyenv shim that may come first on PATH).
const SystemPython = "/usr/bin/python3"

// NeedPylxd skips the test unless the system python imports pylxd.
func NeedPylxd(tb testing.TB) {
	tb.Helper()
	if err := exec.Command(SystemPython, "-c", "import pylxd").Run(); err != nil {
		tb.Skipf("%s cannot import pylxd (%v): install Debian's python3-pylxd (scripts/install-deps.sh)", SystemPython, err)
	}
}

// Python runs a python script with the system interpreter; its environment holds
// LXD_URL (a's https URL), LXD_CERT and LXD_KEY (the client's certificate and key, which
// a must already trust, e.g. after AddRemoteTrusted) so that the script can connect with
// pylxd.Client(endpoint=LXD_URL, cert=(LXD_CERT, LXD_KEY), verify=False). REQUESTS_CA_BUNDLE
// and CURL_CA_BUNDLE are left out: requests would let them override verify=False.
func (c *LXC) Python(a *agenttest.Agent, script string) Result {
	c.tb.Helper()
	NeedPylxd(c.tb)
	path := filepath.Join(c.tb.TempDir(), "script.py")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		c.tb.Fatal(err)
	}
	var env []string
	for _, kv := range c.Env() {
		// requests lets these override verify=False (merge_environment_settings).
		if !strings.HasPrefix(kv, "REQUESTS_CA_BUNDLE=") && !strings.HasPrefix(kv, "CURL_CA_BUNDLE=") {
			env = append(env, kv)
		}
	}
	env = append(env, "LXD_URL="+URL(a),
		"LXD_CERT="+filepath.Join(c.Conf, "client.crt"), "LXD_KEY="+filepath.Join(c.Conf, "client.key"))
	res, err := run(env, "", SystemPython, path)
	if err != nil {
		c.tb.Fatal(err)
	}
	return res
}
