package hostmods

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"orch/playbooks"
)

// rebootBootID is the default boot_time_command: the kernel's boot_id (Ansible's default)
// and PID 1's start time, so that a system container's reboot, which keeps the shared
// kernel's boot_id, is seen too.
const rebootBootID = "cat /proc/sys/kernel/random/boot_id; cut -d' ' -f22 /proc/1/stat"

// reboot reboots the host (systemctl reboot where systemd runs, else shutdown -r now) and
// waits until it answers again over a new connection with a different boot id and the test
// command succeeds, as Ansible's reboot action does. In check mode it reports the reboot
// without doing it.
func rebootModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("reboot", a, "pre_reboot_delay", "post_reboot_delay", "reboot_timeout", "reboot_timeout_sec",
		"connect_timeout", "connect_timeout_sec", "test_command", "msg", "search_paths", "boot_time_command", "reboot_command"); err != nil {
		return playbooks.Result{}, err
	}
	var secs [4]float64
	for i, d := range []struct {
		names []string
		def   float64
	}{{[]string{"pre_reboot_delay"}, 0}, {[]string{"post_reboot_delay"}, 0},
		{[]string{"reboot_timeout", "reboot_timeout_sec"}, 600}, {[]string{"connect_timeout", "connect_timeout_sec"}, 10}} {
		secs[i] = d.def
		for _, n := range d.names {
			if a.Has(n) {
				v, err := a.Float(n, d.def)
				if err != nil {
					return playbooks.Result{}, err
				}
				secs[i] = v
			}
		}
	}
	dur := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	if t.Check {
		return playbooks.Result{Data: map[string]any{"rebooted": true, "elapsed": 0}}, t.Change("reboot", nil)
	}
	bootCmd, _ := a.String("boot_time_command", rebootBootID)
	testCmd, _ := a.String("test_command", "whoami")
	before, err := runOK(ctx, t, "reading the boot id", bootCmd, nil)
	if err != nil {
		return playbooks.Result{}, err
	}
	if err := sleepCtx(ctx, dur(secs[0])); err != nil {
		return playbooks.Result{}, err
	}
	cmd, _ := a.String("reboot_command", "")
	if cmd == "" {
		cmd = "if [ -d /run/systemd/system ]; then systemctl reboot; else shutdown -r now " + q(msgArg(a)) + "; fi"
	}
	start := time.Now()
	if err := t.Change("reboot", func() error { return rebootRun(ctx, t, cmd, dur(secs[3])) }); err != nil {
		return playbooks.Result{Failed: true, Msg: "Reboot command failed: " + err.Error(),
			Data: map[string]any{"rebooted": false, "elapsed": 0}}, nil
	}
	if err := rebootWait(ctx, t, before.stdout, bootCmd, testCmd, start.Add(dur(secs[2])), dur(secs[3])); err != nil {
		return playbooks.Result{Failed: true, Msg: err.Error(),
			Data: map[string]any{"rebooted": true, "elapsed": int(time.Since(start).Seconds())}}, nil
	}
	if err := sleepCtx(ctx, dur(secs[1])); err != nil {
		return playbooks.Result{}, err
	}
	return playbooks.Result{Data: map[string]any{"rebooted": true, "elapsed": int(time.Since(start).Seconds())}}, nil
}

func msgArg(a playbooks.Args) string {
	m, _ := a.String("msg", "Reboot initiated by Ansible")
	return m
}

// rebootRun runs the reboot command: the connection dropping (or the command not returning
// before connect_timeout) is the reboot under way, as in Ansible; an exit code is a failure.
func rebootRun(ctx context.Context, t *playbooks.TaskContext, cmd string, timeout time.Duration) error {
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	o, err := run(rctx, t, cmd, nil)
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case err != nil && (errors.Is(err, playbooks.ErrUnreachable) || rctx.Err() != nil):
		return nil
	case err != nil:
		return err
	}
	return o.err(cmd)
}

// rebootWait reconnects until the boot id differs from before and the test command
// succeeds, or deadline passes; the error names the last failure.
func rebootWait(ctx context.Context, t *playbooks.TaskContext, before, bootCmd, testCmd string, deadline time.Time, connect time.Duration) error {
	var last error
	for {
		t.ResetConn()
		actx, cancel := context.WithTimeout(ctx, connect)
		o, err := run(actx, t, bootCmd, nil)
		switch {
		case err != nil:
			last = err
		case o.rc != 0:
			last = o.err(bootCmd)
		case strings.TrimSpace(o.stdout) == strings.TrimSpace(before):
			last = errors.New("boot id unchanged: the host has not rebooted yet")
		default:
			var tr output
			if tr, err = run(actx, t, testCmd, nil); err == nil && tr.rc == 0 {
				cancel()
				return nil
			} else if err == nil {
				err = tr.err(testCmd)
			}
			last = err
		}
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("Timed out waiting for the host to come back after reboot: %v", last)
		}
		if err := sleepCtx(ctx, time.Second); err != nil { // poll interval between reconnects
			return err
		}
	}
}
