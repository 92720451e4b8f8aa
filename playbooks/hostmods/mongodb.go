package hostmods

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"orch/playbooks"
)

// mongoUserScript is the mongo shell script of mongodb_user, given the task as JSON (which
// is a JavaScript literal; Go's encoder escapes U+2028/2029): it arrives on stdin into a
// private temporary file, so logins and passwords never reach a command line. It reads the
// user and prints one JSON line: {"exists", "roles", "changed", "error"}; with apply it
// creates, updates or drops the user.
const mongoUserScript = `
const t = %s;
const out = {exists: false, changed: false};
try {
  let admin = db.getSiblingDB(t.login_database);
  if (t.login_user) { admin.auth(t.login_user, t.login_password); }
  const d = db.getSiblingDB(t.database);
  const u = d.getUser(t.name);
  out.exists = u !== null;
  out.roles = u ? u.roles : [];
  const norm = (rs) => rs.map(r => typeof r === "string" ? r + "@" + t.database : r.role + "@" + r.db).sort().join(",");
  if (t.state === "absent") {
    out.changed = out.exists;
    if (out.changed && t.apply) { d.dropUser(t.name); }
  } else if (!out.exists) {
    out.changed = true;
    if (t.apply) { d.createUser({user: t.name, pwd: t.password, roles: t.roles}); }
  } else {
    const rolesDiffer = norm(out.roles) !== norm(t.roles);
    const pw = t.password && t.update_password === "always";
    out.changed = rolesDiffer || !!pw;
    if (out.changed && t.apply) {
      const upd = {roles: t.roles};
      if (pw) { upd.pwd = t.password; }
      d.updateUser(t.name, upd);
    }
  }
} catch (e) { out.error = String(e); }
print(JSON.stringify(out));
`

// mongodbUserModule is community.mongodb.mongodb_user over the mongo shell on the host
// (mongosh, else the legacy mongo): it reads the user in the database and creates it with
// its password and roles, updates its roles when they differ, drops it for state absent.
// With update_password always (the default) an existing user's password is set again and
// the task is changed, as the collection's module documents (it cannot compare passwords).
func mongodbUserModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("mongodb_user", a, "login_user", "login_password", "login_host", "login_port",
		"login_database", "replica_set", "database", "db", "name", "user", "password", "pass", "roles", "state",
		"update_password", "ssl", "ssl_cert_reqs", "ssl_ca_certs", "ssl_crlfile", "ssl_certfile", "ssl_keyfile",
		"ssl_pem_passphrase", "auth_mechanism", "connection_options", "create_for_localhost_exception", "strict_compatibility", "atlas_auth"); err != nil {
		return playbooks.Result{}, err
	}
	task, uri, err := mongoUserTask(a)
	if err != nil {
		return playbooks.Result{}, err
	}
	script := func(apply bool) (map[string]any, error) {
		task["apply"] = apply
		in, _ := json.Marshal(task)
		js := fmt.Sprintf(mongoUserScript, in)
		sh := "umask 077; f=$(mktemp --suffix=.js) || exit 1; trap 'rm -f \"$f\"' EXIT\ncat > \"$f\"\n" +
			"if command -v mongosh >/dev/null 2>&1; then sh_=mongosh; elif command -v mongo >/dev/null 2>&1; then sh_=mongo; else echo 'neither mongosh nor mongo (the MongoDB shell) is on the host' >&2; exit 127; fi\n" +
			"\"$sh_\" --quiet " + q(uri) + " \"$f\""
		o, err := run(ctx, t, sh, strings.NewReader(js))
		if err != nil {
			return nil, err
		}
		if err := o.err("mongo shell"); err != nil {
			return nil, err
		}
		ls := strings.Split(strings.TrimSpace(o.stdout), "\n")
		var out map[string]any
		if err := json.Unmarshal([]byte(ls[len(ls)-1]), &out); err != nil {
			return nil, fmt.Errorf("mongo shell answered %q: %w", lastLines(o.stdout, 3), err)
		}
		if e, ok := out["error"].(string); ok {
			return nil, fmt.Errorf("mongodb_user: %s", e)
		}
		return out, nil
	}
	out, err := script(false)
	if err != nil {
		return playbooks.Result{Failed: true, Msg: err.Error()}, nil
	}
	res := playbooks.Result{Data: map[string]any{"user": task["name"]}}
	if out["changed"] != true {
		return res, nil
	}
	return res, t.Change(fmt.Sprintf("%s mongodb user %s in %s", map[string]string{"present": "set", "absent": "drop"}[task["state"].(string)], task["name"], task["database"]), func() error {
		_, err := script(true)
		return err
	})
}

// mongoUserTask reads the arguments into the script's input and the connection URI.
func mongoUserTask(a playbooks.Args) (map[string]any, string, error) {
	name, _ := strArg(a, "", "name", "user")
	db, _ := strArg(a, "", "database", "db")
	if name == "" || db == "" {
		return nil, "", fmt.Errorf("%w: name and database are required", playbooks.ErrArgs)
	}
	state, _ := a.String("state", "present")
	if err := choice("state", state, "present", "absent"); err != nil {
		return nil, "", err
	}
	password, _ := strArg(a, "", "password", "pass")
	update, _ := a.String("update_password", "always")
	if err := choice("update_password", update, "always", "on_create"); err != nil {
		return nil, "", err
	}
	var roles []any
	switch r := a["roles"].(type) {
	case nil:
		roles = []any{"readWrite"}
	case string:
		for _, x := range splitComma(r) {
			roles = append(roles, x)
		}
	case []any:
		roles = r
	default:
		return nil, "", fmt.Errorf("%w \"roles\": expected a list, got %T", playbooks.ErrArgs, r)
	}
	loginUser, _ := a.String("login_user", "")
	loginPw, _ := a.String("login_password", "")
	loginDB, _ := a.String("login_database", "admin")
	host, _ := a.String("login_host", "localhost")
	port, _ := a.String("login_port", "27017")
	uri := "mongodb://" + host + ":" + port + "/" + loginDB
	params := []string{}
	if rs, _ := a.String("replica_set", ""); rs != "" {
		params = append(params, "replicaSet="+rs)
	}
	if ssl, _ := a.Bool("ssl", false); ssl {
		params = append(params, "tls=true")
	}
	if len(params) > 0 {
		uri += "?" + strings.Join(params, "&")
	}
	return map[string]any{"name": name, "database": db, "password": password, "roles": roles, "state": state,
		"update_password": update, "login_user": loginUser, "login_password": loginPw, "login_database": loginDB}, uri, nil
}
