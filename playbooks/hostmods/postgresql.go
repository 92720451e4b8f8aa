package hostmods

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"orch/playbooks"
)

// pgLoginArgs are the connection arguments of community.postgresql's modules.
var pgLoginArgs = []string{"login_user", "login_password", "login_host", "login_unix_socket", "port", "login_port",
	"login_db", "maintenance_db", "ssl_mode", "ca_cert", "ssl_cert", "ssl_key", "session_role", "connect_params", "trust_input"}

// pgClient runs SQL through psql on the host; the login password travels on stdin into
// PGPASSWORD (psql's environment), never on a command line.
type pgClient struct {
	argv     []string
	password string
	role     string
}

func newPgClient(a playbooks.Args, db string) (pgClient, error) {
	c := pgClient{argv: []string{"psql", "-X", "-q", "-A", "-t", "-z", "-v", "ON_ERROR_STOP=1"}}
	user, _ := a.String("login_user", "postgres")
	c.password, _ = a.String("login_password", "")
	host, _ := a.String("login_host", "")
	if sock, _ := a.String("login_unix_socket", ""); sock != "" {
		host = sock
	}
	port, _ := strArg(a, "", "port", "login_port")
	c.role, _ = a.String("session_role", "")
	if strings.ContainsRune(c.password, '\n') {
		return c, fmt.Errorf("%w \"login_password\": a newline is not allowed", playbooks.ErrArgs)
	}
	if host != "" {
		c.argv = append(c.argv, "-h", host)
	}
	if port != "" {
		c.argv = append(c.argv, "-p", port)
	}
	if user != "" {
		c.argv = append(c.argv, "-U", user)
	}
	if mode, _ := a.String("ssl_mode", ""); mode != "" {
		c.argv = append(c.argv, "--set=sslmode="+mode)
	}
	c.argv = append(c.argv, "-d", db)
	return c, nil
}

// run runs sql and returns its rows (fields split at NUL).
func (c pgClient) run(ctx context.Context, t *playbooks.TaskContext, sql string) ([][]string, error) {
	if c.role != "" {
		sql = "SET ROLE " + pgIdent(c.role) + ";\n" + sql
	}
	script := "command -v psql >/dev/null 2>&1 || { echo 'psql (the PostgreSQL client) is not installed on the host' >&2; exit 127; }\n" +
		"IFS= read -r PGPASSWORD; if [ -n \"$PGPASSWORD\" ]; then export PGPASSWORD; else unset PGPASSWORD; fi\n" +
		"exec " + shellJoin(c.argv) + "\n"
	o, err := run(ctx, t, script, strings.NewReader(c.password+"\n"+sql))
	if err != nil {
		return nil, err
	}
	if o.rc != 0 {
		if o.rc == 127 {
			return nil, fmt.Errorf("%w: %s", ErrUnsupported, strings.TrimSpace(o.stderr))
		}
		return nil, fmt.Errorf("psql: %w (exit code %d): %s", ErrHost, o.rc, lastLines(strings.TrimSpace(o.stderr), 5))
	}
	var rows [][]string
	for _, l := range strings.Split(strings.TrimRight(o.stdout, "\n"), "\n") {
		if l != "" {
			rows = append(rows, strings.Split(l, "\x00"))
		}
	}
	return rows, nil
}

// pgIdent quotes a PostgreSQL identifier; pgString a string literal.
func pgIdent(s string) string  { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
func pgString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// pgQualified quotes "schema.name" part by part.
func pgQualified(s string) string {
	parts := strings.Split(s, ".")
	for i, p := range parts {
		parts[i] = pgIdent(p)
	}
	return strings.Join(parts, ".")
}

// postgresqlDBModule is community.postgresql.postgresql_db: a missing database is created
// with owner, template, encoding, lc_collate, lc_ctype, tablespace and conn_limit; an
// existing one gets its owner and connection limit altered, and refuses other encodings or
// locales (they cannot change) as the Python module does; state absent drops it.
func postgresqlDBModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("postgresql_db", a, append([]string{"name", "db", "datname", "owner", "template", "encoding",
		"lc_collate", "lc_ctype", "state", "target", "target_opts", "conn_limit", "tablespace", "dump_extra_args", "force", "icu_locale", "locale_provider", "comment"}, pgLoginArgs...)...); err != nil {
		return playbooks.Result{}, err
	}
	name, _ := strArg(a, "", "name", "db", "datname")
	if name == "" {
		return playbooks.Result{}, fmt.Errorf("%w \"name\": required", playbooks.ErrArgs)
	}
	state, _ := a.String("state", "present")
	if err := choice("state", state, "present", "absent"); err != nil {
		return playbooks.Result{}, err
	}
	maint, _ := strArg(a, "postgres", "maintenance_db", "login_db")
	c, err := newPgClient(a, maint)
	if err != nil {
		return playbooks.Result{}, err
	}
	rows, err := c.run(ctx, t, "SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datcollate, datctype, datconnlimit FROM pg_database WHERE datname = "+pgString(name)+";\n")
	if err != nil {
		return playbooks.Result{Failed: true, Msg: "unable to connect to database: " + err.Error()}, nil
	}
	owner, _ := a.String("owner", "")
	enc, _ := a.String("encoding", "")
	coll, _ := a.String("lc_collate", "")
	ctype, _ := a.String("lc_ctype", "")
	limit, _ := a.String("conn_limit", "")
	res := playbooks.Result{Data: map[string]any{"db": name}}
	var cmds []string
	switch {
	case state == "absent" && len(rows) > 0:
		cmds = append(cmds, "DROP DATABASE "+pgIdent(name))
	case state == "present" && len(rows) == 0:
		cmd := "CREATE DATABASE " + pgIdent(name)
		for _, o := range [][2]string{{"owner", "OWNER"}, {"template", "TEMPLATE"}, {"tablespace", "TABLESPACE"}} {
			if v, _ := a.String(o[0], ""); v != "" {
				cmd += " " + o[1] + " " + pgIdent(v)
			}
		}
		for _, o := range [][2]string{{enc, "ENCODING"}, {coll, "LC_COLLATE"}, {ctype, "LC_CTYPE"}} {
			if o[0] != "" {
				cmd += " " + o[1] + " " + pgString(o[0])
			}
		}
		if limit != "" {
			cmd += " CONNECTION LIMIT " + limit
		}
		cmds = append(cmds, cmd)
	case state == "present":
		r := rows[0]
		if (enc != "" && !pgSameEncoding(enc, r[1])) || (coll != "" && coll != r[2]) || (ctype != "" && ctype != r[3]) {
			return playbooks.Result{Failed: true, Msg: fmt.Sprintf("Database %s already exist with encoding '%s' and collate '%s' and ctype '%s'", name, r[1], r[2], r[3])}, nil
		}
		if owner != "" && owner != r[0] {
			cmds = append(cmds, "ALTER DATABASE "+pgIdent(name)+" OWNER TO "+pgIdent(owner))
		}
		if limit != "" && limit != r[4] {
			cmds = append(cmds, "ALTER DATABASE "+pgIdent(name)+" CONNECTION LIMIT "+limit)
		}
	}
	res.Data["executed_commands"] = toAny(cmds)
	if len(cmds) == 0 {
		return res, nil
	}
	return res, t.Change(strings.Join(cmds, "; "), func() error {
		for _, cmd := range cmds { // CREATE/DROP DATABASE cannot run inside a transaction block
			if _, err := c.run(ctx, t, cmd+";\n"); err != nil {
				return err
			}
		}
		return nil
	})
}

// pgSameEncoding compares encodings as PostgreSQL names them (UTF-8 is UTF8).
func pgSameEncoding(a, b string) bool {
	n := func(s string) string { return strings.ToUpper(strings.ReplaceAll(s, "-", "")) }
	return n(a) == n(b)
}

// pgRoleFlags are role_attr_flags' names and their pg_authid columns.
var pgRoleFlags = []struct{ flag, col string }{{"SUPERUSER", "rolsuper"}, {"CREATEROLE", "rolcreaterole"},
	{"CREATEDB", "rolcreatedb"}, {"INHERIT", "rolinherit"}, {"LOGIN", "rolcanlogin"}, {"REPLICATION", "rolreplication"}, {"BYPASSRLS", "rolbypassrls"}}

// postgresqlUserModule is community.postgresql.postgresql_user: the role is created (LOGIN,
// with its password, flags, expiry and connection limit) or altered where its flags,
// limit or password differ (the stored SCRAM-SHA-256 or MD5 verifier is recomputed from the
// password and compared, as the module does); priv grants database or table privileges in
// db (the 2.x option the corpus uses); state absent drops it.
func postgresqlUserModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("postgresql_user", a, append([]string{"name", "user", "password", "encrypted", "role_attr_flags",
		"db", "priv", "state", "expires", "conn_limit", "no_password_changes", "fail_on_user", "comment", "configuration"}, pgLoginArgs...)...); err != nil {
		return playbooks.Result{}, err
	}
	name, _ := strArg(a, "", "name", "user")
	if name == "" {
		return playbooks.Result{}, fmt.Errorf("%w \"name\": required", playbooks.ErrArgs)
	}
	state, _ := a.String("state", "present")
	if err := choice("state", state, "present", "absent"); err != nil {
		return playbooks.Result{}, err
	}
	db, _ := a.String("db", "")
	password, _ := a.String("password", "")
	noPwChange, _ := a.Bool("no_password_changes", false)
	flags, err := parsePgFlags(a)
	if err != nil {
		return playbooks.Result{}, err
	}
	priv, _ := a.String("priv", "")
	if priv != "" && db == "" {
		return playbooks.Result{}, fmt.Errorf("%w \"priv\": needs db", playbooks.ErrArgs)
	}
	maint := db
	if maint == "" {
		maint, _ = strArg(a, "postgres", "login_db", "maintenance_db")
	}
	c, err := newPgClient(a, maint)
	if err != nil {
		return playbooks.Result{}, err
	}
	cols := make([]string, len(pgRoleFlags))
	for i, f := range pgRoleFlags {
		cols[i] = f.col
	}
	rows, err := c.run(ctx, t, "SELECT "+strings.Join(cols, ", ")+", rolconnlimit, COALESCE(rolpassword, ''), COALESCE(rolvaliduntil::text, '') FROM pg_authid WHERE rolname = "+pgString(name)+";\n")
	if err != nil {
		return playbooks.Result{Failed: true, Msg: "unable to connect to database: " + err.Error()}, nil
	}
	res := playbooks.Result{Data: map[string]any{"user": name}}
	var cmds []string
	if state == "absent" {
		if len(rows) > 0 {
			cmds = append(cmds, "DROP ROLE "+pgIdent(name))
		}
	} else {
		var with []string
		cur := map[string]bool{}
		if len(rows) > 0 {
			for i, f := range pgRoleFlags {
				cur[f.flag] = rows[0][i] == "t"
			}
		}
		for _, f := range flags {
			on := !strings.HasPrefix(f, "NO")
			base := strings.TrimPrefix(f, "NO")
			if len(rows) == 0 || cur[base] != on {
				with = append(with, f)
			}
		}
		if limit, _ := a.String("conn_limit", ""); limit != "" && (len(rows) == 0 || rows[0][len(pgRoleFlags)] != limit) {
			with = append(with, "CONNECTION LIMIT "+limit)
		}
		if exp, _ := a.String("expires", ""); exp != "" && (len(rows) == 0 || !strings.HasPrefix(rows[0][len(pgRoleFlags)+2], strings.TrimSpace(exp))) {
			with = append(with, "VALID UNTIL "+pgString(exp))
		}
		pwClause := ""
		if password != "" && !(len(rows) > 0 && (noPwChange || pgPasswordMatches(rows[0][len(pgRoleFlags)+1], name, password))) {
			pwClause = "PASSWORD " + pgString(password)
		}
		if len(rows) == 0 {
			cmd := "CREATE USER " + pgIdent(name)
			if pwClause != "" {
				with = append(with, pwClause)
			}
			if len(with) > 0 {
				cmd += " WITH " + strings.Join(with, " ")
			}
			cmds = append(cmds, cmd)
		} else if len(with) > 0 || pwClause != "" {
			if pwClause != "" {
				with = append(with, pwClause)
			}
			cmds = append(cmds, "ALTER USER "+pgIdent(name)+" WITH "+strings.Join(with, " "))
		}
		if priv != "" {
			grants, err := pgPrivGrants(ctx, t, c, name, db, priv, len(rows) == 0)
			if err != nil {
				return playbooks.Result{Failed: true, Msg: err.Error()}, nil
			}
			cmds = append(cmds, grants...)
		}
	}
	desc := make([]string, len(cmds))
	for i, cmd := range cmds {
		if j := strings.Index(cmd, "PASSWORD '"); j >= 0 {
			cmd = cmd[:j] + "PASSWORD ********"
		}
		desc[i] = cmd
	}
	res.Data["queries"] = toAny(desc)
	if len(cmds) == 0 {
		return res, nil
	}
	return res, t.Change(strings.Join(desc, "; "), func() error {
		_, err := c.run(ctx, t, "BEGIN;\n"+strings.Join(cmds, ";\n")+";\nCOMMIT;\n")
		return err
	})
}

// parsePgFlags reads role_attr_flags ("NOSUPERUSER,NOCREATEDB" or a list).
func parsePgFlags(a playbooks.Args) ([]string, error) {
	l, err := listArg(a, "role_attr_flags")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range l {
		f = strings.ToUpper(strings.TrimSpace(f))
		known := false
		for _, k := range pgRoleFlags {
			known = known || f == k.flag || f == "NO"+k.flag
		}
		if !known {
			return nil, fmt.Errorf("%w \"role_attr_flags\": unknown flag %q", playbooks.ErrArgs, f)
		}
		out = append(out, f)
	}
	return out, nil
}

// pgPasswordMatches says whether stored (pg_authid.rolpassword) is password's verifier:
// SCRAM-SHA-256 recomputed with the stored salt and iterations, MD5 as md5(password+user).
func pgPasswordMatches(stored, user, password string) bool {
	if strings.HasPrefix(stored, "md5") {
		sum := md5.Sum([]byte(password + user))
		return stored == "md5"+hex.EncodeToString(sum[:])
	}
	rest, ok := strings.CutPrefix(stored, "SCRAM-SHA-256$")
	if !ok {
		return stored == password
	}
	iterSalt, keys, ok := strings.Cut(rest, "$")
	if !ok {
		return false
	}
	iterS, saltB64, _ := strings.Cut(iterSalt, ":")
	storedB64, serverB64, _ := strings.Cut(keys, ":")
	iter, err := strconv.Atoi(iterS)
	salt, err2 := base64.StdEncoding.DecodeString(saltB64)
	if err != nil || err2 != nil {
		return false
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, iter, 32)
	if err != nil {
		return false
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	ck := sha256.Sum256(mac(salted, "Client Key"))
	return base64.StdEncoding.EncodeToString(ck[:]) == storedB64 && base64.StdEncoding.EncodeToString(mac(salted, "Server Key")) == serverB64
}

// pgPrivGrants turns postgresql_user's priv ("ALL" or "CONNECT/table:SELECT,INSERT") into
// the GRANTs the role lacks in db.
func pgPrivGrants(ctx context.Context, t *playbooks.TaskContext, c pgClient, role, db, priv string, newRole bool) ([]string, error) {
	var cmds []string
	for _, part := range strings.Split(priv, "/") {
		obj, privs, isTable := strings.Cut(part, ":")
		if !isTable {
			privs, obj = obj, ""
		}
		var want []string
		for _, p := range strings.Split(privs, ",") {
			if p = strings.ToUpper(strings.TrimSpace(p)); p != "" {
				want = append(want, p)
			}
		}
		target, kind := "DATABASE "+pgIdent(db), "DATABASE"
		all := []string{"CREATE", "CONNECT", "TEMPORARY"}
		if isTable {
			target, kind = "TABLE "+pgQualified(obj), "TABLE"
			all = []string{"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"}
		}
		if len(want) == 1 && want[0] == "ALL" {
			want = all
		}
		var missingPrivs []string
		for _, p := range want {
			if p == "TEMP" {
				p = "TEMPORARY"
			}
			if newRole {
				missingPrivs = append(missingPrivs, p)
				continue
			}
			fn, objLit := "has_database_privilege", pgString(db)
			if kind == "TABLE" {
				fn, objLit = "has_table_privilege", pgString(obj)
			}
			rows, err := c.run(ctx, t, "SELECT "+fn+"("+pgString(role)+", "+objLit+", "+pgString(p)+");\n")
			if err != nil {
				return nil, err
			}
			if len(rows) == 0 || rows[0][0] != "t" {
				missingPrivs = append(missingPrivs, p)
			}
		}
		if len(missingPrivs) > 0 {
			sort.Strings(missingPrivs)
			cmds = append(cmds, "GRANT "+strings.Join(missingPrivs, ", ")+" ON "+target+" TO "+pgIdent(role))
		}
	}
	return cmds, nil
}

// postgresqlPrivsModule is community.postgresql.postgresql_privs: it runs the GRANT or
// REVOKE in a transaction between two reads of the objects' ACLs and reports changed when
// they differ, as the Python module does; in check mode the transaction is rolled back.
// Types: database, schema, table, sequence (objs ALL_IN_SCHEMA too), function, group.
func postgresqlPrivsModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("postgresql_privs", a, append([]string{"database", "db", "state", "privs", "priv", "type",
		"objs", "obj", "schema", "roles", "role", "target_roles", "grant_option", "admin_option", "fail_on_role", "usage_on_types", "password"}, pgLoginArgs...)...); err != nil {
		return playbooks.Result{}, err
	}
	db, _ := strArg(a, "", "database", "db")
	if db == "" {
		return playbooks.Result{}, fmt.Errorf("%w \"database\": required", playbooks.ErrArgs)
	}
	state, _ := a.String("state", "present")
	if err := choice("state", state, "present", "absent"); err != nil {
		return playbooks.Result{}, err
	}
	typ, _ := a.String("type", "table")
	if err := choice("type", typ, "database", "schema", "table", "sequence", "function", "group"); err != nil {
		return playbooks.Result{}, err
	}
	roles, err := listArg(a, "roles", "role")
	if err != nil || len(roles) == 0 {
		return playbooks.Result{}, orErr(err, fmt.Errorf("%w \"roles\": required", playbooks.ErrArgs))
	}
	privsL, _ := listArg(a, "privs", "priv")
	objs, _ := listArg(a, "objs", "obj")
	schema, _ := a.String("schema", "public")
	grantOpt, _ := a.Bool("grant_option", false)
	if typ == "database" && len(objs) == 0 {
		objs = []string{db}
	}
	if typ != "group" && len(privsL) == 0 {
		return playbooks.Result{}, fmt.Errorf("%w \"privs\": required for type %s", playbooks.ErrArgs, typ)
	}
	if len(objs) == 0 {
		return playbooks.Result{}, fmt.Errorf("%w \"objs\": required for type %s", playbooks.ErrArgs, typ)
	}
	var roleSQL []string
	for _, r := range roles {
		if strings.EqualFold(r, "PUBLIC") {
			roleSQL = append(roleSQL, "PUBLIC")
		} else {
			roleSQL = append(roleSQL, pgIdent(r))
		}
	}
	var objSQL, lits []string
	for _, o := range objs {
		lits = append(lits, pgString(o))
		switch typ {
		case "table", "sequence", "function":
			objSQL = append(objSQL, pgIdent(schema)+"."+pgIdent(o))
		default:
			objSQL = append(objSQL, pgIdent(o))
		}
	}
	in := strings.Join(lits, ",")
	var acl, stmt string
	privs := strings.ToUpper(strings.Join(privsL, ","))
	switch typ {
	case "database":
		acl = "SELECT datname, datacl::text FROM pg_database WHERE datname IN (" + in + ") ORDER BY 1"
	case "schema":
		acl = "SELECT nspname, nspacl::text FROM pg_namespace WHERE nspname IN (" + in + ") ORDER BY 1"
	case "table", "sequence":
		kinds := map[string]string{"table": "'r','v','m','p','f'", "sequence": "'S'"}[typ]
		cond := "c.relname IN (" + in + ")"
		if len(objs) == 1 && objs[0] == "ALL_IN_SCHEMA" {
			cond = "true"
			objSQL = []string{"ALL " + strings.ToUpper(typ) + "S IN SCHEMA " + pgIdent(schema)}
		}
		acl = "SELECT c.relname, c.relacl::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = " + pgString(schema) + " AND c.relkind IN (" + kinds + ") AND " + cond + " ORDER BY 1"
	case "function":
		acl = "SELECT p.oid::regprocedure::text, p.proacl::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = " + pgString(schema) + " ORDER BY 1"
		for i, o := range objs {
			objSQL[i] = pgIdent(schema) + "." + o // name(argtypes), as the module takes it
		}
	case "group":
		acl = "SELECT r.rolname, string_agg(m.rolname, ',' ORDER BY m.rolname) FROM pg_auth_members am JOIN pg_roles r ON r.oid = am.roleid JOIN pg_roles m ON m.oid = am.member WHERE r.rolname IN (" + in + ") GROUP BY 1 ORDER BY 1"
	}
	target := strings.ToUpper(typ) + " "
	if strings.HasPrefix(objSQL[0], "ALL ") {
		target = ""
	}
	if typ == "group" {
		stmt = "GRANT " + strings.Join(objSQL, ", ") + " TO " + strings.Join(roleSQL, ", ")
		if state == "absent" {
			stmt = "REVOKE " + strings.Join(objSQL, ", ") + " FROM " + strings.Join(roleSQL, ", ")
		}
	} else if state == "present" {
		stmt = "GRANT " + privs + " ON " + target + strings.Join(objSQL, ", ") + " TO " + strings.Join(roleSQL, ", ")
		if grantOpt {
			stmt += " WITH GRANT OPTION"
		}
	} else {
		stmt = "REVOKE " + privs + " ON " + target + strings.Join(objSQL, ", ") + " FROM " + strings.Join(roleSQL, ", ")
	}
	c, err := newPgClient(a, db)
	if err != nil {
		return playbooks.Result{}, err
	}
	res := playbooks.Result{Data: map[string]any{"queries": []any{stmt}}}
	// apply runs the statement between two reads of the ACLs in one transaction, committed
	// or (check mode) rolled back, and says whether the ACLs differ.
	apply := func(end string) (bool, error) {
		rows, err := c.run(ctx, t, "BEGIN;\n"+acl+";\nSELECT '--orch--';\n"+stmt+";\n"+acl+";\n"+end+";\n")
		if err != nil {
			return false, err
		}
		var before, after []string
		cur := &before
		for _, r := range rows {
			if len(r) == 1 && r[0] == "--orch--" {
				cur = &after
				continue
			}
			*cur = append(*cur, strings.Join(r, "\x00"))
		}
		return strings.Join(before, "\n") != strings.Join(after, "\n"), nil
	}
	if t.Check {
		changed, err := apply("ROLLBACK")
		if err != nil {
			return playbooks.Result{Failed: true, Msg: err.Error()}, nil
		}
		if changed {
			return res, t.Change(stmt, nil)
		}
		return res, nil
	}
	return res, t.ChangeIf(stmt, func() (bool, error) { return apply("COMMIT") })
}
