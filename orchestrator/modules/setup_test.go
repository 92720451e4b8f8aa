package modules

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os/exec"
	"strings"
	"testing"

	"orch/playbooks"
)

// shConn runs commands on this machine with sh -c, as a host connection would.
type shConn struct{}

func (shConn) Run(ctx context.Context, cmd string, stdin io.Reader, become bool) ([]byte, []byte, int, error) {
	c := exec.CommandContext(ctx, "sh", "-c", cmd)
	var out, errb bytes.Buffer
	c.Stdin, c.Stdout, c.Stderr = stdin, &out, &errb
	err := c.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.Bytes(), errb.Bytes(), ee.ExitCode(), nil
	}
	return out.Bytes(), errb.Bytes(), 0, err
}

func (shConn) Push(ctx context.Context, local, remote string, mode fs.FileMode) (bool, error) {
	return false, errors.New("not used")
}

type shConnector struct{}

func (shConnector) Connect(ctx context.Context, h playbooks.Host) (playbooks.Conn, error) {
	return shConn{}, nil
}

// TestSetupGathersByDefault runs a playbook that says nothing about facts
// with orch's registry: the real setup module gathers them on this machine
// (through sh, as over SSH), and gather_subset/filter trim them.
func TestSetupGathersByDefault(t *testing.T) {
	pb, err := playbooks.Parse("site.yml", []byte(`- hosts: all
  tasks:
    - assert:
        that:
          - ansible_facts.hostname == ansible_hostname
          - ansible_facts.os_family in ('Debian', 'RedHat')
          - ansible_processor_vcpus > 0 and ansible_memtotal_mb > 0
          - ansible_env.PATH is defined
          - ansible_date_time.year | int > 2000
          - ansible_interfaces | length > 0
- hosts: all
  gather_subset: ['!all']
  tasks:
    - setup:
        filter: ['ansible_distribution*', 'kernel']
      register: trimmed
    - assert:
        that:
          - trimmed.ansible_facts | length == 5  # distribution, _version, _major_version, _release, kernel
          - trimmed.ansible_facts.ansible_kernel is defined
`))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	recap, err := playbooks.Run(t.Context(), pb, playbooks.Options{
		Hosts: []playbooks.Host{{Name: "here"}}, Connector: shConnector{}, Modules: Registry(Deps{}),
		Reporter: playbooks.NewTextReporter(&out, playbooks.TextOptions{}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := recap.Hosts["here"]; s.Failed != 0 || s.Ok != 5 {
		t.Errorf("recap %+v\n%s", s, out.String())
	}
	if n := strings.Count(out.String(), "TASK [Gathering Facts]"); n != 2 {
		t.Errorf("Gathering Facts %d times, want 2:\n%s", n, out.String())
	}
}

func TestSelectFacts(t *testing.T) {
	facts := map[string]any{"ansible_os_family": "Debian", "ansible_interfaces": []any{"lo"}, "ansible_eth0": map[string]any{"device": "eth0"},
		"ansible_memtotal_mb": 1, "orch_tools": map[string]any{}}
	for _, c := range []struct {
		subset, filter []string
		want           int
	}{
		{nil, nil, 5}, {[]string{"!all"}, nil, 2}, {[]string{"!all", "network"}, nil, 4}, {[]string{"all", "!hardware"}, nil, 4},
		{nil, []string{"os_*"}, 1}, {nil, []string{"ansible_eth*", "orch_*"}, 2},
		// Ansible's collector names and fact ids (incus-deploy's update-packages.yaml):
		// distribution_release is in min, interfaces selects network.
		{[]string{"distribution_release"}, nil, 2}, {[]string{"!all", "interfaces"}, nil, 4},
	} {
		got, err := selectFacts(facts, c.subset, c.filter)
		if err != nil || len(got) != c.want {
			t.Errorf("subset %v filter %v: %v keys (%v), want %d", c.subset, c.filter, len(got), err, c.want)
		}
	}
	if _, err := selectFacts(facts, []string{"nope"}, nil); !errors.Is(err, errSubset) {
		t.Errorf("unknown subset: %v", err)
	}
}
