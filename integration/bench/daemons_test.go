package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"orch/integration/agenttest"
)

// offlineThreshold is cluster.offline_threshold for both orch and LXD (LXD's minimum is 11).
const offlineThreshold = "11"

// memberView is what both tools' `cluster list --format json` say about a member.
type memberView struct {
	Name   string   `json:"server_name"`
	Roles  []string `json:"roles"`
	Status string   `json:"status"`
}

func (m memberView) leader() bool {
	for _, r := range m.Roles {
		if r == "database-leader" {
			return true
		}
	}
	return false
}

func (m memberView) online() bool { return strings.EqualFold(m.Status, "online") }

// daemons is the part of a clustering tool the cluster benchmarks drive: one daemon per
// member, each with its own directory and loopback address, all inside one netns.
type daemons interface {
	// start starts member i's daemon (fresh or on its existing directory) and waits until it
	// answers locally.
	start(i int) error
	// bootstrap makes member 0 a one-member cluster from a preseed.
	bootstrap() error
	// join adds member i with a join token issued by member 0.
	join(i int) error
	// listCmd is `cluster list --format json` through member i's local socket.
	listCmd(ctx context.Context, i int) *exec.Cmd
}

// procs are the daemon processes of one cluster, by member index.
type procs struct {
	b     testing.TB
	ns    *netns
	base  string
	procs []*agenttest.Proc
}

func newProcs(b testing.TB, ns *netns, prefix string, n int) *procs {
	b.Helper()
	base, err := os.MkdirTemp("", prefix)
	if err != nil {
		b.Fatal(err)
	}
	p := &procs{b: b, ns: ns, base: base, procs: make([]*agenttest.Proc, n)}
	for i := range n {
		if err := os.MkdirAll(p.dir(i), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	b.Cleanup(func() {
		p.killAll()
		unmountUnder(base)
		_ = os.RemoveAll(base)
	})
	return p
}

func (p *procs) dir(i int) string     { return filepath.Join(p.base, fmt.Sprintf("m%d", i+1)) }
func (p *procs) logFile(i int) string { return filepath.Join(p.base, fmt.Sprintf("m%d.log", i+1)) }
func name(i int) string               { return fmt.Sprintf("node%d", i+1) }

// spawn starts cmd as member i's daemon in a session of its own, its output appended to
// the member's log.
func (p *procs) spawn(i int, cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	proc, err := agenttest.Spawn(cmd, p.logFile(i), "")
	if err != nil {
		return fmt.Errorf("%s: %w", name(i), err)
	}
	p.procs[i] = proc
	return nil
}

// pid is member i's daemon PID, 0 when it is not running.
func (p *procs) pid(i int) int {
	if p.procs[i] == nil {
		return 0
	}
	return p.procs[i].PID()
}

// kill sends SIGKILL to member i's daemon (by PID) and waits until it has exited.
func (p *procs) kill(i int) {
	if p.procs[i] == nil {
		return
	}
	if err := p.procs[i].SignalAndWait(syscall.SIGKILL, 10*time.Second); err != nil {
		p.b.Errorf("%s: %v", name(i), err)
	}
	p.procs[i] = nil
}

// killAll kills every member's daemon.
func (p *procs) killAll() {
	for i := range p.procs {
		p.kill(i)
	}
}

// runIn runs a command (stdin given) and returns its stdout, or an error with its output.
func runIn(cmd *exec.Cmd, stdin string) (string, error) {
	cmd.Stdin = strings.NewReader(stdin)
	var errb strings.Builder
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args, " "), err, tailOf(errb.String()+string(out), 10))
	}
	return string(out), nil
}

// listVia runs listCmd with a per-attempt timeout and decodes the members.
func listVia(d daemons, i int, timeout time.Duration) ([]memberView, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := runIn(d.listCmd(ctx, i), "")
	if err != nil {
		return nil, err
	}
	var ms []memberView
	if err := json.Unmarshal([]byte(out), &ms); err != nil {
		return nil, fmt.Errorf("cluster list output: %w: %.200s", err, out)
	}
	return ms, nil
}

// errCondition is a member list that does not (yet) satisfy a wait.
var errCondition = errors.New("not yet")

// find returns the member of ms named n.
func find(ms []memberView, n string) (memberView, bool) {
	for _, m := range ms {
		if m.Name == n {
			return m, true
		}
	}
	return memberView{}, false
}
