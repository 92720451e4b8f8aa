package hostmods_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"orch/playbooks"
)

// TestDeb822Repository writes geerlingguy.nodejs's and geerlingguy.docker's repositories
// (ansible-core 2.14 here predates the module: the expected text is Ansible 2.15's format,
// fields in its order) into copies of /etc/apt/sources.list.d and /etc/apt/keyrings mounted
// over them, with the signing key served by a local HTTP server.
func TestDeb822Repository(t *testing.T) {
	key := "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBFake\n-----END PGP PUBLIC KEY BLOCK-----\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(key)) }))
	t.Cleanup(srv.Close)
	h, dirs := bindHarness(t, []string{"curl"}, "/etc/apt/sources.list.d", "/etc/apt/keyrings")
	h.converge("deb822_repository:\n  name: nodesource_20.x\n  uris: https://deb.nodesource.com/node_20.x\n  types: deb\n  suites: nodistro\n  components: main\n  signed_by: " + srv.URL + "/nodesource.gpg.key\n  state: present")
	got, err := os.ReadFile(filepath.Join(dirs[0], "nodesource-20x.sources"))
	if err != nil {
		t.Fatal(err)
	}
	want := "Components: main\nX-Repolib-Name: nodesource_20.x\nSigned-By: /etc/apt/keyrings/nodesource-20x.asc\nSuites: nodistro\nTypes: deb\nURIs: https://deb.nodesource.com/node_20.x\n"
	if string(got) != want {
		t.Fatalf("sources file:\n%s\nwant:\n%s", got, want)
	}
	if k, _ := os.ReadFile(filepath.Join(dirs[1], "nodesource-20x.asc")); string(k) != key {
		t.Fatalf("key file: %q", k)
	}
	// an inline key is written into the file as a multi-line field
	h.converge("deb822_repository:\n  name: docker\n  types: [deb]\n  uris: https://download.docker.com/linux/debian\n  suites: bookworm\n  components: stable\n  architectures: amd64\n  signed_by: |\n    " + strings.ReplaceAll(strings.TrimSpace(key), "\n", "\n    ") + "\n")
	got, _ = os.ReadFile(filepath.Join(dirs[0], "docker.sources"))
	if !strings.Contains(string(got), "Signed-By:\n    -----BEGIN PGP PUBLIC KEY BLOCK-----\n    .\n    mQINBFake\n") {
		t.Fatalf("inline key:\n%s", got)
	}
	h.converge("deb822_repository:\n  name: nodesource_20.x\n  state: absent")
	if _, err := os.Stat(filepath.Join(dirs[1], "nodesource-20x.asc")); !os.IsNotExist(err) {
		t.Fatalf("key not removed: %v", err)
	}
	if o := h.run("deb822_repository:\n  name: x\n  types: rpm", false, false); o.status != playbooks.StatusFailed {
		t.Fatalf("types rpm: %s", o.status)
	}
}
