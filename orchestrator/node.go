package orchestrator

import (
	"context"
	"fmt"
	"io"

	"orch/internal/shell"
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
	a, err := h.Agent()
	if err != nil {
		return 1, err
	}
	c, err := s.conns.Connect(ctx, playbooks.Host{Name: host})
	if err != nil {
		return 1, err
	}
	cmd := shell.Quote(a.Dir+"/bin/nodeagent") + " --dir " + shell.Quote(a.Dir)
	for _, arg := range args {
		cmd += " " + shell.Quote(arg)
	}
	res, err := c.(connAdapter).c.Run(ctx, cmd, transport.RunOptions{Stdin: stdin, Stdout: stdout, Stderr: stderr, Become: true})
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
