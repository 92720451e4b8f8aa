package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"orch/integration/lab"
	"orch/nodeagent/api"
)

// realHostsVars are the cluster-wide settings of the real-host rows: a dir pool and a
// managed bridge, the default profile on both (what `make demo` uses).
const realHostsVars = `storage_pools:
  - {name: default, driver: dir}
networks:
  - {name: orchbr0, type: bridge}
profiles:
  - name: default
    devices:
      root: {path: /, pool: default, type: disk}
      eth0: {name: eth0, network: orchbr0, type: nic}
`

// realHosts measures orch on 3 fresh Debian 12 hosts booted by systemd: the first `orch up`
// including the packages it installs (lxc, dnsmasq-base, nftables, xz-utils through apt
// from the machine's mirror), `orch up` forming a cluster on the same hosts once the
// packages are there (after `orch reset --purge`), and a clean host reboot until its member
// is ONLINE and its instance RUNNING with a lease again. One run each: the first up is
// dominated by apt's download and unpack.
func (s *suite) realHosts(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if _, err := lab.DebianBase(ctx); err != nil {
		b.Skipf("no Debian base rootfs: %v", err)
	}
	dir, err := os.MkdirTemp("", "orch-lab-bench-")
	if err != nil {
		b.Fatal(err)
	}
	l, err := lab.Create(ctx, dir, 3, lab.WithOS(lab.OSDebian), lab.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		os.RemoveAll(dir)
		b.Fatal(err)
	}
	defer closeLab(b, l)
	e := newOrchEnv(b, l)
	if err := os.MkdirAll(filepath.Join(filepath.Dir(e.inv), "group_vars"), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(e.inv), "group_vars", "all.yml"), []byte(realHostsVars), 0o644); err != nil {
		b.Fatal(err)
	}
	first := e.up(ctx)
	if first.err != nil {
		b.Fatalf("first orch up: %v\n%s%s", first.err, first.stdout, first.stderr)
	}
	s.rep.Add(&Row{Section: "Real hosts", Measure: "`orch up` of 3 fresh Debian 12 hosts (systemd), installing lxc, dnsmasq-base, nftables, xz-utils with apt; 1 run",
		Orch: Summarise("s", Seconds([]time.Duration{first.took}))})
	if r := e.orch(ctx, "reset", "--purge", "--yes"); r.err != nil {
		b.Fatalf("orch reset: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
	again := e.up(ctx)
	if again.err != nil {
		b.Fatalf("orch up with the packages there: %v\n%s%s", again.err, again.stdout, again.stderr)
	}
	s.rep.Add(&Row{Section: "Real hosts", Measure: "`orch up` of the same 3 hosts with the packages installed (after `orch reset --purge`); 1 run",
		Orch: Summarise("s", Seconds([]time.Duration{again.took}))})
	took, err := rebootBack(ctx, b, e, l)
	if err != nil {
		s.rep.Note("real hosts: the reboot row is missing: %v", err)
		return
	}
	s.rep.Add(&Row{Section: "Real hosts", Measure: "clean reboot of a Debian host (systemctl reboot) until its member is ONLINE and its instance RUNNING with a new lease; 1 run",
		Orch: Summarise("s", Seconds([]time.Duration{took})), OrchNote: "LXD not measured on these hosts: its Debian package would need a second cluster of hosts in the run"})
}

// rebootBack launches an instance on host1, reboots host1 and times until the member is
// ONLINE and the instance RUNNING with a new init and an IPv4 address.
func rebootBack(ctx context.Context, b *testing.B, e *orchEnv, l *lab.Lab) (time.Duration, error) {
	img := filepath.Join(b.TempDir(), "busybox.tar.xz")
	if out, err := exec.Command(filepath.Join(moduleRoot, "scripts/mkimage.sh"), img).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("mkimage.sh: %v: %s", err, out)
	}
	for _, args := range [][]string{{"image", "import", img, "--alias", "busybox"}, {"launch", "busybox", "c1", "--target", "host1"}} {
		if r := e.orch(ctx, args...); r.err != nil {
			return 0, fmt.Errorf("orch %v: %v: %s", args, r.err, r.stderr)
		}
	}
	before, err := waitC1(ctx, e, 0)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if err := l.Host("host1").Reboot(ctx); err != nil {
		return 0, err
	}
	if _, err := waitC1(ctx, e, before.PID); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// waitC1 waits until c1 runs on an ONLINE host1 with an IPv4 address and an init other than
// oldPID.
func waitC1(ctx context.Context, e *orchEnv, oldPID int) (api.Instance, error) {
	var last string
	for ctx.Err() == nil {
		var list []api.Instance
		r := e.orch(ctx, "list", "--format", "json")
		if r.err == nil && json.Unmarshal([]byte(r.stdout), &list) == nil {
			for _, in := range list {
				if in.Name == "c1" && in.Status == api.InstanceRunning && len(in.IPv4) > 0 && in.PID != oldPID {
					return in, nil
				}
			}
		}
		last = r.stdout + r.stderr
		time.Sleep(20 * time.Millisecond) // poll interval
	}
	return api.Instance{}, fmt.Errorf("c1 not running again: %v; last list: %s", ctx.Err(), last)
}
