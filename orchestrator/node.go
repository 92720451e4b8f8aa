package orchestrator

import (
	"context"
	"fmt"
	"io"

	"orch/orchestrator/agentctl"
	"orch/orchestrator/transport"
	"orch/playbooks"
)

// Node runs the agent CLI on one inventory host over SSH (`orch node NAME -- ARGS`),
// streaming its output and returning its exit code.
func Node(ctx context.Context, opts Options, host string, args []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	s, err := openSession(opts)
	if err != nil {
		return 1, err
	}
	defer s.close()
	h := s.inv.Host(host)
	if h == nil {
		return 1, fmt.Errorf("no host %q in %s", host, opts.Inventory)
	}
	c, err := s.conns.SSH(ctx, host)
	if err != nil {
		return 1, err
	}
	res, err := agentctl.Cmd(ctx, c, s.agents[host].Dir, transport.RunOptions{Stdin: stdin, Stdout: stdout, Stderr: stderr, Become: true}, args...)
	if err != nil {
		return 1, err
	}
	return res.ExitCode, nil
}

// List prints the hosts and/or tasks a playbook would run (--list-hosts, --list-tasks).
func List(path string, opts Options, hosts, tasks bool) error {
	s, err := openSession(opts)
	if err != nil {
		return err
	}
	defer s.close()
	pb, err := playbooks.Load(path)
	if err != nil {
		return err
	}
	hs, groups, err := s.hosts()
	if err != nil {
		return err
	}
	plays, err := playbooks.List(pb, playbooks.Options{Hosts: hs, Groups: groups, Select: s.selector(),
		Limit: opts.Limit, Tags: opts.Tags, SkipTags: opts.SkipTags})
	if err != nil {
		return err
	}
	if hosts {
		playbooks.WriteHostList(s.opts.Out, pb, plays)
	}
	if tasks {
		playbooks.WriteTaskList(s.opts.Out, pb, plays)
	}
	return nil
}
