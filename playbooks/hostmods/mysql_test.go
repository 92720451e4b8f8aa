package hostmods_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"orch/playbooks"
)

// mariadb is a real MariaDB server started for one test: its own data directory, a unix
// socket and no network; root logs in through unix_socket authentication (this test runs
// as root), as on a Debian host after apt-get install mariadb-server.
type mariadb struct {
	socket string
}

func startMariaDB(t *testing.T) *mariadb {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: starts real servers / drives real tools")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root (MariaDB's unix_socket login as root)")
	}
	for _, bin := range []string{"mariadbd", "mariadb-install-db", "mysql"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed (scripts/install-deps.sh installs mariadb-server)", bin)
		}
	}
	dir, err := os.MkdirTemp("", "mariadb-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	data := filepath.Join(dir, "data")
	if out, err := exec.Command("mariadb-install-db", "--no-defaults", "--user=root", "--datadir="+data,
		"--auth-root-authentication-method=socket", "--skip-test-db").CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	m := &mariadb{socket: filepath.Join(dir, "sock")}
	cmd := exec.Command("mariadbd", "--no-defaults", "--user=root", "--datadir="+data, "--socket="+m.socket,
		"--skip-networking", "--pid-file="+filepath.Join(dir, "pid"), "--log-error="+filepath.Join(dir, "err.log"),
		"--innodb-buffer-pool-size=16M", "--log-bin="+filepath.Join(dir, "binlog"), "--server-id=1")
	server{name: "mariadbd", log: filepath.Join(dir, "err.log"), stop: syscall.SIGTERM, grace: 30 * time.Second,
		within: 60 * time.Second, ready: func() error {
			if out, err := exec.Command("mysql", "--socket="+m.socket, "-e", "SELECT 1").CombinedOutput(); err != nil {
				return &mysqlErr{string(out)}
			}
			return nil
		}}.start(t, cmd)
	return m
}

type mysqlErr struct{ s string }

func (e *mysqlErr) Error() string { return e.s }

// sql runs a query directly (not through the modules) and returns its output.
func (m *mariadb) sql(t *testing.T, q string) string {
	t.Helper()
	out, err := exec.Command("mysql", "--socket="+m.socket, "--batch", "--skip-column-names", "-e", q).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", q, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestMySQLModulesOnMariaDB runs mysql_db, mysql_user and mysql_replication against a real
// MariaDB, with the arguments the corpus's playbooks use (ansible-examples' wordpress and
// lamp roles, geerlingguy.mysql): each converges, and what the server holds is read back.
func TestMySQLModulesOnMariaDB(t *testing.T) {
	m := startMariaDB(t)
	h := newHarness(t)
	login := "\n  login_unix_socket: " + m.socket
	h.converge("mysql_db:\n  name: wordpress\n  state: present" + login)
	if got := m.sql(t, "SHOW DATABASES LIKE 'wordpress'"); got != "wordpress" {
		t.Fatalf("database not created: %q", got)
	}
	h.converge("mysql_db:\n  name: wordpress\n  encoding: utf8mb4\n  collation: utf8mb4_unicode_ci" + login)
	if got := m.sql(t, "SELECT DEFAULT_CHARACTER_SET_NAME FROM INFORMATION_SCHEMA.SCHEMATA WHERE SCHEMA_NAME='wordpress'"); got != "utf8mb4" {
		t.Fatalf("encoding not altered: %q", got)
	}

	// ansible-examples' wordpress role, in key=value form
	h.converge("mysql_user: name=wp password=\"s3cr'et\" priv=wordpress.*:ALL host='localhost' state=present login_unix_socket=" + m.socket)
	if got := m.sql(t, "SHOW GRANTS FOR 'wp'@'localhost'"); !strings.Contains(got, "GRANT ALL PRIVILEGES ON `wordpress`.* TO `wp`@`localhost`") {
		t.Fatalf("grants: %s", got)
	}
	if out, err := exec.Command("mysql", "--socket="+m.socket, "--user=wp", "--password=s3cr'et", "-e", "SELECT 1").CombinedOutput(); err != nil {
		t.Fatalf("wp cannot log in with its password: %v\n%s", err, out)
	}
	// a new password, then other privileges (revoked and granted), then append_privs
	h.converge("mysql_user:\n  name: wp\n  password: other\n  priv: 'wordpress.*:ALL'" + login)
	h.converge("mysql_user:\n  name: wp\n  password: other\n  priv: '*.*:ALL,GRANT'" + login)
	got := m.sql(t, "SHOW GRANTS FOR 'wp'@'localhost'")
	if !strings.Contains(got, "GRANT ALL PRIVILEGES ON *.* TO `wp`@`localhost`") || !strings.Contains(got, "WITH GRANT OPTION") || strings.Contains(got, "`wordpress`") {
		t.Fatalf("grants after *.*:ALL,GRANT: %s", got)
	}
	h.converge("mysql_user:\n  name: repl\n  host: '%'\n  password: r\n  priv: '*.*:REPLICATION SLAVE,REPLICATION CLIENT'" + login)
	h.converge("mysql_user:\n  name: repl\n  host: '%'\n  password: r\n  priv: 'wordpress.*:SELECT'\n  append_privs: true" + login)
	if got := m.sql(t, "SHOW GRANTS FOR 'repl'@'%'"); !strings.Contains(got, "REPLICATION SLAVE, BINLOG MONITOR ON *.*") || !strings.Contains(got, "GRANT SELECT ON `wordpress`.*") {
		t.Fatalf("append_privs: %s", got)
	}
	// (MariaDB shows REPLICATION CLIENT as BINLOG MONITOR since 10.5: compared as the same)
	// update_password on_create keeps a changed password
	if o := h.run("mysql_user:\n  name: repl\n  host: '%'\n  password: new\n  update_password: on_create"+login, false, false); o.status != playbooks.StatusOK {
		t.Fatalf("on_create: %s\n%s", o.status, o.out)
	}

	h.converge("mysql_user: user=wp state=absent login_unix_socket=" + m.socket)
	if got := m.sql(t, "SELECT COUNT(*) FROM mysql.user WHERE User='wp'"); got != "0" {
		t.Fatalf("user not dropped: %s", got)
	}
	h.converge("mysql_db:\n  name: wordpress\n  state: absent" + login)

	// geerlingguy.mysql's replication checks: a server with a binary log is a primary, not a replica
	o := h.run("mysql_replication:\n  mode: getprimary"+login, false, false)
	if o.status != playbooks.StatusOK || o.res.Data["Is_Primary"] != true || !strings.HasPrefix(o.res.Data["File"].(string), "binlog.") {
		t.Fatalf("getprimary: %s %v\n%s", o.status, o.res.Data, o.out)
	}
	o = h.run("mysql_replication:\n  mode: getslave"+login, false, false)
	if o.status != playbooks.StatusOK || o.res.Data["Is_Replica"] != false || o.res.Data["Is_Slave"] != false {
		t.Fatalf("getreplica: %s %v\n%s", o.status, o.res.Data, o.out)
	}
	if o := h.run("mysql_replication:\n  mode: stopreplica"+login, false, false); o.status != playbooks.StatusOK || o.res.Msg != "Replica already stopped" {
		t.Fatalf("stopreplica on a stopped replica: %s %q", o.status, o.res.Msg)
	}
	change := "mysql_replication:\n  mode: changeprimary\n  master_host: 192.0.2.1\n  master_user: repl\n  master_password: pw\n  master_log_file: binlog.000001\n  master_log_pos: 4" + login
	if o := h.run(change, true, false); o.status != playbooks.StatusChanged || m.sql(t, "SHOW SLAVE STATUS") != "" {
		t.Fatalf("changeprimary --check: %s, replica status %q", o.status, m.sql(t, "SHOW SLAVE STATUS"))
	}
	if o := h.run(change, false, false); o.status != playbooks.StatusChanged || strings.Contains(o.out+strings.Join(o.res.Changes, ""), "pw") {
		t.Fatalf("changeprimary: %s (the password must not show)\n%s %q", o.status, o.out, o.res.Changes)
	}
	o = h.run("mysql_replication:\n  mode: getreplica"+login, false, false)
	if o.res.Data["Is_Replica"] != true || o.res.Data["Master_Host"] != "192.0.2.1" || o.res.Data["Read_Master_Log_Pos"] != 4 {
		t.Fatalf("getreplica after changeprimary: %v", o.res.Data)
	}
	h.run("mysql_replication:\n  mode: resetreplicaall"+login, false, false)
	if got := m.sql(t, "SHOW SLAVE STATUS"); got != "" {
		t.Fatalf("resetreplicaall left %q", got)
	}
}

// TestMySQLUserErrors: a wrong socket fails naming the connection, a bad priv is refused
// naming the argument.
func TestMySQLUserErrors(t *testing.T) {
	if _, err := exec.LookPath("mysql"); err != nil {
		t.Skip("mysql client not installed")
	}
	h := newHarness(t)
	o := h.run("mysql_db:\n  name: x\n  login_unix_socket: /nonexistent/sock", false, false)
	if o.status != playbooks.StatusFailed || !strings.Contains(o.res.Msg, "unable to connect to database") {
		t.Fatalf("bad socket: %s %q", o.status, o.res.Msg)
	}
	o = h.run("mysql_user:\n  name: x\n  priv: 'nodot:ALL'", false, false)
	if o.status != playbooks.StatusFailed || !strings.Contains(o.res.Msg, `"priv"`) {
		t.Fatalf("bad priv: %s %q", o.status, o.res.Msg)
	}
}
