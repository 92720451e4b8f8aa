package modules

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"orch/nodeagent/api"
	"orch/orchestrator/agentctl"
	"orch/orchestrator/transport"
	"orch/playbooks"
)

// agentInstall pushes the nodeagent binary to AGENT_DIR/bin/nodeagent (skipped when the
// remote copy has the same sha256).
func (d Deps) agentInstall(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	conn, a, err := d.hostAgent(ctx, t)
	if err != nil {
		return playbooks.Result{}, err
	}
	dir := a.Dir
	src, _ := t.Args.String("src", d.AgentBinary)
	if src == "" {
		return playbooks.Result{}, fmt.Errorf("no agent binary: pass --agent PATH")
	}
	// The same binary installed (the converged case) settles it in one command.
	need, installed, err := needsInstall(ctx, conn, src, dir)
	if err != nil || !need {
		return playbooks.Result{}, err
	}
	// No agent installed (a fresh host): no version to protect, no command to ask it.
	if allow, _ := t.Args.Bool("downgrade", false); !allow && installed {
		if err := d.refuseDowngrade(ctx, t, conn, src, dir); err != nil {
			return playbooks.Result{}, err
		}
	}
	if t.Check {
		_ = t.Change("install "+src+" as "+agentctl.Binary(dir), nil)
		return playbooks.Result{Changed: true}, nil
	}
	err = t.ChangeIf("install "+src+" as "+agentctl.Binary(dir), func() (bool, error) {
		return agentctl.Install(ctx, conn, src, dir)
	})
	return playbooks.Result{}, err
}

// agentStart starts the agent (restart: true restarts it) and waits until it answers.
func (d Deps) agentStart(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	conn, a, err := d.hostAgent(ctx, t)
	if err != nil {
		return playbooks.Result{}, err
	}
	dir := a.Dir
	restart, err := t.Args.Bool("restart", false)
	if err != nil {
		return playbooks.Result{}, err
	}
	timeout, _ := t.Args.Int("timeout", 30)
	if t.Check {
		running, _, err := agentctl.Status(ctx, conn, dir)
		if err != nil || (running && !restart) {
			return playbooks.Result{Msg: "running"}, err
		}
		what := "start the agent"
		if running {
			what = "restart the agent"
		}
		return playbooks.Result{Changed: true, Msg: what}, t.Change(what, nil)
	}
	// One command finds out, (re)starts and waits: see agentctl.StartReady.
	var did agentctl.Started
	err = t.ChangeIf("start the agent", func() (bool, error) {
		did, err = agentctl.StartReady(ctx, conn, dir, restart, 15*time.Second, time.Duration(timeout)*time.Second)
		return did != agentctl.AlreadyRunning || err != nil, err
	})
	switch {
	case did == agentctl.Restarted:
		return playbooks.Result{Changed: true, Msg: "restart the agent"}, err
	case did == agentctl.StartedNow || err != nil:
		return playbooks.Result{Changed: true, Msg: "start the agent"}, err
	}
	return playbooks.Result{Msg: "running"}, nil
}

// agentStop stops the agent (SIGTERM, then SIGKILL after the grace period).
func (d Deps) agentStop(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	conn, a, err := d.hostAgent(ctx, t)
	if err != nil {
		return playbooks.Result{}, err
	}
	dir := a.Dir
	grace, _ := t.Args.Int("grace", 15)
	running, _, err := agentctl.Status(ctx, conn, dir)
	if err != nil || !running {
		return playbooks.Result{Msg: "not running"}, err
	}
	err = t.Change("stop the agent", func() error {
		_, err := agentctl.Stop(ctx, conn, dir, time.Duration(grace)*time.Second)
		return err
	})
	return playbooks.Result{Changed: true}, err
}

// agentCommand runs the agent CLI on the host: `agent_command: cluster list-database`.
// It reports no change unless `changed: true` is given (the agent CLI cannot tell).
func (d Deps) agentCommand(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	conn, a, err := d.hostAgent(ctx, t)
	if err != nil {
		return playbooks.Result{}, err
	}
	dir := a.Dir
	args, err := t.Args.StringList("args")
	if err != nil || len(args) == 0 {
		cmd, _ := t.Args.String("cmd", "")
		args = strings.Fields(cmd)
	}
	if len(args) == 0 {
		return playbooks.Result{}, fmt.Errorf("agent_command: args (a list) or cmd (a string) is required")
	}
	changed, _ := t.Args.Bool("changed", false)
	var out []byte
	run := func() error {
		out, err = agentctl.Run(ctx, conn, dir, nil, args...)
		return err
	}
	if changed {
		err = t.Change("nodeagent "+strings.Join(args, " "), run)
	} else {
		err = run()
	}
	return playbooks.Result{Changed: changed, Data: map[string]any{"stdout": string(out), "stdout_lines": splitLines(string(out))}}, err
}

func splitLines(s string) []any {
	var out []any
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// needsInstall compares the local binary's sha256 and mode 0755 with the installed one, and
// reports whether an agent binary is installed at all. The push that follows, when needed,
// takes its answer (transport.Conn.Compare): a fresh host is asked once.
func needsInstall(ctx context.Context, conn *transport.Conn, src, dir string) (need, installed bool, err error) {
	cmp, err := conn.Compare(ctx, src, agentctl.Binary(dir), 0o755)
	return !cmp.Same, cmp.Exists, err
}

// refuseDowngrade fails when the installed agent is newer than src: pushing an older agent
// onto a cluster that runs a newer schema would stop it (`orch upgrade --force` can). The
// refusal is recorded for the run's summary.
func (d Deps) refuseDowngrade(ctx context.Context, t *playbooks.TaskContext, conn *transport.Conn, src, dir string) error {
	res, err := agentctl.Cmd(ctx, conn, dir, transport.RunOptions{}, "version", "--format", "json")
	if err != nil || res.ExitCode != 0 {
		return err // no agent installed yet (or one too old to say): nothing to protect
	}
	var installed api.AgentVersion
	if json.Unmarshal(res.Stdout, &installed) != nil {
		return nil
	}
	local, err := localVersion(ctx, src)
	if err != nil {
		return err
	}
	if compareAgents(installed, local) <= 0 {
		return nil
	}
	d.Findings.addDowngrade(Downgrade{Host: t.Host, Member: d.memberName(t.Host),
		Running: describeVersion(installed), Offered: describeVersion(local), Src: src})
	return fmt.Errorf("%w: the installed agent %s is newer than the offered %s %s: pass the agent the cluster runs with --agent, "+
		"or downgrade on purpose with `orch upgrade --agent %s --force`", ErrDowngrade, describeVersion(installed), src, describeVersion(local), src)
}
