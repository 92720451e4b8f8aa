package hostmods

import (
	"context"
	"fmt"
	"strings"

	"orch/playbooks"
)

// jbossModule is community.general.jboss: it deploys through JBoss/WildFly's deployment
// scanner, as the Python module: state present copies src (a file on the host) into
// deploy_path as deployment when no <deployment>.deployed marker is there, or when the
// deployed file differs from src (removing the marker first), then waits until the scanner
// writes .deployed (success) or .failed; state absent removes the deployment and waits for
// .undeployed. One command reads the markers and checksums; one more copies and waits
// (on the host, a second at a time, as the module polls).
func jbossModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("jboss", a, "deployment", "src", "deploy_path", "state"); err != nil {
		return playbooks.Result{}, err
	}
	dep, err := a.Required("deployment")
	if err != nil {
		return playbooks.Result{}, err
	}
	src, _ := a.String("src", "")
	dir, _ := a.String("deploy_path", "/var/lib/jbossas/standalone/deployments")
	state, _ := a.String("state", "present")
	if err := choice("state", state, "present", "absent"); err != nil {
		return playbooks.Result{}, err
	}
	if state == "present" && src == "" {
		return playbooks.Result{}, fmt.Errorf("%w \"src\": required with state present", playbooks.ErrArgs)
	}
	p := strings.TrimRight(dir, "/") + "/" + dep
	probe := "p=" + q(p) + "\n[ -d " + q(dir) + " ] || { echo 'deploy_path " + dir + " does not exist on the host' >&2; exit 2; }\n" +
		"[ -e \"$p.deployed\" ] && echo deployed=yes\n[ -e \"$p.failed\" ] && echo failed=yes\n" +
		"[ -f \"$p\" ] && echo \"cur=$(sha1sum < \"$p\" | cut -d' ' -f1)\"\n"
	if src != "" {
		probe += "[ -f " + q(src) + " ] && echo \"src=$(sha1sum < " + q(src) + " | cut -d' ' -f1)\"\n"
	}
	o, err := runOK(ctx, t, "jboss "+dep, probe+":", nil)
	if err != nil {
		return playbooks.Result{Failed: true, Msg: err.Error()}, nil
	}
	f := fields(o.stdout)
	deployed := f["deployed"] == "yes"
	res := playbooks.Result{Data: map[string]any{"deployment": dep}}
	if state == "present" && f["src"] == "" {
		return playbooks.Result{Failed: true, Msg: "Source file " + src + " does not exist."}, nil
	}
	waitFor := func(ok, fail string) string {
		return "i=0; while [ ! -e \"$p." + ok + "\" ]; do " +
			map[bool]string{true: "[ -e \"$p." + fail + "\" ] && { echo \"Deploying " + dep + " failed.\" >&2; exit 3; }; ", false: ""}[fail != ""] +
			"i=$((i+1)); [ $i -gt 600 ] && { echo 'timed out waiting for the deployment scanner (." + ok + ")' >&2; exit 3; }; sleep 1; done\n"
	}
	var script string
	switch {
	case state == "present" && !deployed:
		script = "p=" + q(p) + "\nrm -f \"$p.failed\"\ncp -- " + q(src) + " \"$p\"\n" + waitFor("deployed", "failed")
	case state == "present" && f["src"] != f["cur"]:
		script = "p=" + q(p) + "\nrm -f \"$p.deployed\"\ncp -- " + q(src) + " \"$p\"\n" + waitFor("deployed", "failed")
	case state == "absent" && deployed:
		script = "p=" + q(p) + "\nrm -f -- \"$p\"\n" + waitFor("undeployed", "")
	}
	if script == "" {
		return res, nil
	}
	return res, t.Change(map[string]string{"present": "deploy ", "absent": "undeploy "}[state]+dep, func() error {
		_, err := runOK(ctx, t, "jboss "+dep, script, nil)
		return err
	})
}
