package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"orch/integration/agenttest"
	"orch/internal/wait"
	"orch/nodeagent/api"
)

// TestInteractiveInit drives `nodeagent init` through a pseudo-terminal as an operator
// would: bootstrap by answering the guide's questions, then join a second agent with the
// trust password after confirming the cluster fingerprint. Prompts must come in order, the
// password must not be echoed, and the result must be a two-member cluster. As in LXD, the
// trust password is confirmed ("Again: "), the pool made becomes the default profile's root
// disk, the joiner is asked for the pool's member-specific keys, and each side may print its
// preseed, which leaves the secrets out.
func TestInteractiveInit(t *testing.T) {
	ms := agenttest.StartN(t, 2)
	node1, node2 := ms[0], ms[1]
	const pw = "interactive-sekret"

	c := startConsole(t, node1, "init")
	c.answer("Would you like to use clustering? (yes/no) [default=yes]: ", "")
	c.answer("What member name should be used to identify this server in the cluster?", node1.Name)
	c.answer("What IP address or DNS name should be used to reach this server?", node1.Addr)
	c.answer("Are you joining an existing cluster? (yes/no) [default=no]: ", "no")
	c.answer("Setup password authentication on the cluster? (yes/no) [default=no]: ", "yes")
	c.secret("Trust password for new clients: ", pw)
	c.secret("Again: ", pw+"-typo")
	c.expect("The passwords do not match; try again.")
	c.secret("Trust password for new clients: ", pw)
	c.secret("Again: ", pw)
	c.answer("Do you want to configure a new storage pool? (yes/no) [default=no]: ", "yes")
	c.answer("Name of the storage pool [default=default]: ", "")
	c.answer("Name of the storage backend to use (dir, btrfs, lvm, zfs) [default=dir]: ", "dir")
	c.answer("Would you like to create a new network bridge? (yes/no) [default=no]: ", "no")
	c.answer(`Would you like a YAML "init" preseed to be printed? (yes/no) [default=no]: `, "yes")
	c.expect("# config.core.trust_password is not printed")
	c.expect("profiles:")
	c.expect("Member node1 is ready.")
	c.wait()
	profile := node1.MustRun("profile", "show", "default")
	for _, w := range []string{"root:", "pool: default", "path: /", "type: disk"} {
		if !strings.Contains(profile, w) {
			t.Errorf("the default profile has no root disk on pool default (%q missing):\n%s", w, profile)
		}
	}

	fp := strings.TrimSpace(node1.MustRun("cluster", "fingerprint"))
	source := filepath.Join(filepath.Dir(node2.Dir), "pool-source")
	if err := os.Mkdir(source, 0o700); err != nil {
		t.Fatal(err)
	}
	c = startConsole(t, node2, "init")
	c.answer("Would you like to use clustering? (yes/no) [default=yes]: ", "yes")
	c.answer("What member name should be used to identify this server in the cluster?", node2.Name)
	c.answer("What IP address or DNS name should be used to reach this server?", node2.Addr)
	c.answer("Are you joining an existing cluster? (yes/no) [default=no]: ", "yes")
	c.answer("Do you have a join token? (yes/no) [default=yes]: ", "no")
	c.answer("IP address or FQDN of an existing cluster member: ", node1.Addr)
	c.expect("Cluster fingerprint: " + fp)
	c.answer("Is this the correct fingerprint? (yes/no) [default=no]: ", "yes")
	c.secret("Cluster trust password: ", pw)
	c.answer("All existing data is lost when joining a cluster, continue? (yes/no) [default=no]: ", "yes")
	c.answer(`Choose "source" property for storage pool "default": `, source)
	c.answer(`Would you like a YAML "init" preseed to be printed? (yes/no) [default=no]: `, "yes")
	c.expect("# cluster.cluster_password is not printed")
	c.expect("value: " + source)
	c.expect("Member node2 is ready.")
	c.wait()

	roles := cliRoles(t, node2)
	if len(roles) != 2 || roles["node1"] != api.RoleDatabaseLeader+","+api.RoleDatabase || roles["node2"] != "" {
		t.Errorf("after the interactive join: roles %v; want node1 database-leader,database and node2 none", roles)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := node2.Client().Cluster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cl.MemberConfig) == 0 || cl.MemberConfig[0].Entity != "storage-pool" || cl.MemberConfig[0].Name != "default" {
		t.Errorf("GET /1.0/cluster member_config %+v: want the keys of storage pool default made interactively", cl.MemberConfig)
	}
	if show := node1.MustRun("storage", "show", "default", "--target", node2.Name); !strings.Contains(show, "source: "+source) {
		t.Errorf("storage pool default on %s does not have the source answered interactively (%s):\n%s", node2.Name, source, show)
	}
}

// TestInteractiveInitDump answers the bootstrap questions from a script on stdin, with a
// pool and a bridge, and `--dump`: the preseed printed has the default profile's root disk
// on the pool and its eth0 on the bridge, as LXD's, leaves the trust password out, and the
// agent is left uninitialised.
func TestInteractiveInitDump(t *testing.T) {
	a := agenttest.Start(t, "node1", agenttest.NewAddr(t))
	const pw = "dump-sekret"
	script := strings.Join([]string{"yes", a.Name, a.Addr, "no", "yes", pw, pw, "yes", "data", "dir", "yes", "orchbr9", "auto"}, "\n") + "\n"
	out := a.MustRunInput(script, "init", "--dump")
	if strings.Contains(out, pw) {
		t.Errorf("the printed preseed holds the trust password:\n%s", out)
	}
	if !strings.Contains(out, "# config.core.trust_password is not printed") {
		t.Errorf("the printed preseed does not say the trust password was left out:\n%s", out)
	}
	yamlStart := strings.Index(out, "config:")
	if yamlStart < 0 {
		t.Fatalf("no preseed printed:\n%s", out)
	}
	p, err := api.ParsePreseed("output", []byte(out[yamlStart:]))
	if err != nil {
		t.Fatalf("the printed preseed does not parse: %v\n%s", err, out)
	}
	want := map[string]map[string]string{
		"root": {"path": "/", "pool": "data", "type": "disk"},
		"eth0": {"name": "eth0", "nictype": "bridged", "parent": "orchbr9", "type": "nic"},
	}
	if len(p.Profiles) != 1 || p.Profiles[0].Name != "default" || fmt.Sprint(p.Profiles[0].Devices) != fmt.Sprint(want) {
		t.Errorf("profiles %+v; want default with devices %v", p.Profiles, want)
	}
	if _, ok := p.Config["core.trust_password"]; ok {
		t.Errorf("config %v holds core.trust_password", p.Config)
	}
	if s, _ := agenttest.Server(t, a); s.Environment.Initialised {
		t.Errorf("init --dump initialised the agent")
	}
}

// console is a CLI process on a pseudo-terminal and the transcript of what it printed.
type console struct {
	t    *testing.T
	cmd  *exec.Cmd
	ptmx *os.File // our side
	tty  *os.File // the process's side, kept open to watch its echo flag until it exits
	done chan struct{}
	// drained is closed once the reader has everything the process printed: the process
	// exited, our copy of its side was closed, and reading our side reached the end. A
	// process that exited has not necessarily been read to the end yet: expect judged its
	// transcript on exit alone and missed the CLI's last line (~1 run in 5 under load).
	drained chan struct{}

	mu      sync.Mutex
	out     strings.Builder
	pos     int      // transcript consumed by expect
	secrets []string // typed without echo: must never appear in the transcript
}

// startConsole runs `nodeagent --dir DIR args...` with a pty as its terminal.
func startConsole(t *testing.T, a *agenttest.Agent, args ...string) *console {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal available (mount devpts): %v", err)
	}
	cmd := exec.Command(agenttest.Bin(), append([]string{"--dir", a.Dir}, args...)...)
	cmd.Env = agenttest.Env()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &console{t: t, cmd: cmd, ptmx: ptmx, tty: tty, done: make(chan struct{}), drained: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(c.done)
		tty.Close() // the last open copy of the terminal's side: reading ours then ends
	}()
	go c.read()
	t.Cleanup(func() {
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		<-c.done
		tty.Close()
		ptmx.Close()
		if t.Failed() {
			t.Logf("[%s console] transcript:\n%s", a.Name, c.transcript())
		}
	})
	return c
}

func (c *console) read() {
	buf := make([]byte, 4096)
	for {
		n, err := c.ptmx.Read(buf)
		c.mu.Lock()
		c.out.Write(buf[:n])
		c.mu.Unlock()
		if err != nil {
			close(c.drained)
			return
		}
	}
}

func (c *console) transcript() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.String()
}

// expect waits until s appears in the transcript after what earlier expects consumed.
func (c *console) expect(s string) {
	c.t.Helper()
	wait.For(c.t, 15*time.Second, fmt.Sprintf("prompt %q", s), func() error {
		drained := false
		select {
		case <-c.drained: // before reading the transcript: it is then complete
			drained = true
		default:
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		rest := c.out.String()[c.pos:]
		if i := strings.Index(rest, s); i >= 0 {
			c.pos += i + len(s)
			return nil
		}
		if drained {
			c.t.Fatalf("the CLI exited (%v) without printing %q; after the last prompt it printed %q", c.cmd.ProcessState, s, rest)
		}
		return fmt.Errorf("printed since the last prompt: %q", rest)
	})
}

// answer waits for prompt, then types line and Enter.
func (c *console) answer(prompt, line string) {
	c.t.Helper()
	c.expect(prompt)
	c.typeLine(line)
}

// secret waits for prompt and for the terminal's echo to be turned off, then types s.
func (c *console) secret(prompt, s string) {
	c.t.Helper()
	c.expect(prompt)
	wait.For(c.t, 10*time.Second, "echo off for "+prompt, func() error {
		tio, err := unix.IoctlGetTermios(int(c.tty.Fd()), unix.TCGETS)
		if err != nil {
			return err
		}
		if tio.Lflag&unix.ECHO != 0 {
			return errors.New("the terminal still echoes")
		}
		return nil
	})
	c.secrets = append(c.secrets, s)
	c.typeLine(s)
}

func (c *console) typeLine(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.ptmx, s+"\r"); err != nil {
		c.t.Fatal(err)
	}
}

// wait waits for the CLI to exit 0 and checks no secret was echoed.
func (c *console) wait() {
	c.t.Helper()
	select {
	case <-c.done:
	case <-time.After(60 * time.Second):
		c.t.Fatalf("the CLI did not exit within 60s")
	}
	if code := c.cmd.ProcessState.ExitCode(); code != 0 {
		c.t.Fatalf("the CLI exited %d", code)
	}
	out := c.transcript()
	for _, s := range c.secrets {
		if strings.Contains(out, s) {
			c.t.Errorf("a secret typed at a password prompt was echoed: transcript %q", out)
		}
	}
}

// TestInteractiveJoinWithToken joins with a join token from a script on stdin: the joiner
// is asked, as in LXD, for the member-specific keys of the cluster's pool "local" (the
// cluster answers for the token without consuming it), and the join then uses the token.
func TestInteractiveJoinWithToken(t *testing.T) {
	ms := agenttest.StartN(t, 2)
	node1, node2 := ms[0], ms[1]
	agenttest.Bootstrap(t, node1, api.Preseed{StoragePools: []api.StoragePool{{Name: "local", Driver: "dir"}}})
	tok := agenttest.NewToken(t, node1, node2.Name)
	script := strings.Join([]string{"yes", node2.Name, node2.Addr, "yes", "yes", tok, "yes", "", "no"}, "\n") + "\n"
	out := node2.MustRunInput(script, "init")
	for _, w := range []string{`Choose "source" property for storage pool "local": `,
		`Would you like a YAML "init" preseed to be printed? (yes/no) [default=no]: `, "Member node2 is ready."} {
		if !strings.Contains(out, w) {
			t.Errorf("the interactive join did not print %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, tok) {
		t.Errorf("the join token appears in the output:\n%s", out)
	}
	waitMember(t, node1, node2.Name)
}
