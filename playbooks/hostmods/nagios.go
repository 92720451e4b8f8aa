package hostmods

import (
	"context"
	"fmt"
	"strings"
	"time"

	"orch/playbooks"
)

// nagiosActions are community.general.nagios's actions.
var nagiosActions = []string{"downtime", "delete_downtime", "enable_alerts", "disable_alerts", "silence", "unsilence",
	"silence_nagios", "unsilence_nagios", "command", "servicegroup_service_downtime", "servicegroup_host_downtime",
	"acknowledge", "forced_check"}

// nagiosConfigs are where the module looks for nagios.cfg's command_file when cmdfile is
// not given (the Python module's list).
var nagiosConfigs = []string{"/etc/nagios/nagios.cfg", "/etc/nagios3/nagios.cfg", "/etc/nagios2/nagios.cfg",
	"/usr/local/etc/nagios/nagios.cfg", "/usr/local/nagios/etc/nagios.cfg", "/usr/local/nagios/nagios.cfg",
	"/opt/nagios/etc/nagios.cfg", "/opt/nagios/nagios.cfg", "/etc/icinga/icinga.cfg", "/usr/local/icinga/etc/icinga.cfg",
	"/etc/nagios4/nagios.cfg"}

// nagiosModule is community.general.nagios: it writes Nagios external commands
// ("[time] COMMAND;args") into the command file, a FIFO Nagios reads (found in nagios.cfg's
// command_file when cmdfile is not given); it refuses a command file that is not a FIFO, and
// is always changed, as the Python module. It does not run in check mode (the module does
// not support it).
func nagiosModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("nagios", a, "action", "host", "cmdfile", "author", "comment", "minutes", "services",
		"service", "servicegroup", "command", "start"); err != nil {
		return playbooks.Result{}, err
	}
	action, err := a.Required("action")
	if err != nil {
		return playbooks.Result{}, err
	}
	if err := choice("action", action, nagiosActions...); err != nil {
		return playbooks.Result{}, err
	}
	host, _ := a.String("host", "")
	author, _ := a.String("author", "Ansible")
	comment, _ := a.String("comment", "Scheduling downtime")
	minutes, err := a.Int("minutes", 30)
	if err != nil {
		return playbooks.Result{}, err
	}
	services, err := listArg(a, "services", "service")
	if err != nil {
		return playbooks.Result{}, err
	}
	group, _ := a.String("servicegroup", "")
	command, _ := a.String("command", "")
	cmdfile, _ := a.String("cmdfile", "")
	now := time.Now().Unix()
	start := now
	if a.Has("start") {
		s, err := a.Int("start", 0)
		if err != nil {
			return playbooks.Result{}, err
		}
		start = int64(s)
	}
	lines, err := nagiosCommands(action, host, author, comment, command, group, services, now, start, minutes)
	if err != nil {
		return playbooks.Result{}, err
	}
	if t.Check {
		return playbooks.Result{Skipped: true, Msg: "remote module (nagios) does not support check mode"}, nil
	}
	find := "p=" + q(cmdfile) + "\n"
	if cmdfile == "" {
		find = "p=\nfor c in " + shellJoin(nagiosConfigs) + "; do [ -r \"$c\" ] || continue; p=$(sed -n 's/^[[:space:]]*command_file[[:space:]]*=[[:space:]]*//p' \"$c\" | tail -n 1); [ -n \"$p\" ] && break; done\n" +
			"[ -n \"$p\" ] || { echo 'unable to locate nagios.cfg' >&2; exit 2; }\n"
	}
	script := find + "[ -e \"$p\" ] || { echo \"nagios command file $p does not exist\" >&2; exit 2; }\n" +
		"[ -p \"$p\" ] || { echo \"nagios command file $p is not a fifo file\" >&2; exit 2; }\ncat >> \"$p\"\n"
	res := playbooks.Result{Msg: "Nagios command(s) sent", Data: map[string]any{"nagios_commands": toAny(lines)}}
	return res, t.Change(strings.Join(lines, "; "), func() error {
		_, err := runOK(ctx, t, "nagios "+action, script, strings.NewReader(strings.Join(lines, "\n")+"\n"))
		return err
	})
}

// nagiosCommands builds the external command lines of an action.
func nagiosCommands(action, host, author, comment, command, group string, services []string, now, start int64, minutes int) ([]string, error) {
	need := func(what string, ok bool) error {
		if !ok {
			return fmt.Errorf("%w: action %s needs %s", playbooks.ErrArgs, action, what)
		}
		return nil
	}
	line := func(cmd string, args ...any) string {
		parts := []string{fmt.Sprintf("[%d] %s", now, cmd)}
		for _, x := range args {
			parts = append(parts, fmt.Sprint(x))
		}
		return strings.Join(parts, ";")
	}
	end := start + int64(minutes)*60
	dur := minutes * 60
	all := len(services) == 1 && (services[0] == "host" || services[0] == "all")
	var out []string
	switch action {
	case "command":
		if err := need("command", command != ""); err != nil {
			return nil, err
		}
		return []string{fmt.Sprintf("[%d] %s", now, command)}, nil
	case "silence_nagios":
		return []string{line("DISABLE_NOTIFICATIONS")}, nil
	case "unsilence_nagios":
		return []string{line("ENABLE_NOTIFICATIONS")}, nil
	case "servicegroup_service_downtime", "servicegroup_host_downtime":
		if err := need("servicegroup", group != ""); err != nil {
			return nil, err
		}
		cmd := map[string]string{"servicegroup_service_downtime": "SCHEDULE_SERVICEGROUP_SVC_DOWNTIME", "servicegroup_host_downtime": "SCHEDULE_SERVICEGROUP_HOST_DOWNTIME"}[action]
		return []string{line(cmd, group, start, end, 1, 0, dur, author, comment)}, nil
	}
	if err := need("host", host != ""); err != nil {
		return nil, err
	}
	switch action {
	case "silence":
		return []string{line("DISABLE_HOST_SVC_NOTIFICATIONS", host), line("DISABLE_HOST_NOTIFICATIONS", host)}, nil
	case "unsilence":
		return []string{line("ENABLE_HOST_SVC_NOTIFICATIONS", host), line("ENABLE_HOST_NOTIFICATIONS", host)}, nil
	}
	if err := need("services", len(services) > 0); err != nil {
		return nil, err
	}
	switch action {
	case "downtime":
		if all {
			return []string{line("SCHEDULE_HOST_DOWNTIME", host, start, end, 1, 0, dur, author, comment)}, nil
		}
		for _, s := range services {
			out = append(out, line("SCHEDULE_SVC_DOWNTIME", host, s, start, end, 1, 0, dur, author, comment))
		}
	case "delete_downtime":
		if all {
			return []string{line("DEL_DOWNTIME_BY_HOST_NAME", host)}, nil
		}
		for _, s := range services {
			out = append(out, line("DEL_DOWNTIME_BY_HOST_NAME", host, s))
		}
	case "enable_alerts", "disable_alerts":
		verb := map[string]string{"enable_alerts": "ENABLE", "disable_alerts": "DISABLE"}[action]
		if all {
			return []string{line(verb+"_HOST_SVC_NOTIFICATIONS", host)}, nil
		}
		for _, s := range services {
			out = append(out, line(verb+"_SVC_NOTIFICATIONS", host, s))
		}
	case "acknowledge":
		if all {
			return []string{line("ACKNOWLEDGE_HOST_PROBLEM", host, 1, 1, 1, author, comment)}, nil
		}
		for _, s := range services {
			out = append(out, line("ACKNOWLEDGE_SVC_PROBLEM", host, s, 1, 1, 1, author, comment))
		}
	case "forced_check":
		if all {
			return []string{line("SCHEDULE_FORCED_HOST_SVC_CHECKS", host, now)}, nil
		}
		for _, s := range services {
			out = append(out, line("SCHEDULE_FORCED_SVC_CHECK", host, s, now))
		}
	}
	return out, nil
}
