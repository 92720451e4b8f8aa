package lab

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"orch/internal/atomicfile"
)

// stateFile is the name of the lab's state file in its directory.
const stateFile = "lab.json"

// state is what Load needs to find and remove a lab: written before anything it names is
// created, so a crash at any point leaves a lab that Close can remove.
type state struct {
	Version   int         `json:"version"`
	ID        string      `json:"id"`
	Dir       string      `json:"dir"`
	Subnet    string      `json:"subnet"`
	Bridge    string      `json:"bridge"`
	Cgroup    string      `json:"cgroup,omitempty"`
	Ephemeral bool        `json:"ephemeral,omitempty"` // made by New: its directory is removed with it
	Owner     *owner      `json:"owner,omitempty"`     // the test process of an ephemeral lab
	Mounts    []string    `json:"mounts"`
	OS        string      `json:"os,omitempty"`     // the kind of every host: OSNamespace or OSDebian
	NAT       string      `json:"nat,omitempty"`    // nftables table masquerading the subnet (Debian hosts reach the package mirror)
	Uplink    string      `json:"uplink,omitempty"` // tc rate shaping control-to-host traffic on the bridge
	Hosts     []hostState `json:"hosts"`
}

// owner identifies a process across PID reuse: PID plus start time (clock ticks since boot).
type owner struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
}

func self() *owner {
	p, _ := readProc(os.Getpid())
	return &owner{PID: os.Getpid(), Start: p.start}
}

// alive reports whether the owner process still runs.
func (o *owner) alive() bool {
	p, ok := readProc(o.PID)
	return ok && p.state != 'Z' && p.start == o.Start
}

type hostState struct {
	Name  string `json:"name"`
	Index int    `json:"index"`
	Addr  string `json:"addr"`
	Netns string `json:"netns"`
	Veth  string `json:"veth"`
	OS    string `json:"os,omitempty"` // OSNamespace or OSDebian
}

// saveLocked writes the state file atomically; l.mu is held.
func (l *Lab) saveLocked() error {
	b, err := json.MarshalIndent(l.st, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(l.st.Dir, stateFile), append(b, '\n'), 0o644)
}

func loadState(dir string) (state, error) {
	var st state
	p := filepath.Join(dir, stateFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return st, fmt.Errorf("%s: %w", dir, ErrNoState)
	}
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("%s: %w", p, err)
	}
	if st.ID == "" || st.Version != stateVersion {
		return st, fmt.Errorf("%s: unknown state (version %d, id %q)", p, st.Version, st.ID)
	}
	return st, nil
}

// newKeyPair writes an ed25519 key pair in OpenSSH format (path and path.pub) unless the
// private key exists already: a restarted host keeps its identity.
func newKeyPair(path, comment string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return err
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))) + " " + comment + "\n"
	if err := os.WriteFile(path+".pub", []byte(line), 0o644); err != nil {
		return err
	}
	return atomicfile.Write(path, pem.EncodeToMemory(block), 0o600)
}

// writeClientKey creates the lab's client key and authorises it (for root and orchtest).
func writeClientKey(dir string) error {
	key := filepath.Join(dir, "id_ed25519")
	if err := newKeyPair(key, "orch-lab"); err != nil {
		return fmt.Errorf("client key: %w", err)
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		return fmt.Errorf("client key: %w", err)
	}
	return os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o644)
}

// writeKnownHosts lists every host's key by address, in OpenSSH known_hosts format.
func writeKnownHosts(path string, hosts []*Host) error {
	var b strings.Builder
	for _, h := range hosts {
		pub, err := os.ReadFile(h.hostKeyFile() + ".pub")
		if errors.Is(err, fs.ErrNotExist) {
			continue // creation failed before the key was written
		}
		if err != nil {
			return fmt.Errorf("known_hosts: %w", err)
		}
		key, _, _, _, err := ssh.ParseAuthorizedKey(pub)
		if err != nil {
			return fmt.Errorf("known_hosts: %s: %w", h.hostKeyFile()+".pub", err)
		}
		b.WriteString(knownhosts.Line([]string{h.Addr}, key) + "\n")
	}
	return atomicfile.Write(path, []byte(b.String()), 0o644)
}

// writeHostsFile writes the file mounted over /etc/hosts in every host. It is rewritten in
// place (same inode) because running hosts have it bind-mounted.
func writeHostsFile(path string, hosts []*Host) error {
	var b strings.Builder
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	for _, h := range hosts {
		fmt.Fprintf(&b, "%s\t%s\n", h.Addr, h.Name)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("hosts file: %w", err)
	}
	return nil
}

// WriteInventory writes an Ansible INI inventory of the lab's hosts (host1..hostN with
// ansible_host, ansible_user=root and ansible_ssh_private_key_file) to path; extra
// variables go to [all:vars].
func (l *Lab) WriteInventory(path string, extra map[string]string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# orch test lab %s (%s), written by integration/lab\n", l.st.ID, l.st.Dir)
	for _, h := range l.Hosts() {
		fmt.Fprintf(&b, "%s ansible_host=%s ansible_user=root ansible_ssh_private_key_file=%s\n", h.Name, h.Addr, l.KeyFile())
	}
	if len(extra) > 0 {
		b.WriteString("\n[all:vars]\n")
		keys := make([]string, 0, len(extra))
		for k := range extra {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			v := extra[k]
			if strings.ContainsAny(k+v, "\n\r") || strings.ContainsAny(k, " =") || k == "" {
				return fmt.Errorf("inventory var %q: invalid name or value", k)
			}
			fmt.Fprintf(&b, "%s=%s\n", k, v)
		}
	}
	if err := atomicfile.Write(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("inventory: %w", err)
	}
	return nil
}

// writeSSHConfig writes SSHConfigFile; l.mu is held.
func (l *Lab) writeSSHConfig() error {
	var b strings.Builder
	for _, h := range l.hosts {
		fmt.Fprintf(&b, "Host %s\n  HostName %s\n", h.Name, h.Addr)
	}
	fmt.Fprintf(&b, "Host *\n  User root\n  IdentityFile \"%s\"\n  IdentitiesOnly yes\n", l.KeyFile())
	fmt.Fprintf(&b, "  UserKnownHostsFile \"%s\"\n  GlobalKnownHostsFile /dev/null\n", l.KnownHostsFile())
	b.WriteString("  StrictHostKeyChecking yes\n  BatchMode yes\n  ConnectTimeout 10\n")
	if err := atomicfile.Write(l.SSHConfigFile(), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("ssh config: %w", err)
	}
	return nil
}
