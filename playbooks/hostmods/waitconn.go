package hostmods

import (
	"context"
	"fmt"
	"time"

	"orch/playbooks"
)

// wait_for_connection waits until the host runs a command through its connection (after a
// reboot, say): it retries `true` every sleep seconds until timeout. It never changes
// anything, and runs in check mode too, as Ansible's does.
func waitForConnectionModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("wait_for_connection", a, "delay", "sleep", "timeout", "connect_timeout"); err != nil {
		return playbooks.Result{}, err
	}
	var secs [4]float64
	for i, d := range []struct {
		name string
		def  float64
	}{{"delay", 0}, {"sleep", 1}, {"timeout", 600}, {"connect_timeout", 5}} {
		v, err := a.Float(d.name, d.def)
		if err != nil {
			return playbooks.Result{}, err
		}
		secs[i] = v
	}
	dur := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	start := time.Now()
	if err := sleepCtx(ctx, dur(secs[0])); err != nil {
		return playbooks.Result{}, err
	}
	deadline := start.Add(dur(secs[2]))
	var last error
	for {
		attempt, cancel := context.WithTimeout(ctx, dur(secs[3]))
		o, err := run(attempt, t, "true", nil)
		cancel()
		if err == nil && o.rc == 0 {
			return playbooks.Result{Data: map[string]any{"elapsed": int(time.Since(start).Seconds())}}, nil
		}
		if last = err; err == nil {
			last = o.err("true")
		}
		if time.Now().After(deadline) {
			return playbooks.Result{Failed: true, Msg: fmt.Sprintf("timed out waiting for connection port up: %v", last),
				Data: map[string]any{"elapsed": int(time.Since(start).Seconds())}}, nil
		}
		if err := sleepCtx(ctx, dur(secs[1])); err != nil {
			return playbooks.Result{}, err
		}
	}
}

// sleepCtx sleeps d unless ctx ends first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
