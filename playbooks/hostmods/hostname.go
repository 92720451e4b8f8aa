package hostmods

import (
	"context"
	"fmt"
	"strings"

	"orch/playbooks"
)

// hostname sets the host's name: the running one and the permanent one (/etc/hostname, or
// hostnamectl's static name on systemd). Both are read in one command.
func hostnameModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("hostname", a, "name", "use"); err != nil {
		return playbooks.Result{}, err
	}
	name, err := a.Required("name")
	if err != nil {
		return playbooks.Result{}, err
	}
	use, _ := a.String("use", "")
	o, err := runOK(ctx, t, "reading the hostname", "echo \"current=$(hostname)\"; echo \"permanent=$(cat /etc/hostname 2>/dev/null)\"\n"+
		"[ -d /run/systemd/system ] && command -v hostnamectl >/dev/null && echo \"static=$(hostnamectl --static 2>/dev/null)\" && echo systemd=1", nil)
	if err != nil {
		return playbooks.Result{}, err
	}
	f := fields(o.stdout)
	systemd := (use == "" && f["systemd"] == "1") || use == "systemd"
	permanent := f["permanent"]
	if systemd && f["static"] != "" {
		permanent = f["static"]
	}
	short, domain, _ := strings.Cut(name, ".")
	res := playbooks.Result{Data: map[string]any{"name": name, "ansible_facts": map[string]any{
		"ansible_hostname": short, "ansible_nodename": name, "ansible_fqdn": name, "ansible_domain": domain}}}
	if f["current"] == name && strings.TrimSpace(permanent) == name {
		return res, nil
	}
	if t.Diff {
		res.Diff = unifiedDiff("hostname", "hostname = "+f["current"]+"\n", "hostname = "+name+"\n")
	}
	script := "printf '%s\\n' " + q(name) + " > /etc/hostname && hostname " + q(name)
	if systemd {
		script = "hostnamectl set-hostname " + q(name) + " || { " + script + "; }"
	}
	return res, t.Change(fmt.Sprintf("set hostname %s (was %s)", name, f["current"]), func() error {
		_, err := runOK(ctx, t, "setting the hostname", script, nil)
		return err
	})
}
