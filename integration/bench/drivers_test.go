package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"orch/nodeagent/api"
)

// orchDaemons are nodeagent daemons (production raft timings) on 127.0.2.N:8443.
type orchDaemons struct{ *procs }

func (o orchDaemons) addr(i int) string { return fmt.Sprintf("127.0.2.%d:8443", i+1) }

func (o orchDaemons) start(i int) error {
	if err := o.spawn(i, o.ns.command(bins.agent, "daemon", "--dir", o.dir(i))); err != nil {
		return err
	}
	_, err := runIn(exec.Command(bins.agent, "--dir", o.dir(i), "waitready", "--timeout", "30"), "")
	return err
}

func (o orchDaemons) cli(i int, args ...string) *exec.Cmd {
	return o.ns.command(bins.agent, append([]string{"--dir", o.dir(i)}, args...)...)
}

func (o orchDaemons) bootstrap() error {
	p := api.Preseed{
		Config:  map[string]string{"core.https_address": o.addr(0), "cluster.offline_threshold": offlineThreshold},
		Cluster: &api.ClusterPut{Enabled: true, ServerName: name(0)},
	}
	return o.preseed(0, p)
}

func (o orchDaemons) join(i int) error {
	tok, err := runIn(o.cli(0, "cluster", "add", name(i)), "")
	if err != nil {
		return err
	}
	return o.preseed(i, api.Preseed{Cluster: &api.ClusterPut{Enabled: true, ServerName: name(i),
		ServerAddress: o.addr(i), ClusterToken: strings.TrimSpace(tok)}})
}

func (o orchDaemons) preseed(i int, p api.Preseed) error {
	b, err := yaml.Marshal(p)
	if err != nil {
		return err
	}
	_, err = runIn(o.cli(i, "init", "--preseed"), string(b))
	return err
}

func (o orchDaemons) listCmd(ctx context.Context, i int) *exec.Cmd {
	return exec.CommandContext(ctx, bins.agent, "--dir", o.dir(i), "cluster", "list", "--format", "json")
}

// lxdDaemons are LXD daemons, each with its own LXD_DIR, on 127.0.1.N:8443, as LXD's own
// test suite runs several on one machine.
type lxdDaemons struct{ *procs }

// lxdVersion is "LXD X.Y", or an error when lxd cannot run here.
func lxdVersion() (string, error) {
	for _, tool := range []string{"lxd", "lxc"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", fmt.Errorf("%s %w (apt-get install lxd; scripts/bench-peers.sh does)", tool, errSkipped)
		}
	}
	out, err := exec.Command("lxd", "--version").Output()
	if err != nil {
		return "", fmt.Errorf("lxd --version: %w", err)
	}
	return "LXD " + strings.TrimSpace(string(out)), nil
}

func (l lxdDaemons) addr(i int) string { return fmt.Sprintf("127.0.1.%d:8443", i+1) }

func (l lxdDaemons) env(i int) []string {
	return append(os.Environ(), "LXD_DIR="+l.dir(i), "LXD_CONF="+l.dir(i)+".conf")
}

// in is a command run inside the netns with member i's LXD_DIR.
func (l lxdDaemons) in(i int, name string, args ...string) *exec.Cmd {
	cmd := l.ns.command(name, args...)
	cmd.Env = l.env(i)
	return cmd
}

func (l lxdDaemons) start(i int) error {
	if err := l.spawn(i, l.in(i, "lxd", "--logfile", l.logFile(i)+".lxd", "daemon")); err != nil {
		return err
	}
	cmd := exec.Command("lxd", "waitready", "--timeout", "60")
	cmd.Env = l.env(i)
	_, err := runIn(cmd, "")
	return err
}

func (l lxdDaemons) bootstrap() error {
	// cluster.offline_threshold in the bootstrap preseed makes LXD 5.0 drop the connection
	// (EOF), so it is set once the member is clustered.
	p := fmt.Sprintf("config:\n  core.https_address: %s\n  images.auto_update_interval: 0\ncluster:\n  server_name: %s\n  enabled: true\n",
		l.addr(0), name(0))
	if _, err := runIn(l.in(0, "lxd", "init", "--preseed"), p); err != nil {
		return err
	}
	_, err := runIn(l.in(0, "lxc", "config", "set", "cluster.offline_threshold", offlineThreshold), "")
	return err
}

func (l lxdDaemons) join(i int) error {
	tok, err := runIn(l.in(0, "lxc", "cluster", "add", name(i), "--quiet"), "")
	if err != nil {
		return err
	}
	p := fmt.Sprintf("cluster:\n  server_name: %s\n  enabled: true\n  server_address: %s\n  cluster_token: %s\n",
		name(i), l.addr(i), strings.TrimSpace(tok))
	_, err = runIn(l.in(i, "lxd", "init", "--preseed"), p)
	return err
}

func (l lxdDaemons) listCmd(ctx context.Context, i int) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "lxc", "cluster", "list", "--format", "json")
	cmd.Env = l.env(i)
	cmd.WaitDelay = time.Second
	return cmd
}
