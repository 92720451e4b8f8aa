package hostmods

import (
	"context"
	"fmt"
	"os/user"
	"strings"

	"orch/playbooks"
)

// synchronizeArgNames are ansible.posix.synchronize's arguments.
var synchronizeArgNames = []string{"src", "dest", "dest_port", "mode", "archive", "checksum", "compress",
	"existing_only", "delete", "dirs", "recursive", "links", "copy_links", "perms", "times", "owner", "group",
	"rsync_path", "rsync_timeout", "set_remote_user", "use_ssh_args", "ssh_connection_multiplexing",
	"rsync_opts", "partial", "verify_host", "private_key", "link_dest", "delay_updates", "ssh_args"}

// rsyncChanged is the marker synchronize puts before each itemized change.
const rsyncChanged = "<<CHANGED>>"

// syncSpec is a parsed synchronize task and the endpoints the action plugin works out.
type syncSpec struct {
	src, dest, mode     string
	remote              string // [user@]host of the inventory host, "" when both ends are local
	port                int
	key, sshArgs        string
	rsyncPath, linkDest string
	timeout             int
	opts                []string
	bools               map[string]*bool // archive's parts and the plain flags; nil means not given
	verifyHost          bool
	onDelegate          bool // rsync runs on the delegate's host, not on the controller
}

// synchronizeModule is ansible.posix.synchronize: rsync run where Ansible runs it (on the
// controller, or on delegate_to's host) between that machine and the inventory host, over
// OpenSSH with the play's connection settings (ansible_host, ansible_port, ansible_user or
// remote_user, ansible_ssh_private_key_file, and ansible_ssh_common_args/extra_args with
// use_ssh_args). delegate_to the host itself, or a local connection, copies on one machine.
// Changed comes from rsync's itemized output as in the Python module; --check is rsync's
// --dry-run.
func synchronizeModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	if err := playbooks.AllowArgs("synchronize", t.Args, synchronizeArgNames...); err != nil {
		return playbooks.Result{}, err
	}
	s, err := parseSync(t)
	if err != nil {
		return playbooks.Result{}, err
	}
	conn, err := syncConn(t, s)
	if err != nil {
		return playbooks.Result{}, err
	}
	argv := s.argv(t.Check)
	script := "command -v rsync >/dev/null 2>&1 || { echo 'rsync not found on the machine running synchronize' >&2; exit 127; }\n" + shellJoin(argv)
	var res playbooks.Result
	do := func() (bool, error) {
		out, errOut, rc, err := conn.Run(ctx, script, nil, false)
		if err != nil {
			return false, fmt.Errorf("%w: %w", playbooks.ErrUnreachable, err)
		}
		stdout := string(out)
		clean := strings.ReplaceAll(stdout, rsyncChanged, "")
		res.Data = map[string]any{"rc": rc, "cmd": strings.Join(argv, " "), "msg": clean, "stdout_lines": lines(clean)}
		if rc != 0 {
			res.Failed, res.Msg = true, strings.TrimSpace(string(errOut))
			return false, nil
		}
		res.Msg = clean
		return strings.Contains(stdout, rsyncChanged), nil
	}
	if t.Check {
		changed, err := do()
		if err == nil && changed {
			err = t.Change("rsync "+s.src+" "+s.dest, nil)
		}
		return res, err
	}
	return res, t.ChangeIf("rsync "+s.src+" "+s.dest, do)
}

// syncConn is where rsync runs: the delegate's connection, else the controller.
func syncConn(t *playbooks.TaskContext, s syncSpec) (playbooks.Conn, error) {
	if s.onDelegate {
		return t.Conn()
	}
	return playbooks.LocalConn{}, nil
}

// parseSync reads the arguments and works out the endpoints as the action plugin does.
func parseSync(t *playbooks.TaskContext) (syncSpec, error) {
	a := t.Args
	s := syncSpec{bools: map[string]*bool{}}
	var err error
	if s.src, err = a.Required("src"); err != nil {
		return s, err
	}
	if s.dest, err = a.Required("dest"); err != nil {
		return s, err
	}
	if s.mode, err = a.String("mode", "push"); err != nil {
		return s, err
	}
	if err := choice("mode", s.mode, "push", "pull"); err != nil {
		return s, err
	}
	for _, n := range []string{"archive", "checksum", "compress", "existing_only", "delete", "dirs", "recursive",
		"links", "copy_links", "perms", "times", "owner", "group", "partial", "delay_updates", "set_remote_user", "use_ssh_args"} {
		if a.Has(n) {
			b, err := a.Bool(n, false)
			if err != nil {
				return s, err
			}
			s.bools[n] = &b
		}
	}
	if s.verifyHost, err = a.Bool("verify_host", false); err != nil {
		return s, err
	}
	if s.timeout, err = a.Int("rsync_timeout", 0); err != nil {
		return s, err
	}
	s.rsyncPath, _ = a.String("rsync_path", "")
	s.linkDest, _ = a.String("link_dest", "")
	if s.opts, err = listArg(a, "rsync_opts"); err != nil {
		return s, err
	}
	vars := func(names ...string) string {
		for _, n := range names {
			if v, ok := t.Vars().Get(n); ok && v != nil {
				return strings.TrimSpace(fmt.Sprint(v))
			}
		}
		return ""
	}
	local := t.Connection == "local" || vars("ansible_connection") == "local"
	s.onDelegate = t.Delegate != "" && t.Delegate != "localhost" && t.Delegate != "127.0.0.1"
	if t.Delegate == t.Host {
		local = true
	}
	if !s.onDelegate && s.mode == "push" {
		given := s.src
		s.src = playbooks.LocalFile(t, s.src, "files")
		if strings.HasSuffix(given, "/") && !strings.HasSuffix(s.src, "/") {
			s.src += "/"
		}
	}
	if local {
		return s, nil
	}
	host := vars("ansible_host", "ansible_ssh_host")
	if host == "" {
		host = t.Host
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	login := vars("ansible_user", "ansible_ssh_user")
	if login == "" {
		login = t.RemoteUser
	}
	if login == "" && !s.onDelegate {
		if u, err := user.Current(); err == nil {
			login = u.Username
		}
	}
	if b := s.bools["set_remote_user"]; (b == nil || *b) && login != "" {
		host = login + "@" + host
	}
	s.remote = host
	port := vars("ansible_port", "ansible_ssh_port")
	if a.Has("dest_port") {
		port, _ = a.String("dest_port", "")
	}
	if port != "" {
		if _, err := fmt.Sscan(port, &s.port); err != nil {
			return s, fmt.Errorf("%w \"dest_port\": %q is not a port", playbooks.ErrArgs, port)
		}
	}
	s.key, _ = a.String("private_key", "")
	if s.key == "" {
		s.key = vars("ansible_ssh_private_key_file", "ansible_private_key_file")
	}
	if b := s.bools["use_ssh_args"]; b != nil && *b {
		s.sshArgs = strings.TrimSpace(vars("ansible_ssh_common_args") + " " + vars("ansible_ssh_extra_args"))
	}
	if t.Become && s.rsyncPath == "" && login != "root" {
		s.rsyncPath = "sudo rsync"
	}
	return s, nil
}

// flag returns the boolean argument n or def.
func (s syncSpec) flag(n string, def bool) (v, given bool) {
	if b := s.bools[n]; b != nil {
		return *b, true
	}
	return def, false
}

// argv is the rsync command line, built as the Python module builds it.
func (s syncSpec) argv(check bool) []string {
	cmd := []string{"rsync"}
	if v, _ := s.flag("delay_updates", true); v {
		cmd = append(cmd, "--delay-updates")
	}
	cmd = append(cmd, "-F")
	if v, _ := s.flag("compress", true); v {
		cmd = append(cmd, "--compress")
	}
	if s.timeout != 0 {
		cmd = append(cmd, fmt.Sprintf("--timeout=%d", s.timeout))
	}
	if check {
		cmd = append(cmd, "--dry-run")
	}
	for _, f := range [][2]string{{"delete", "--delete-after"}, {"existing_only", "--existing"}, {"checksum", "--checksum"}, {"copy_links", "--copy-links"}} {
		if v, _ := s.flag(f[0], false); v {
			cmd = append(cmd, f[1])
		}
	}
	archive, _ := s.flag("archive", true)
	if archive {
		cmd = append(cmd, "--archive")
	}
	for _, n := range []string{"recursive", "links", "perms", "times", "owner", "group"} {
		v, given := s.flag(n, archive)
		switch {
		case archive && given && !v:
			cmd = append(cmd, "--no-"+n)
		case !archive && v:
			cmd = append(cmd, "--"+n)
		}
	}
	if v, _ := s.flag("dirs", false); v {
		cmd = append(cmd, "--no-recursive", "--dirs")
	}
	if s.remote != "" {
		ssh := []string{"ssh", "-S", "none"}
		if s.key != "" {
			ssh = append(ssh, "-i", s.key)
		}
		if s.port != 0 {
			ssh = append(ssh, "-o", fmt.Sprintf("Port=%d", s.port))
		}
		if !s.verifyHost {
			ssh = append(ssh, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null")
		}
		rsh := shellJoin(ssh)
		if s.sshArgs != "" {
			rsh += " " + s.sshArgs
		}
		cmd = append(cmd, "--rsh="+rsh)
	}
	if s.rsyncPath != "" {
		cmd = append(cmd, "--rsync-path="+s.rsyncPath)
	}
	cmd = append(cmd, s.opts...)
	if v, _ := s.flag("partial", false); v {
		cmd = append(cmd, "--partial")
	}
	if s.linkDest != "" {
		cmd = append(cmd, "--link-dest="+s.linkDest)
	}
	cmd = append(cmd, "--out-format="+rsyncChanged+"%i %n%L")
	src, dest := s.src, s.dest
	if s.remote != "" {
		if s.mode == "push" {
			dest = s.remote + ":" + dest
		} else {
			src = s.remote + ":" + src
		}
	}
	return append(cmd, src, dest)
}
