package lxc

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
)

// State is a container's run state as LXC reports it.
type State string

// The states lxc-info reports.
const (
	StateStopped  State = "STOPPED"
	StateStarting State = "STARTING"
	StateRunning  State = "RUNNING"
	StateStopping State = "STOPPING"
	StateAborting State = "ABORTING"
	StateFreezing State = "FREEZING"
	StateFrozen   State = "FROZEN"
	StateThawed   State = "THAWED"
)

// Info is what lxc-info knows about a container.
type Info struct {
	// Name of the container.
	Name string `json:"name"`
	// State such as RUNNING or STOPPED.
	State State `json:"state"`
	// PID of the container's init on the host, 0 when stopped.
	PID int `json:"pid,omitempty"`
	// IPv4 addresses of the container (every interface but lo).
	IPv4 []string `json:"ipv4,omitempty"`
	// IPv6 addresses of the container (every interface but lo).
	IPv6 []string `json:"ipv6,omitempty"`
}

// Info returns the state, init PID and addresses of the container.
func (m *Manager) Info(ctx context.Context, name string) (Info, error) {
	if err := m.need(name); err != nil {
		return Info{}, err
	}
	ctx, cancel := m.withTimeout(ctx)
	defer cancel()
	out, err := m.run(ctx, call{tool: "lxc-info", name: name, args: m.args(name, "-s", "-p", "-i")})
	if err != nil {
		return Info{}, err
	}
	return parseInfo(name, out)
}

// parseInfo reads lxc-info's "Key: value" lines.
func parseInfo(name, out string) (Info, error) {
	in := Info{Name: name}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch strings.TrimSpace(k) {
		case "State":
			in.State = State(v)
		case "PID":
			in.PID, _ = strconv.Atoi(v)
		case "IP":
			ip := net.ParseIP(v)
			switch {
			case ip == nil || ip.IsLoopback():
			case ip.To4() != nil:
				in.IPv4 = append(in.IPv4, v)
			default:
				in.IPv6 = append(in.IPv6, v)
			}
		}
	}
	if in.State == "" {
		return in, fmt.Errorf("%s: lxc-info printed no state: %q", name, tail(out, 256))
	}
	return in, nil
}

// state returns the container's state.
func (m *Manager) state(ctx context.Context, name string) (State, error) {
	if err := m.need(name); err != nil {
		return "", err
	}
	ctx, cancel := m.withTimeout(ctx)
	defer cancel()
	out, err := m.run(ctx, call{tool: "lxc-info", name: name, args: m.args(name, "-s", "-H")})
	if err != nil {
		return "", err
	}
	st := State(strings.TrimSpace(out))
	if st == "" {
		return "", fmt.Errorf("%s: lxc-info printed no state", name)
	}
	return st, nil
}

// List returns the Info of every container under the lxcpath, sorted by name.
func (m *Manager) List(ctx context.Context) ([]Info, error) {
	names, err := m.Names(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Info, 0, len(names))
	for _, n := range names {
		in, err := m.Info(ctx, n)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, nil
}

// Names returns the names of the containers under the lxcpath, sorted.
func (m *Manager) Names(ctx context.Context) ([]string, error) {
	ctx, cancel := m.withTimeout(ctx)
	defer cancel()
	out, err := m.run(ctx, call{tool: "lxc-ls", name: "*", args: []string{"-P", m.cfg.LXCPath, "-1"}})
	if err != nil {
		return nil, err
	}
	names := strings.Fields(out)
	sort.Strings(names)
	return names, nil
}
