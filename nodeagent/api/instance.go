package api

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Instance statuses, as LXD shows them.
const (
	InstanceRunning  = "Running"
	InstanceStopped  = "Stopped"
	InstanceCreating = "Creating"
	InstanceError    = "Error"
	// InstanceUnknown is shown for an instance whose member is OFFLINE or did not answer.
	InstanceUnknown = "Unknown"
)

// Instance is GET /1.0/instances/{name}: a container and where it runs.
type Instance struct {
	// Name of the instance, unique in the cluster.
	Name string `json:"name" yaml:"name"`
	// Location is the member that owns the instance (the NODE column).
	Location string `json:"location" yaml:"location"`
	// Status is Running, Stopped, Creating, Error or Unknown (owner offline).
	Status string `json:"status" yaml:"status"`
	// Image is the fingerprint of the image the instance was made from.
	Image string `json:"image" yaml:"image"`
	// Profiles applied at launch, in order.
	Profiles []string `json:"profiles" yaml:"profiles"`
	// Config is the instance's configuration, volatile keys included.
	Config map[string]string `json:"config,omitempty" yaml:"config,omitempty"`
	// IPv4 addresses of the instance.
	IPv4 []string `json:"ipv4,omitempty" yaml:"ipv4,omitempty"`
	// IPv6 addresses of the instance.
	IPv6 []string `json:"ipv6,omitempty" yaml:"ipv6,omitempty"`
	// PID of the instance's init on its member, 0 when stopped.
	PID int `json:"pid,omitempty" yaml:"pid,omitempty"`
	// CreatedAt is when the instance was launched.
	CreatedAt time.Time `json:"created_at" yaml:"created_at"`
	// Message explains an Unknown or Error status.
	Message string `json:"message,omitempty" yaml:"message,omitempty"`

	// LXD's fields of an instance (GET /1.0/instances/NAME), for LXD's clients.

	// Type is always "container".
	Type string `json:"type" yaml:"type"`
	// Project is always "default".
	Project string `json:"project" yaml:"project"`
	// Architecture is the owner's kernel architecture.
	Architecture string `json:"architecture" yaml:"architecture"`
	// StatusCode is LXD's code of Status (103 running, 102 stopped, 106 starting, 112 error).
	StatusCode int `json:"status_code" yaml:"status_code"`
	// Description is always "" (not stored).
	Description string `json:"description" yaml:"description"`
	// Devices of the instance itself, over its profiles'.
	Devices map[string]map[string]string `json:"devices" yaml:"devices"`
	// ExpandedConfig is the profiles' config, in order, overlaid with the instance's.
	ExpandedConfig map[string]string `json:"expanded_config" yaml:"expanded_config"`
	// ExpandedDevices are the profiles' devices, in order.
	ExpandedDevices map[string]map[string]string `json:"expanded_devices" yaml:"expanded_devices"`
	// Ephemeral and Stateful are always false.
	Ephemeral bool `json:"ephemeral" yaml:"ephemeral"`
	Stateful  bool `json:"stateful" yaml:"stateful"`
	// LastUsedAt is when the instance was created (start times are not stored).
	LastUsedAt time.Time `json:"last_used_at" yaml:"last_used_at"`
}

// InstanceFull is an instance with its state: the objects of GET
// /1.0/instances?recursion=2 (`lxc list`), as LXD's.
type InstanceFull struct {
	Instance `yaml:",inline"`
	// State is the instance's live state (nil when its member did not answer).
	State *InstanceState `json:"state" yaml:"state"`
	// Snapshots are the instance's snapshots (null when it has none, as LXD's); Backups
	// are not supported: always null.
	Snapshots []InstanceSnapshot `json:"snapshots" yaml:"snapshots"`
	Backups   []any              `json:"backups" yaml:"backups"`
}

// InstanceState is GET /1.0/instances/NAME/state, as LXD's.
type InstanceState struct {
	Status     string                          `json:"status" yaml:"status"`
	StatusCode int                             `json:"status_code" yaml:"status_code"`
	Disk       map[string]any                  `json:"disk" yaml:"disk"`
	Memory     InstanceStateMemory             `json:"memory" yaml:"memory"`
	Network    map[string]InstanceStateNetwork `json:"network" yaml:"network"`
	Pid        int64                           `json:"pid" yaml:"pid"`
	Processes  int64                           `json:"processes" yaml:"processes"`
	CPU        InstanceStateCPU                `json:"cpu" yaml:"cpu"`
}

// InstanceStateMemory is the memory part of an instance's state, in bytes (measured by its owner).
type InstanceStateMemory struct {
	Usage         int64 `json:"usage" yaml:"usage"`
	UsagePeak     int64 `json:"usage_peak" yaml:"usage_peak"`
	SwapUsage     int64 `json:"swap_usage" yaml:"swap_usage"`
	SwapUsagePeak int64 `json:"swap_usage_peak" yaml:"swap_usage_peak"`
}

// InstanceStateCPU is the CPU time an instance used, in nanoseconds (measured by its owner).
type InstanceStateCPU struct {
	Usage int64 `json:"usage" yaml:"usage"`
}

// InstanceStateNetwork is one interface of an instance's state.
type InstanceStateNetwork struct {
	Addresses []InstanceStateNetworkAddress `json:"addresses" yaml:"addresses"`
	Counters  map[string]int64              `json:"counters" yaml:"counters"`
	Hwaddr    string                        `json:"hwaddr" yaml:"hwaddr"`
	HostName  string                        `json:"host_name" yaml:"host_name"`
	Mtu       int                           `json:"mtu" yaml:"mtu"`
	State     string                        `json:"state" yaml:"state"`
	Type      string                        `json:"type" yaml:"type"`
}

// InstanceStateNetworkAddress is one address of an interface.
type InstanceStateNetworkAddress struct {
	Family  string `json:"family" yaml:"family"`
	Address string `json:"address" yaml:"address"`
	Netmask string `json:"netmask" yaml:"netmask"`
	Scope   string `json:"scope" yaml:"scope"`
}

// LXD's status codes of instances.
const (
	StatusCodeStopped  = 102
	StatusCodeRunning  = 103
	StatusCodeStarting = 106
	StatusCodeError    = 112
)

// InstanceStatusCode is LXD's status code of an instance status.
func InstanceStatusCode(status string) int {
	switch status {
	case InstanceRunning:
		return StatusCodeRunning
	case InstanceStopped:
		return StatusCodeStopped
	case InstanceCreating:
		return StatusCodeStarting
	}
	return StatusCodeError
}

// InstancesPost is the body of POST /1.0/instances (launch); ?target=MEMBER pins the member.
type InstancesPost struct {
	// Name of the new instance.
	Name string `json:"name" yaml:"name"`
	// Source is the image: an alias, a fingerprint (or unique prefix) or REMOTE:ALIAS.
	Source string `json:"source" yaml:"source"`
	// Profiles to apply in order; empty means ["default"].
	Profiles []string `json:"profiles,omitempty" yaml:"profiles,omitempty"`
	// NoStart creates the instance without starting it.
	NoStart bool `json:"no_start,omitempty" yaml:"no_start,omitempty"`
	// Config is the instance's configuration (LXD's keys, e.g. boot.autostart=true), as
	// `launch -c KEY=VALUE` sets it. Keys starting with volatile. are the agent's own.
	Config map[string]string `json:"config,omitempty" yaml:"config,omitempty"`
	// Devices are the instance's own devices (LXD's `launch --device`, `-s`), over its
	// profiles'.
	Devices map[string]map[string]string `json:"devices,omitempty" yaml:"devices,omitempty"`
	// CopyFrom names an instance of the cluster this one is a copy of (`lxc copy`): its
	// files, and its profiles, config and devices unless given; Source is then unused.
	CopyFrom string `json:"copy_from,omitempty" yaml:"copy_from,omitempty"`
	// AllowInconsistent lets a copy be made of a running instance (its files as they are).
	AllowInconsistent bool `json:"allow_inconsistent,omitempty" yaml:"allow_inconsistent,omitempty"`
}

// InstanceStatePut is the body of PUT /1.0/instances/{name}/state.
type InstanceStatePut struct {
	// Action is start, stop, restart, freeze or unfreeze.
	Action string `json:"action" yaml:"action"`
	// Force kills instead of a clean shutdown (stop, restart).
	Force bool `json:"force,omitempty" yaml:"force,omitempty"`
	// Timeout is LXD's clean-shutdown timeout in seconds (-1: the default); the member's
	// own stop timeout applies.
	Timeout int `json:"timeout,omitempty" yaml:"timeout,omitempty"`
	// Stateful is LXD's stateful stop or start (not supported: refused when set).
	Stateful bool `json:"stateful,omitempty" yaml:"stateful,omitempty"`
}

// ExecOptions are the optional parts of Client.Exec.
type ExecOptions struct {
	// Cwd is the working directory inside the instance.
	Cwd string
	// Env holds extra KEY=VALUE variables.
	Env []string
}

// FileInfo describes a file pulled from or pushed to an instance.
type FileInfo struct {
	// Mode holds the permission bits.
	Mode uint32
	// UID and GID of the file inside the instance.
	UID, GID int
}

// Headers of the file endpoints, as LXD names them.
const (
	HeaderFileMode = "X-LXD-mode"
	HeaderFileUID  = "X-LXD-uid"
	HeaderFileGID  = "X-LXD-gid"
	// HeaderFileType is "file" or "directory" (LXD's; "symlink" is not supported).
	HeaderFileType = "X-LXD-type"
	// HeaderFileWrite is "overwrite" (the default) or "append" on a push.
	HeaderFileWrite = "X-LXD-write"
)

// Launch creates (and starts, unless NoStart) an instance; target "" lets the cluster place it.
func (c *Client) Launch(ctx context.Context, req InstancesPost, target string) (*Instance, error) {
	var out Instance
	path := "/1.0/instances"
	if target != "" {
		path += "?target=" + url.QueryEscape(target)
	}
	if _, err := c.Call(ctx, http.MethodPost, path, req, nil, ""); err != nil {
		return &out, err
	}
	return c.Instance(ctx, req.Name)
}

// Instances lists every instance of the cluster with its member, state and addresses.
func (c *Client) Instances(ctx context.Context) ([]Instance, error) {
	var out []Instance
	_, err := c.Call(ctx, http.MethodGet, "/1.0/instances?recursion=1", nil, &out, "")
	return out, err
}

// Instance returns one instance.
func (c *Client) Instance(ctx context.Context, name string) (*Instance, error) {
	var out Instance
	_, err := c.Call(ctx, http.MethodGet, "/1.0/instances/"+url.PathEscape(name), nil, &out, "")
	return &out, err
}

// SetInstanceState starts, stops or restarts an instance.
func (c *Client) SetInstanceState(ctx context.Context, name string, put InstanceStatePut) error {
	_, err := c.Call(ctx, http.MethodPut, "/1.0/instances/"+url.PathEscape(name)+"/state", put, nil, "")
	return err
}

// DeleteInstance deletes an instance; force stops a running one first.
func (c *Client) DeleteInstance(ctx context.Context, name string, force bool) error {
	path := "/1.0/instances/" + url.PathEscape(name)
	if force {
		path += "?force=1"
	}
	_, err := c.Call(ctx, http.MethodDelete, path, nil, nil, "")
	return err
}

// PullFile copies the file at path inside the instance to w.
func (c *Client) PullFile(ctx context.Context, name, path string, w io.Writer) (FileInfo, error) {
	resp, err := c.Raw(ctx, http.MethodGet, filesPath(name, path), nil, nil)
	if err != nil {
		return FileInfo{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return FileInfo{}, decodeResponse(resp, nil)
	}
	info := FileInfo{}
	m, _ := strconv.ParseUint(resp.Header.Get(HeaderFileMode), 8, 32)
	info.Mode = uint32(m)
	info.UID, _ = strconv.Atoi(resp.Header.Get(HeaderFileUID))
	info.GID, _ = strconv.Atoi(resp.Header.Get(HeaderFileGID))
	_, err = io.Copy(w, resp.Body)
	return info, err
}

// PushFile writes r to path inside the instance (mode 0 means 0644).
func (c *Client) PushFile(ctx context.Context, name, path string, r io.Reader, info FileInfo) error {
	hdr := http.Header{"Content-Type": {"application/octet-stream"}}
	if info.Mode != 0 {
		hdr.Set(HeaderFileMode, fmt.Sprintf("%04o", info.Mode))
	}
	hdr.Set(HeaderFileUID, strconv.Itoa(info.UID))
	hdr.Set(HeaderFileGID, strconv.Itoa(info.GID))
	resp, err := c.Raw(ctx, http.MethodPost, filesPath(name, path), r, hdr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return decodeResponse(resp, nil)
}

func filesPath(name, path string) string {
	return "/1.0/instances/" + url.PathEscape(name) + "/files?path=" + url.QueryEscape(path)
}

// ExecPath is the exec endpoint's path and query for argv and opts.
func ExecPath(name string, argv []string, opts ExecOptions) string {
	q := url.Values{"command": argv}
	if opts.Cwd != "" {
		q.Set("cwd", opts.Cwd)
	}
	for _, e := range opts.Env {
		q.Add("env", e)
	}
	return "/1.0/instances/" + url.PathEscape(name) + "/exec?" + q.Encode()
}

// Exec runs argv in the instance, streaming stdin (nil means none) to it and its output
// to stdout and stderr, and returns its exit code.
func (c *Client) Exec(ctx context.Context, name string, argv []string, opts ExecOptions, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if stdin == nil {
		stdin = http.NoBody
	}
	hdr := http.Header{"Content-Type": {"application/octet-stream"}}
	resp, err := c.Raw(ctx, http.MethodPost, ExecPath(name, argv, opts), stdin, hdr)
	if err != nil {
		return -1, err
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != ExecContentType {
		return -1, decodeResponse(resp, nil)
	}
	return ReadExecFrames(resp.Body, stdout, stderr)
}

// ExecContentType marks an exec response: a stream of frames (see WriteExecFrame).
const ExecContentType = "application/vnd.orch.exec"

// Exec frame kinds.
const (
	FrameStdout byte = 1
	FrameStderr byte = 2
	FrameExit   byte = 3
	FrameError  byte = 4
)

// ErrExecStream means an exec stream ended without an exit code.
var ErrExecStream = errors.New("exec stream ended without an exit code")

// WriteExecFrame writes one frame: kind, a 4-byte big-endian length, the payload.
func WriteExecFrame(w io.Writer, kind byte, payload []byte) error {
	hdr := make([]byte, 5, 5+len(payload))
	hdr[0] = kind
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
	_, err := w.Write(append(hdr, payload...))
	return err
}

// ReadExecFrames copies output frames to stdout and stderr until the exit frame, and
// returns the exit code (or the error frame's message).
func ReadExecFrames(r io.Reader, stdout, stderr io.Writer) (int, error) {
	hdr := make([]byte, 5)
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			return -1, fmt.Errorf("%w: %v", ErrExecStream, err)
		}
		n := binary.BigEndian.Uint32(hdr[1:])
		if n > 16<<20 {
			return -1, fmt.Errorf("%w: frame of %d bytes", ErrExecStream, n)
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(r, payload); err != nil {
			return -1, fmt.Errorf("%w: %v", ErrExecStream, err)
		}
		switch hdr[0] {
		case FrameStdout:
			if stdout != nil {
				stdout.Write(payload)
			}
		case FrameStderr:
			if stderr != nil {
				stderr.Write(payload)
			}
		case FrameExit:
			if n != 4 {
				return -1, fmt.Errorf("%w: bad exit frame", ErrExecStream)
			}
			return int(int32(binary.BigEndian.Uint32(payload))), nil
		case FrameError:
			return -1, &Error{Code: http.StatusInternalServerError, Message: string(payload)}
		}
	}
}

// InstanceSnapshot is LXD's snapshot of an instance (GET /1.0/instances/NAME/snapshots/SNAP):
// its root filesystem when it was taken; the rest is the instance's now.
type InstanceSnapshot struct {
	Name            string                       `json:"name" yaml:"name"`
	CreatedAt       time.Time                    `json:"created_at" yaml:"created_at"`
	ExpiresAt       time.Time                    `json:"expires_at" yaml:"expires_at"`
	LastUsedAt      time.Time                    `json:"last_used_at" yaml:"last_used_at"`
	Stateful        bool                         `json:"stateful" yaml:"stateful"`
	Ephemeral       bool                         `json:"ephemeral" yaml:"ephemeral"`
	Architecture    string                       `json:"architecture" yaml:"architecture"`
	Description     string                       `json:"description" yaml:"description"`
	Profiles        []string                     `json:"profiles" yaml:"profiles"`
	Config          map[string]string            `json:"config" yaml:"config"`
	Devices         map[string]map[string]string `json:"devices" yaml:"devices"`
	ExpandedConfig  map[string]string            `json:"expanded_config" yaml:"expanded_config"`
	ExpandedDevices map[string]map[string]string `json:"expanded_devices" yaml:"expanded_devices"`
	Size            int64                        `json:"size" yaml:"size"`
}

// InstanceSnapshotsPost is the body of POST /1.0/instances/NAME/snapshots (`lxc snapshot`).
type InstanceSnapshotsPost struct {
	Name      string     `json:"name" yaml:"name"`
	Stateful  bool       `json:"stateful" yaml:"stateful"`
	ExpiresAt *time.Time `json:"expires_at" yaml:"expires_at"`
}
