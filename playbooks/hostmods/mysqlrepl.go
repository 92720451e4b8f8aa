package hostmods

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"orch/playbooks"
)

// mysqlReplicationModes maps community.mysql.mysql_replication's old mode names to the new.
var mysqlReplicationModes = map[string]string{"getmaster": "getprimary", "getslave": "getreplica",
	"changemaster": "changeprimary", "stopslave": "stopreplica", "startslave": "startreplica",
	"resetmaster": "resetprimary", "resetslave": "resetreplica", "resetslaveall": "resetreplicaall"}

// mysqlChangeOptions are changeprimary's arguments and their CHANGE MASTER TO names; the
// bool says the value is a number (unquoted).
var mysqlChangeOptions = []struct {
	arg, sql string
	num      bool
}{
	{"master_host", "MASTER_HOST", false}, {"master_user", "MASTER_USER", false}, {"master_password", "MASTER_PASSWORD", false},
	{"master_port", "MASTER_PORT", true}, {"master_connect_retry", "MASTER_CONNECT_RETRY", true},
	{"master_log_file", "MASTER_LOG_FILE", false}, {"master_log_pos", "MASTER_LOG_POS", true},
	{"relay_log_file", "RELAY_LOG_FILE", false}, {"relay_log_pos", "RELAY_LOG_POS", true},
	{"master_ssl", "MASTER_SSL", true}, {"master_ssl_ca", "MASTER_SSL_CA", false}, {"master_ssl_capath", "MASTER_SSL_CAPATH", false},
	{"master_ssl_cert", "MASTER_SSL_CERT", false}, {"master_ssl_key", "MASTER_SSL_KEY", false},
	{"master_ssl_cipher", "MASTER_SSL_CIPHER", false}, {"master_auto_position", "MASTER_AUTO_POSITION", true},
	{"master_use_gtid", "MASTER_USE_GTID", true}, {"master_delay", "MASTER_DELAY", true},
}

// mysqlReplicationModule is community.mysql.mysql_replication: getprimary and getreplica
// return SHOW MASTER/SLAVE STATUS's fields with Is_Primary/Is_Replica (and the old
// Is_Master/Is_Slave); changeprimary runs CHANGE MASTER TO with the options given;
// start/stop/reset replica and resetprimary run their statement, changed when the
// replica's running state differs (start/stop) or always (the others), as the Python module.
func mysqlReplicationModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	allowed := append([]string{"mode", "connection_name", "channel", "fail_on_error", "primary_host", "primary_user",
		"primary_password", "primary_port", "primary_log_file", "primary_log_pos", "primary_connect_retry",
		"primary_ssl", "primary_ssl_ca", "primary_ssl_capath", "primary_ssl_cert", "primary_ssl_key",
		"primary_ssl_cipher", "primary_auto_position", "primary_use_gtid", "primary_delay", "relay_log_file", "relay_log_pos"}, mysqlLoginArgs...)
	for _, o := range mysqlChangeOptions {
		allowed = append(allowed, o.arg)
	}
	if err := playbooks.AllowArgs("mysql_replication", a, allowed...); err != nil {
		return playbooks.Result{}, err
	}
	mode, _ := a.String("mode", "getreplica")
	if m, ok := mysqlReplicationModes[mode]; ok {
		mode = m
	}
	if err := choice("mode", mode, "getprimary", "getreplica", "changeprimary", "stopreplica", "startreplica",
		"resetprimary", "resetreplica", "resetreplicaall"); err != nil {
		return playbooks.Result{}, err
	}
	c, err := newMysqlClient(a)
	if err != nil {
		return playbooks.Result{}, err
	}
	conn, _ := a.String("connection_name", "")
	named := ""
	if conn != "" {
		named = " " + sqlString(conn)
	}
	switch mode {
	case "getprimary", "getreplica":
		stmt, key, old := "SHOW MASTER STATUS;", "Is_Primary", "Is_Master"
		if mode == "getreplica" {
			stmt, key, old = "SHOW SLAVE"+named+" STATUS;", "Is_Replica", "Is_Slave"
		}
		row, err := c.vertical(ctx, t, stmt)
		if err != nil {
			return playbooks.Result{Failed: true, Msg: err.Error()}, nil
		}
		data := map[string]any{key: row != nil, old: row != nil}
		for k, v := range row {
			if n, err := strconv.Atoi(v); err == nil {
				data[k] = n
			} else {
				data[k] = v
			}
		}
		res := playbooks.Result{Data: data}
		if row == nil {
			res.Msg = "Server is not configured as mysql " + map[string]string{"getprimary": "primary", "getreplica": "replica"}[mode]
		}
		return res, nil
	case "changeprimary":
		var parts []string
		for _, o := range mysqlChangeOptions {
			name := o.arg
			if alt := "primary_" + strings.TrimPrefix(o.arg, "master_"); a.Has(alt) && !a.Has(name) {
				name = alt
			}
			if !a.Has(name) {
				continue
			}
			v, err := a.String(name, "")
			if err != nil {
				return playbooks.Result{}, err
			}
			if o.num {
				if b, err := a.Bool(name, false); err == nil && (v == "true" || v == "false" || v == "yes" || v == "no") {
					v = map[bool]string{true: "1", false: "0"}[b]
				}
				if _, err := strconv.Atoi(v); err != nil && o.sql != "MASTER_USE_GTID" {
					return playbooks.Result{}, fmt.Errorf("%w %q: %q is not a number", playbooks.ErrArgs, name, v)
				}
				parts = append(parts, o.sql+"="+v)
			} else {
				parts = append(parts, o.sql+"="+sqlString(v))
			}
		}
		stmt := "CHANGE MASTER" + named + " TO " + strings.Join(parts, ", ")
		return playbooks.Result{Msg: "Changed primary", Data: map[string]any{"queries": []any{redactMasterPassword(stmt)}}},
			t.Change(redactMasterPassword(stmt), func() error { return c.exec(ctx, t, stmt+";\n") })
	}
	stmt := map[string]string{"stopreplica": "STOP SLAVE", "startreplica": "START SLAVE", "resetprimary": "RESET MASTER",
		"resetreplica": "RESET SLAVE", "resetreplicaall": "RESET SLAVE ALL"}[mode]
	if mode == "startreplica" || mode == "stopreplica" {
		stmt = strings.Replace(stmt, " SLAVE", " SLAVE"+named, 1)
		row, err := c.vertical(ctx, t, "SHOW SLAVE"+named+" STATUS;")
		if err != nil {
			return playbooks.Result{Failed: true, Msg: err.Error()}, nil
		}
		running := row != nil && row["Slave_IO_Running"] == "Yes" && row["Slave_SQL_Running"] == "Yes"
		if running == (mode == "startreplica") {
			return playbooks.Result{Msg: "Replica already " + map[bool]string{true: "started", false: "stopped"}[running]}, nil
		}
	} else if conn != "" && mode != "resetprimary" {
		stmt = strings.Replace(stmt, " SLAVE", " SLAVE"+named, 1)
	}
	return playbooks.Result{Data: map[string]any{"queries": []any{stmt}}}, t.Change(stmt, func() error { return c.exec(ctx, t, stmt+";\n") })
}

// redactMasterPassword hides MASTER_PASSWORD's literal in a statement shown to the user.
func redactMasterPassword(stmt string) string {
	i := strings.Index(stmt, "MASTER_PASSWORD='")
	if i < 0 {
		return stmt
	}
	j := i + len("MASTER_PASSWORD='")
	for k := j; k < len(stmt); k++ {
		if stmt[k] == '\\' {
			k++
			continue
		}
		if stmt[k] == '\'' {
			return stmt[:j] + "********" + stmt[k:]
		}
	}
	return stmt[:j] + "********'"
}
