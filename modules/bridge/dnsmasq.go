package bridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// PidFile is the pidfile of network name's dnsmasq.
func (m *Manager) PidFile(name string) string { return filepath.Join(m.RunDir(name), "dnsmasq.pid") }

// LeaseFile is the lease file of network name's dnsmasq.
func (m *Manager) LeaseFile(name string) string {
	return filepath.Join(m.RunDir(name), "dnsmasq.leases")
}

// dnsmasqArgs are dnsmasq's arguments for the network, nil when it needs none.
func (m *Manager) dnsmasqArgs(name string, cfg Config) []string {
	if cfg.IPv4 == nil && cfg.IPv6 == nil {
		return nil
	}
	args := []string{"--keep-in-foreground", "--strict-order", "--bind-interfaces", "--except-interface=lo",
		"--no-ping", "--no-resolv", "--conf-file=/dev/null", "--user=root", "--log-facility=-",
		"--interface=" + name, "--pid-file=" + m.PidFile(name), "--dhcp-leasefile=" + m.LeaseFile(name),
		"--domain=" + cfg.Domain, "--local=/" + cfg.Domain + "/", "--dhcp-no-override", "--dhcp-authoritative"}
	if cfg.IPv4 != nil {
		args = append(args, "--listen-address="+cfg.IPv4.IP.String())
		if cfg.DHCP {
			ranges := cfg.DHCPRanges
			if len(ranges) == 0 {
				ranges = [][2]net.IP{defaultRange(cfg.IPv4)}
			}
			for _, r := range ranges {
				args = append(args, fmt.Sprintf("--dhcp-range=%s,%s,1h", r[0], r[1]))
			}
		}
	}
	if cfg.IPv6 != nil {
		args = append(args, "--listen-address="+cfg.IPv6.IP.String(), "--enable-ra",
			"--dhcp-range=::,constructor:"+name+",ra-stateless,ra-names")
	}
	return args
}

// applyDnsmasq starts, restarts (arguments changed) or stops the network's dnsmasq.
func (m *Manager) applyDnsmasq(name string, cfg Config) error {
	args := m.dnsmasqArgs(name, cfg)
	m.mu.Lock()
	s := m.sups[name]
	m.mu.Unlock()
	if s != nil && slices.Equal(s.args, args) {
		return nil
	}
	m.stopDnsmasq(name)
	if args == nil {
		return nil
	}
	if err := os.MkdirAll(m.RunDir(name), 0o700); err != nil {
		return err
	}
	s = &supervisor{m: m, name: name, args: args, stop: make(chan struct{}), done: make(chan struct{}), started: make(chan error, 1)}
	go s.loop()
	if err := <-s.started; err != nil {
		return fmt.Errorf("network %s: starting dnsmasq: %w", name, err)
	}
	m.mu.Lock()
	m.sups[name] = s
	m.mu.Unlock()
	return nil
}

// stopDnsmasq stops the supervised dnsmasq, or one left by an earlier run (pidfile).
func (m *Manager) stopDnsmasq(name string) {
	m.mu.Lock()
	s := m.sups[name]
	delete(m.sups, name)
	m.mu.Unlock()
	if s != nil {
		s.shutdown()
	}
	killStale(m.PidFile(name), name)
}

// DnsmasqPID is the PID of the network's running dnsmasq, 0 if none.
func (m *Manager) DnsmasqPID(name string) int {
	m.mu.Lock()
	s := m.sups[name]
	m.mu.Unlock()
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pid
}

// supervisor runs one dnsmasq and restarts it when it dies.
type supervisor struct {
	m       *Manager
	name    string
	args    []string
	stop    chan struct{}
	done    chan struct{}
	started chan error
	mu      sync.Mutex
	pid     int
	keep    bool // detach: leave the process running
}

func (s *supervisor) loop() {
	defer close(s.done)
	backoff := 100 * time.Millisecond
	first := true
	for {
		cmd, exited, err := s.start()
		if first {
			s.started <- err
			first = false
			if err != nil {
				return
			}
		}
		if err != nil {
			s.m.log.Warn("dnsmasq failed to start", "network", s.name, "err", err)
		}
		began := time.Now()
		select {
		case <-s.stop:
			if cmd != nil && !s.keep {
				_ = cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-exited:
				case <-time.After(5 * time.Second):
					_ = cmd.Process.Kill()
					<-exited
				}
			}
			return
		case <-exited:
		}
		if time.Since(began) > 10*time.Second {
			backoff = 100 * time.Millisecond
		}
		s.m.log.Warn("dnsmasq exited; restarting", "network", s.name, "in", backoff)
		select {
		case <-s.stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// start starts dnsmasq; exited is closed when it has been reaped.
func (s *supervisor) start() (*exec.Cmd, chan struct{}, error) {
	exited := make(chan struct{})
	killStale(s.m.PidFile(s.name), s.name)
	logf, err := os.OpenFile(filepath.Join(s.m.RunDir(s.name), "dnsmasq.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, exited, err
	}
	defer logf.Close()
	cmd := s.m.command(context.Background(), "dnsmasq", s.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// dnsmasq dies with the agent; the next agent start restarts it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, exited, err
	}
	s.mu.Lock()
	s.pid = cmd.Process.Pid
	s.mu.Unlock()
	go func() { _ = cmd.Wait(); close(exited) }()
	// dnsmasq binds at once; an early exit means a bad configuration or a busy port.
	select {
	case <-exited:
		b, _ := os.ReadFile(filepath.Join(s.m.RunDir(s.name), "dnsmasq.log"))
		return nil, exited, fmt.Errorf("dnsmasq exited at once: %s", lastLine(string(b)))
	case <-time.After(200 * time.Millisecond):
	}
	return cmd, exited, nil
}

func (s *supervisor) shutdown() {
	close(s.stop)
	<-s.done
}

func (s *supervisor) detach() {
	s.keep = true
	s.shutdown()
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// killStale terminates a dnsmasq of this network recorded in pidfile (from a previous
// agent run), checking its command line first so that a reused PID is left alone.
func killStale(pidfile, name string) {
	b, err := os.ReadFile(pidfile)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), "dnsmasq") || !strings.Contains(string(cmdline), "--interface="+name+"\x00") {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	_ = os.Remove(pidfile)
}
