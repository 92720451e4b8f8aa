package hostmods

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"orch/playbooks"
)

// mysqlLoginArgs are the connection arguments every community.mysql module takes.
var mysqlLoginArgs = []string{"login_user", "login_password", "login_host", "login_port", "login_unix_socket",
	"config_file", "connect_timeout", "check_implicit_admin", "client_cert", "client_key", "ca_cert", "check_hostname"}

// sqlEndMarker separates, on a mysql command's stdin, the client option file (login
// credentials, never on the command line) from the SQL.
const sqlEndMarker = "#--orch-sql--"

// mysqlClient is how a community.mysql module reaches the server: the mysql command-line
// client on the host, with the login arguments in a temporary option file.
type mysqlClient struct {
	opts string // option file content: [client] and the login settings
	args []string
}

// newMysqlClient reads the login arguments. Without login_user the client's defaults
// apply (~/.my.cnf, then the unix socket as the OS user: root through MariaDB's
// unix_socket authentication), as the Python modules fall back to config_file.
func newMysqlClient(a playbooks.Args) (mysqlClient, error) {
	var c mysqlClient
	var b strings.Builder
	if cf, _ := a.String("config_file", ""); cf != "" && cf != "~/.my.cnf" {
		fmt.Fprintf(&b, "!include %s\n", cf)
	}
	b.WriteString("[client]\n")
	for _, f := range [][2]string{{"login_user", "user"}, {"login_password", "password"}, {"login_host", "host"},
		{"login_port", "port"}, {"login_unix_socket", "socket"}, {"connect_timeout", "connect-timeout"},
		{"client_cert", "ssl-cert"}, {"client_key", "ssl-key"}, {"ca_cert", "ssl-ca"}} {
		v, err := a.String(f[0], "")
		if err != nil {
			return c, err
		}
		if v != "" {
			if strings.ContainsAny(v, "\n") {
				return c, fmt.Errorf("%w %q: a newline is not allowed", playbooks.ErrArgs, f[0])
			}
			fmt.Fprintf(&b, "%s=%s\n", f[1], optQuote(v))
		}
	}
	c.opts = b.String()
	return c, nil
}

// optQuote quotes a value for a MySQL option file.
func optQuote(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}

// script is the shell script running the mysql client with flags on the SQL given on stdin
// after the option file; see stdin.
func (c mysqlClient) script(flags ...string) string {
	return "command -v mysql >/dev/null 2>&1 || { echo 'the mysql client (mysql or mariadb) is not installed on the host' >&2; exit 127; }\n" +
		"umask 077; f=$(mktemp) || exit 1; trap 'rm -f \"$f\"' EXIT\n" +
		"while IFS= read -r l; do [ \"$l\" = '" + sqlEndMarker + "' ] && break; printf '%s\\n' \"$l\" >>\"$f\"; done\n" +
		"mysql --defaults-extra-file=\"$f\" " + shellJoin(flags) + "\n"
}

func (c mysqlClient) stdin(sql string) *strings.Reader {
	return strings.NewReader(c.opts + sqlEndMarker + "\n" + sql)
}

// query runs SQL and returns its rows (tab-separated columns, no header).
func (c mysqlClient) query(ctx context.Context, t *playbooks.TaskContext, sql string) ([][]string, error) {
	o, err := run(ctx, t, c.script("--batch", "--skip-column-names", "--raw"), c.stdin(sql))
	if err != nil {
		return nil, err
	}
	if o.rc != 0 {
		return nil, mysqlErr(o)
	}
	var rows [][]string
	for _, l := range strings.Split(strings.TrimRight(o.stdout, "\n"), "\n") {
		if l != "" {
			rows = append(rows, strings.Split(l, "\t"))
		}
	}
	return rows, nil
}

// vertical runs one statement whose result is shown as field: value lines (SHOW ...
// STATUS) and returns its first row's fields; nil when it returned no row.
func (c mysqlClient) vertical(ctx context.Context, t *playbooks.TaskContext, sql string) (map[string]string, error) {
	o, err := run(ctx, t, c.script("--vertical"), c.stdin(sql))
	if err != nil {
		return nil, err
	}
	if o.rc != 0 {
		return nil, mysqlErr(o)
	}
	var row map[string]string
	for _, l := range strings.Split(o.stdout, "\n") {
		if strings.HasPrefix(l, "***") {
			if row != nil {
				break
			}
			row = map[string]string{}
			continue
		}
		if k, v, ok := strings.Cut(l, ": "); ok && row != nil {
			row[strings.TrimSpace(k)] = v
		} else if k, ok := strings.CutSuffix(strings.TrimSpace(l), ":"); ok && row != nil {
			row[k] = ""
		}
	}
	return row, nil
}

// exec runs statements for a change.
func (c mysqlClient) exec(ctx context.Context, t *playbooks.TaskContext, sql string) error {
	o, err := run(ctx, t, c.script("--batch"), c.stdin(sql))
	if err != nil {
		return err
	}
	if o.rc != 0 {
		return mysqlErr(o)
	}
	return nil
}

func mysqlErr(o output) error {
	if o.rc == 127 {
		return fmt.Errorf("%w: %s", ErrUnsupported, strings.TrimSpace(o.stderr))
	}
	return fmt.Errorf("mysql: %w (exit code %d): %s", ErrHost, o.rc, lastLines(strings.TrimSpace(o.stderr), 5))
}

// sqlString quotes a MySQL string literal.
func sqlString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\x00", `\0`, "\n", `\n`, "\r", `\r`).Replace(s) + "'"
}

// sqlIdent quotes a MySQL identifier.
func sqlIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// mysqlDBModule is community.mysql.mysql_db: state present creates the databases (with
// encoding and collation) that SCHEMATA lacks and alters those whose character set or
// collation differ from the asked ones; absent drops them; dump and import run mysqldump
// and mysql on target (always changed, as in Ansible).
func mysqlDBModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("mysql_db", a, append([]string{"name", "db", "state", "collation", "encoding", "target",
		"single_transaction", "quick", "ignore_tables", "hex_blob", "force", "master_data", "skip_lock_tables",
		"dump_extra_args", "use_shell", "unsafe_login_password", "restrict_config_file", "sql_log_bin", "chdir", "pipefail"}, mysqlLoginArgs...)...); err != nil {
		return playbooks.Result{}, err
	}
	names, err := listArg(a, "name", "db")
	if err != nil {
		return playbooks.Result{}, err
	}
	if len(names) == 0 {
		return playbooks.Result{}, fmt.Errorf("%w \"name\": required", playbooks.ErrArgs)
	}
	state, _ := a.String("state", "present")
	if err := choice("state", state, "present", "absent", "dump", "import"); err != nil {
		return playbooks.Result{}, err
	}
	enc, _ := a.String("encoding", "")
	coll, _ := a.String("collation", "")
	target, _ := a.String("target", "")
	c, err := newMysqlClient(a)
	if err != nil {
		return playbooks.Result{}, err
	}
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = sqlString(n)
	}
	rows, err := c.query(ctx, t, "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM INFORMATION_SCHEMA.SCHEMATA WHERE SCHEMA_NAME IN ("+strings.Join(quoted, ",")+");")
	if err != nil {
		return playbooks.Result{Failed: true, Msg: "unable to connect to database: " + err.Error()}, nil
	}
	have := map[string][]string{}
	for _, r := range rows {
		if len(r) == 3 {
			have[r[0]] = r
		}
	}
	var cmds []string
	switch state {
	case "present":
		for _, n := range names {
			cur, ok := have[n]
			spec := ""
			if enc != "" {
				spec += " CHARACTER SET " + sqlString(enc)
			}
			if coll != "" {
				spec += " COLLATE " + sqlString(coll)
			}
			switch {
			case !ok:
				cmds = append(cmds, "CREATE DATABASE "+sqlIdent(n)+spec)
			case (enc != "" && !strings.EqualFold(cur[1], enc)) || (coll != "" && !strings.EqualFold(cur[2], coll)):
				cmds = append(cmds, "ALTER DATABASE "+sqlIdent(n)+spec)
			}
		}
	case "absent":
		for _, n := range names {
			if _, ok := have[n]; ok {
				cmds = append(cmds, "DROP DATABASE "+sqlIdent(n))
			}
		}
	default:
		return mysqlDumpImport(ctx, t, c, state, names, have, target)
	}
	res := playbooks.Result{Data: map[string]any{"db": strings.Join(names, ","), "db_list": toAny(names), "executed_commands": toAny(cmds)}}
	if len(cmds) == 0 {
		return res, nil
	}
	return res, t.Change(strings.Join(cmds, "; "), func() error {
		return c.exec(ctx, t, strings.Join(cmds, ";\n")+";\n")
	})
}

// mysqlDumpImport is mysql_db's dump and import states.
func mysqlDumpImport(ctx context.Context, t *playbooks.TaskContext, c mysqlClient, state string, names []string, have map[string][]string, target string) (playbooks.Result, error) {
	if target == "" {
		return playbooks.Result{}, fmt.Errorf("%w \"target\": required with state %s", playbooks.ErrArgs, state)
	}
	res := playbooks.Result{Data: map[string]any{"db": strings.Join(names, ","), "db_list": toAny(names)}}
	if state == "dump" {
		for _, n := range names {
			if _, ok := have[n]; !ok {
				return playbooks.Result{Failed: true, Msg: "Cannot dump database " + n + " - not found", Data: res.Data}, nil
			}
		}
	}
	tool, redir := "mysqldump", ">"
	argv := append([]string{"--databases"}, names...)
	if state == "import" {
		tool, redir, argv = "mysql", "<", []string{names[0]}
	}
	script := strings.Replace(c.script(argv...), "mysql --defaults-extra-file", tool+" --defaults-extra-file", 1)
	script = strings.TrimRight(script, "\n") + " " + redir + " " + q(target) + "\n"
	if state == "import" {
		// stdin carries the option file; the dump is read from target
		script = strings.Replace(script, "command -v mysql ", "[ -r "+q(target)+" ] || { echo 'target "+target+" does not exist on the host' >&2; exit 2; }\ncommand -v mysql ", 1)
	}
	return res, t.Change(state+" "+strings.Join(names, ",")+" "+redir+" "+target, func() error {
		o, err := run(ctx, t, script, c.stdin(""))
		if err != nil {
			return err
		}
		if o.rc != 0 {
			return mysqlErr(o)
		}
		return nil
	})
}

// mysqlPrivs are privileges by object ("db.table", unquoted), upper-case, GRANT for WITH
// GRANT OPTION.
type mysqlPrivs map[string][]string

// parseMysqlPriv parses mysql_user's priv: "db.tbl:P1,P2/db2.*:ALL,GRANT" or a mapping.
func parseMysqlPriv(v any) (mysqlPrivs, error) {
	out := mysqlPrivs{}
	add := func(obj, privs string) error {
		obj = strings.NewReplacer("`", "", `"`, "", "'", "").Replace(strings.TrimSpace(obj))
		if !strings.Contains(obj, ".") {
			return fmt.Errorf("%w \"priv\": %q is not db.table", playbooks.ErrArgs, obj)
		}
		var l []string
		for _, p := range strings.Split(privs, ",") {
			p = strings.ToUpper(strings.Join(strings.Fields(p), " "))
			if p == "ALL" {
				p = "ALL PRIVILEGES"
			}
			if p != "" {
				l = append(l, p)
			}
		}
		out[obj] = normPrivs(l)
		return nil
	}
	switch p := v.(type) {
	case nil:
		return nil, nil
	case string:
		for _, part := range strings.Split(p, "/") {
			if strings.TrimSpace(part) == "" {
				continue
			}
			i := strings.LastIndex(part, ":")
			if i < 0 {
				return nil, fmt.Errorf("%w \"priv\": %q lacks ':' before the privileges", playbooks.ErrArgs, part)
			}
			if err := add(part[:i], part[i+1:]); err != nil {
				return nil, err
			}
		}
	case map[string]any:
		for obj, privs := range p {
			if err := add(obj, fmt.Sprint(privs)); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("%w \"priv\": expected a string or a mapping, got %T", playbooks.ErrArgs, v)
	}
	if _, ok := out["*.*"]; !ok {
		out["*.*"] = []string{"USAGE"}
	}
	return out, nil
}

// normPrivs sorts privileges and drops USAGE next to others (it means none).
func normPrivs(l []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range l {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	if len(out) > 1 {
		out = slicesDelete(out, "USAGE")
	}
	sort.Strings(out)
	return out
}

func slicesDelete(l []string, x string) []string {
	out := l[:0]
	for _, s := range l {
		if s != x {
			out = append(out, s)
		}
	}
	return out
}

// parseGrants reads SHOW GRANTS lines into privileges.
func parseGrants(lines []string) mysqlPrivs {
	out := mysqlPrivs{}
	for _, l := range lines {
		rest, ok := strings.CutPrefix(l, "GRANT ")
		if !ok {
			continue
		}
		i := strings.Index(rest, " ON ")
		j := strings.Index(rest, " TO ")
		if i < 0 || j < i {
			continue
		}
		obj := strings.NewReplacer("`", "", `"`, "", "'", "").Replace(rest[i+4 : j])
		if strings.HasPrefix(obj, "PROCEDURE ") || strings.HasPrefix(obj, "FUNCTION ") {
			continue
		}
		var privs []string
		for _, p := range splitPrivs(rest[:i]) {
			privs = append(privs, strings.ToUpper(p))
		}
		if strings.Contains(rest[j:], "WITH GRANT OPTION") {
			privs = append(privs, "GRANT")
		}
		out[obj] = normPrivs(append(out[obj], privs...))
	}
	return out
}

// splitPrivs splits "SELECT, INSERT (`a`, `b`), UPDATE" at the commas outside parentheses.
func splitPrivs(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, r := range s {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}

// quoteObj quotes "db.table" for GRANT: `db`.`table`, * left bare.
func quoteObj(obj string) string {
	db, tbl, _ := strings.Cut(obj, ".")
	qt := func(s string) string {
		if s == "*" {
			return s
		}
		return sqlIdent(s)
	}
	return qt(db) + "." + qt(tbl)
}

// privDiff returns the statements taking account from have to want (append: only add).
func privDiff(account string, have, want mysqlPrivs, appendPrivs bool) []string {
	var cmds []string
	objs := make([]string, 0, len(have)+len(want))
	for o := range have {
		objs = append(objs, o)
	}
	for o := range want {
		if _, ok := have[o]; !ok {
			objs = append(objs, o)
		}
	}
	sort.Strings(objs)
	for _, o := range objs {
		h, w := have[o], want[o]
		if w == nil {
			if appendPrivs || (o == "*.*" && strings.Join(h, ",") == "USAGE") {
				continue
			}
			cmds = append(cmds, revokeAll(o, account, h))
			continue
		}
		if privKey(h) == privKey(w) {
			continue
		}
		if appendPrivs {
			w = missing(h, slicesDelete(append([]string{}, w...), "USAGE"))
			if len(w) == 0 {
				continue
			}
		} else if len(h) > 0 && strings.Join(h, ",") != "USAGE" {
			cmds = append(cmds, revokeAll(o, account, h))
		}
		if g := grant(o, account, w); g != "" {
			cmds = append(cmds, g)
		}
	}
	return cmds
}

// mariadbPrivAliases are privileges MariaDB shows under another name than the one granted
// (10.5 renamed REPLICATION CLIENT).
var mariadbPrivAliases = map[string]string{"REPLICATION CLIENT": "BINLOG MONITOR"}

// privKey is a privilege list compared across MariaDB's renames.
func privKey(l []string) string {
	c := make([]string, len(l))
	for i, p := range l {
		if a, ok := mariadbPrivAliases[p]; ok {
			p = a
		}
		c[i] = p
	}
	sort.Strings(c)
	return strings.Join(c, ",")
}

func missing(have, want []string) []string {
	var out []string
	for _, w := range want {
		if !containsStr(have, w) && !containsStr(have, mariadbPrivAliases[w]) {
			out = append(out, w)
		}
	}
	return out
}

func containsStr(l []string, x string) bool {
	for _, s := range l {
		if s == x {
			return true
		}
	}
	return false
}

func revokeAll(obj, account string, had []string) string {
	what := "ALL PRIVILEGES"
	if containsStr(had, "GRANT") {
		what += ", GRANT OPTION"
	}
	return "REVOKE " + what + " ON " + quoteObj(obj) + " FROM " + account
}

func grant(obj, account string, privs []string) string {
	withGrant := containsStr(privs, "GRANT")
	l := slicesDelete(append([]string{}, privs...), "GRANT")
	if len(l) == 0 {
		if !withGrant {
			return ""
		}
		l = []string{"USAGE"}
	}
	s := "GRANT " + strings.Join(l, ", ") + " ON " + quoteObj(obj) + " TO " + account
	if withGrant {
		s += " WITH GRANT OPTION"
	}
	return s
}

// mysqlUserModule is community.mysql.mysql_user: the account (name@host, or every host
// of name with host_all) is created with its password, its password changed when
// update_password is always and the stored hash differs, its privileges (priv) granted
// and revoked to match (only added with append_privs); state absent drops it.
func mysqlUserModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("mysql_user", a, append([]string{"name", "user", "host", "host_all", "password",
		"encrypted", "priv", "append_privs", "subtract_privs", "state", "update_password", "tls_requires", "plugin",
		"plugin_auth_string", "plugin_hash_string", "resource_limits", "sql_log_bin", "column_case_sensitive",
		"force_context", "session_vars", "password_expire", "password_expire_interval", "locked", "attributes", "salt"}, mysqlLoginArgs...)...); err != nil {
		return playbooks.Result{}, err
	}
	if a["name"] == nil && a["user"] == nil {
		return playbooks.Result{}, fmt.Errorf("%w \"name\": required", playbooks.ErrArgs)
	}
	name, _ := strArg(a, "", "name", "user")
	host, _ := a.String("host", "localhost")
	hostAll, err := a.Bool("host_all", false)
	if err != nil {
		return playbooks.Result{}, err
	}
	state, _ := a.String("state", "present")
	if err := choice("state", state, "present", "absent"); err != nil {
		return playbooks.Result{}, err
	}
	update, _ := a.String("update_password", "always")
	if err := choice("update_password", update, "always", "on_create", "on_new_username"); err != nil {
		return playbooks.Result{}, err
	}
	password, _ := a.String("password", "")
	encrypted, _ := a.Bool("encrypted", false)
	appendPrivs, _ := a.Bool("append_privs", false)
	want, err := parseMysqlPriv(a["priv"])
	if err != nil {
		return playbooks.Result{}, err
	}
	c, err := newMysqlClient(a)
	if err != nil {
		return playbooks.Result{}, err
	}
	where := "User = " + sqlString(name) + " AND Host = " + sqlString(host)
	if hostAll {
		where = "User = " + sqlString(name)
	}
	sql := "SELECT Host, IFNULL(authentication_string, ''), IFNULL(plugin, '')"
	if password != "" && !encrypted {
		sql += ", CONCAT('*', UPPER(SHA1(UNHEX(SHA1(" + sqlString(password) + ")))))"
	}
	rows, err := c.query(ctx, t, sql+" FROM mysql.user WHERE "+where+";")
	if err != nil {
		return playbooks.Result{Failed: true, Msg: "unable to connect to database: " + err.Error()}, nil
	}
	res := playbooks.Result{Data: map[string]any{"user": name}}
	var cmds []string
	if state == "absent" {
		for _, r := range rows {
			cmds = append(cmds, "DROP USER "+sqlString(name)+"@"+sqlString(r[0]))
		}
	} else {
		hosts := []string{host}
		if hostAll {
			hosts = nil
			for _, r := range rows {
				hosts = append(hosts, r[0])
			}
		}
		existing := map[string][]string{}
		for _, r := range rows {
			existing[r[0]] = r
		}
		for _, h := range hosts {
			acct := sqlString(name) + "@" + sqlString(h)
			ident := ""
			if password != "" {
				ident = " IDENTIFIED BY " + sqlString(password)
				if encrypted {
					ident = " IDENTIFIED BY PASSWORD " + sqlString(password)
				}
			}
			r, ok := existing[h]
			if !ok {
				cmds = append(cmds, "CREATE USER "+acct+ident)
				if want != nil {
					cmds = append(cmds, privDiff(acct, mysqlPrivs{"*.*": {"USAGE"}}, want, false)...)
				}
				continue
			}
			if password != "" && update == "always" {
				hash := password
				if !encrypted && len(r) > 3 {
					hash = r[3]
				}
				if r[1] != hash || (r[2] != "" && r[2] != "mysql_native_password") {
					cmds = append(cmds, "ALTER USER "+acct+ident)
				}
			}
			if want != nil {
				grants, err := c.query(ctx, t, "SHOW GRANTS FOR "+acct+";")
				if err != nil {
					return playbooks.Result{Failed: true, Msg: err.Error()}, nil
				}
				var gl []string
				for _, g := range grants {
					gl = append(gl, strings.Join(g, "\t"))
				}
				cmds = append(cmds, privDiff(acct, parseGrants(gl), want, appendPrivs)...)
			}
		}
	}
	if len(cmds) == 0 {
		res.Msg = "User unchanged"
		if state == "absent" {
			res.Msg = "User doesn't exist"
		}
		return res, nil
	}
	res.Msg = "User updated"
	if state == "absent" {
		res.Msg = "User deleted"
	}
	desc := make([]string, len(cmds))
	for i, cmd := range cmds {
		desc[i] = redactPassword(cmd)
	}
	return res, t.Change(strings.Join(desc, "; "), func() error {
		return c.exec(ctx, t, strings.Join(cmds, ";\n")+";\nFLUSH PRIVILEGES;\n")
	})
}

// redactPassword hides IDENTIFIED BY's literal in a statement shown to the user.
func redactPassword(cmd string) string {
	if i := strings.Index(cmd, " IDENTIFIED BY "); i >= 0 {
		return cmd[:i] + " IDENTIFIED BY ********"
	}
	return cmd
}
