package hostmods_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"orch/playbooks"
)

// startPostgres runs a real PostgreSQL server for one test (its own cluster, a unix socket
// in the test's directory, no TCP), as the OS user postgres: trust authentication for
// local connections.
func startPostgres(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: starts real servers / drives real tools")
	}
	bin := "/usr/lib/postgresql/15/bin"
	if matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres"); len(matches) > 0 {
		bin = filepath.Dir(matches[len(matches)-1])
	}
	if _, err := os.Stat(filepath.Join(bin, "postgres")); err != nil || os.Geteuid() != 0 {
		t.Skip("needs root and the postgresql package (postgres server binaries)")
	}
	if _, err := exec.LookPath("psql"); err != nil {
		t.Skip("psql not installed")
	}
	dir, err := os.MkdirTemp("", "pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if out, err := exec.Command("chown", "postgres:", dir).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v\n%s", err, out)
	}
	data := filepath.Join(dir, "data")
	if out, err := exec.Command("runuser", "-u", "postgres", "--", filepath.Join(bin, "initdb"), "-D", data, "--auth=trust", "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	cmd := exec.Command("runuser", "-u", "postgres", "--", filepath.Join(bin, "postgres"), "-D", data, "-k", dir, "-c", "listen_addresses=", "-c", "shared_buffers=8MB")
	logf, _ := os.Create(filepath.Join(dir, "log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// SIGINT to the group: postgres's fast shutdown, its children included.
	server{name: "postgres", log: filepath.Join(dir, "log"), stop: syscall.SIGINT, group: true, grace: 30 * time.Second,
		within: 60 * time.Second, ready: func() error {
			if out, err := exec.Command("psql", "-h", dir, "-U", "postgres", "-c", "SELECT 1").CombinedOutput(); err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		}}.start(t, cmd)
	return dir
}

func psql(t *testing.T, sock, db, q string) string {
	t.Helper()
	out, err := exec.Command("psql", "-X", "-A", "-t", "-h", sock, "-U", "postgres", "-d", db, "-c", q).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", q, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestPostgreSQLModules runs ansible-examples' postgresql.yml tasks and geerlingguy's
// postgresql role's forms against a real PostgreSQL: each converges and the server holds
// what was asked.
func TestPostgreSQLModules(t *testing.T) {
	sock := startPostgres(t)
	h := newHarness(t)
	login := " login_unix_socket=" + sock
	h.converge("postgresql_db: name=myapp" + login)
	h.converge("postgresql_db:\n  name: app2\n  encoding: UTF-8\n  lc_collate: C.UTF-8\n  lc_ctype: C.UTF-8\n  template: template0\n  owner: postgres\n  login_unix_socket: " + sock)
	if got := psql(t, sock, "postgres", "SELECT datname FROM pg_database WHERE datname IN ('myapp','app2') ORDER BY 1"); got != "app2\nmyapp" {
		t.Fatalf("databases: %q", got)
	}
	h.converge("postgresql_user: db=myapp name=django password=mysupersecretpassword priv=ALL" + login)
	if got := psql(t, sock, "postgres", "SELECT has_database_privilege('django', 'myapp', 'CREATE'), rolcanlogin FROM pg_roles WHERE rolname='django'"); got != "t|t" {
		t.Fatalf("django: %q", got)
	}
	if out, err := exec.Command("sh", "-c", "PGPASSWORD=mysupersecretpassword psql -h "+sock+" -U django -d myapp -c 'SELECT 1'").CombinedOutput(); err != nil {
		t.Fatalf("django cannot log in: %v\n%s", err, out)
	}
	// the SCRAM verifier is recomputed: the same password is no change, another one is
	if o := h.run("postgresql_user: name=django password=mysupersecretpassword"+login, false, false); o.status != playbooks.StatusOK {
		t.Fatalf("same password: %s %q", o.status, o.res.Changes)
	}
	h.converge("postgresql_user: name=django password=other" + login)
	h.converge("postgresql_user: name=django role_attr_flags=CREATEDB,NOSUPERUSER" + login)
	h.converge("postgresql_user: name=django role_attr_flags=NOSUPERUSER,NOCREATEDB" + login)
	if got := psql(t, sock, "postgres", "SELECT rolcreatedb FROM pg_roles WHERE rolname='django'"); got != "f" {
		t.Fatalf("NOCREATEDB: %q", got)
	}
	h.converge("postgresql_privs: db=myapp role=PUBLIC type=database priv=ALL state=absent" + login)
	if got := psql(t, sock, "postgres", "SELECT has_database_privilege('public', 'myapp', 'CONNECT')"); got != "f" {
		t.Fatalf("PUBLIC still connects: %q", got)
	}
	psql(t, sock, "myapp", "CREATE TABLE items (id int)")
	h.converge("postgresql_privs:\n  db: myapp\n  roles: django\n  privs: SELECT,INSERT\n  type: table\n  objs: ALL_IN_SCHEMA\n  login_unix_socket: " + sock)
	if got := psql(t, sock, "myapp", "SELECT has_table_privilege('django', 'public.items', 'INSERT')"); got != "t" {
		t.Fatalf("table privilege: %q", got)
	}
	// a role holding privileges cannot be dropped (the module fails as PostgreSQL and Ansible's do)
	if o := h.run("postgresql_user: name=django state=absent db=postgres"+login, false, false); o.status != playbooks.StatusFailed || !strings.Contains(o.res.Msg, "cannot be dropped") {
		t.Fatalf("dropping a role with privileges: %s %q", o.status, o.res.Msg)
	}
	psql(t, sock, "myapp", "DROP OWNED BY django")
	h.converge("postgresql_user: name=django state=absent db=postgres" + login)
	h.converge("postgresql_db: name=app2 state=absent" + login)
	o := h.run("postgresql_db: name=myapp encoding=LATIN1"+login, false, false)
	if o.status != playbooks.StatusFailed || !strings.Contains(o.res.Msg, "already exist with encoding") {
		t.Fatalf("another encoding: %s %q", o.status, o.res.Msg)
	}
}
