package instances

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"orch/modules/lxc"
	"orch/nodeagent/daemon/db"
	"orch/nodeagent/daemon/rest"
)

// Instances across host reboots, as LXD does: when the agent starts with its member, it
// starts the member's instances whose boot.autostart is true, and those without the key
// that were running when the host went down (volatile.last_state.power=RUNNING);
// boot.autostart=false keeps an instance stopped. The recorded power state follows what
// users asked (launch, start and restart record RUNNING, stop records STOPPED), so a host
// that loses power brings back what was meant to run. When the host itself shuts down, the
// agent stops its instances cleanly (they stay recorded RUNNING), so a reboot does not wait
// for init's final kill of processes that ignore SIGTERM.

// Instance config keys (LXD's).
const (
	keyAutostart = "boot.autostart"
	keyLastPower = "volatile.last_state.power"
	// keyShutdownTimeout bounds one instance's clean stop at host shutdown (seconds).
	keyShutdownTimeout = "boot.host_shutdown_timeout"
)

// Values of volatile.last_state.power.
const (
	powerRunning = "RUNNING"
	powerStopped = "STOPPED"
)

// defaultShutdownTimeout is LXD's boot.host_shutdown_timeout default.
const defaultShutdownTimeout = 30 * time.Second

// configOf decodes an instance's config column; a malformed value reads as empty.
func configOf(s string) map[string]string {
	c := map[string]string{}
	_ = json.Unmarshal([]byte(s), &c)
	return c
}

// devicesOf decodes an instance's devices column; a malformed value reads as none.
func devicesOf(s string) map[string]map[string]string {
	d := map[string]map[string]string{}
	_ = json.Unmarshal([]byte(s), &d)
	return d
}

// devicesJSON encodes an instance's devices column.
func devicesJSON(d map[string]map[string]string) string {
	if len(d) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(d)
	return string(b)
}

func configJSON(c map[string]string) string {
	if len(c) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(c)
	return string(b)
}

// validInstanceConfig refuses volatile keys (the agent's own), a boot.autostart that is
// not a boolean and a limit that does not parse, naming the key.
func validInstanceConfig(c map[string]string) error {
	if _, err := parseLimits(c); err != nil {
		return err
	}
	for k, v := range c {
		switch {
		case strings.HasPrefix(k, "volatile."):
			return rest.BadRequest("config key %q: volatile keys are set by the agent", k)
		case k == keyAutostart && v != "true" && v != "false":
			return rest.BadRequest("config key %s: %q is not true or false", k, v)
		case k == keyShutdownTimeout:
			if _, err := time.ParseDuration(v + "s"); err != nil {
				return rest.BadRequest("config key %s: %q is not a number of seconds", k, v)
			}
		}
	}
	return nil
}

// recordPower records the power state users asked for, in the instance's config.
func (s *Service) recordPower(ctx context.Context, name, power string) error {
	return s.setVolatile(ctx, name, keyLastPower, power)
}

// setVolatile sets one of the agent's own config keys of an instance, in one statement that
// leaves the others as they are when it applies.
func (s *Service) setVolatile(ctx context.Context, name, key, value string) error {
	_, err := s.db.Exec(ctx, db.Stmt(`UPDATE instances SET config = json_set(config, '$."`+key+`"', ?) WHERE name = ?`, value, name))
	return err
}

// dropVolatile removes one of the agent's own config keys of an instance.
func (s *Service) dropVolatile(ctx context.Context, name, key string) error {
	_, err := s.db.Exec(ctx, db.Stmt(`UPDATE instances SET config = json_remove(config, '$."`+key+`"') WHERE name = ?`, name))
	return err
}

// wantsRunning says whether an instance should run after its host started.
func wantsRunning(c map[string]string) bool {
	switch c[keyAutostart] {
	case "true":
		return true
	case "false":
		return false
	}
	return c[keyLastPower] == powerRunning
}

// autostartInstances starts this member's stopped instances that should run. It waits
// (bounded) for the database, since it runs right after the agent started.
func (s *Service) autostartInstances(ctx context.Context) {
	rows, err := s.localInstanceRows(ctx)
	if err != nil {
		s.log.Warn("autostart: reading this member's instances failed", "err", err)
		return
	}
	m, _, err := s.drivers()
	if err != nil {
		s.log.Warn("autostart: no container manager", "err", err)
		return
	}
	if ev, err := s.evacuatedMembers(ctx); err == nil && ev[s.members.Self()] {
		s.log.Info("autostart skipped: this member is evacuated (lxc cluster restore starts its instances)")
		return
	}
	started := 0
	for _, row := range rows {
		if row.state != instCreated || !wantsRunning(row.config) {
			continue
		}
		if info, err := m.Info(ctx, row.name); err == nil && info.State == lxc.StateRunning {
			continue
		}
		if err := s.refreshSettings(ctx, m, row); err != nil {
			s.log.Warn("autostart failed", "instance", row.name, "err", err)
			continue
		}
		if err := m.Start(ctx, row.name); err != nil {
			s.log.Warn("autostart failed", "instance", row.name, "err", err)
			continue
		}
		started++
		s.log.Info("instance started at boot", "instance", row.name)
	}
	s.log.Info("autostart done", "instances", len(rows), "started", started)
}

// localInstanceRows reads this member's instances, retrying until the database answers
// (a member that just started may not know its leader yet) or two minutes pass.
func (s *Service) localInstanceRows(ctx context.Context) ([]instanceRow, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		rows, err := s.instances(ctx, "")
		if err == nil || time.Now().After(deadline) {
			var mine []instanceRow
			for _, r := range rows {
				if r.member == s.members.Self() {
					mine = append(mine, r)
				}
			}
			return mine, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond): // retry interval
		}
	}
}

// hostShuttingDown reports whether systemd is taking the host down (the agent is being
// stopped as part of a shutdown or reboot, not restarted on its own).
func hostShuttingDown() bool {
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		return false
	}
	out, _ := exec.Command("systemctl", "is-system-running").Output()
	return strings.TrimSpace(string(out)) == "stopping"
}

// stopInstancesForShutdown stops every running container of this member cleanly, in
// parallel, each within its boot.host_shutdown_timeout (then killed); recorded power
// states stay as they are. It reads the containers, not the database: quorum may be gone.
func (s *Service) stopInstancesForShutdown() {
	m, _, err := s.drivers()
	if err != nil {
		return
	}
	ctx := context.Background()
	list, err := m.List(ctx)
	if err != nil {
		s.log.Warn("host shutdown: listing containers failed", "err", err)
		return
	}
	timeouts := s.shutdownTimeouts()
	var wg sync.WaitGroup
	for _, in := range list {
		if in.State != lxc.StateRunning {
			continue
		}
		wg.Go(func() {
			timeout := defaultShutdownTimeout
			if t, ok := timeouts[in.Name]; ok {
				timeout = t
			}
			sctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			if err := m.Stop(sctx, in.Name, false); err != nil {
				_ = m.Stop(ctx, in.Name, true)
			}
			s.log.Info("instance stopped for host shutdown", "instance", in.Name)
		})
	}
	wg.Wait()
}

// shutdownTimeouts reads boot.host_shutdown_timeout of this member's instances from the
// local replica (no leader needed); instances without it use the default.
func (s *Service) shutdownTimeouts() map[string]time.Duration {
	out := map[string]time.Duration{}
	rows, err := s.db.QueryLocal(context.Background(), `SELECT name, config FROM instances`)
	if err != nil {
		return out
	}
	for _, r := range rows {
		name, config := db.Str(r[0]), db.Str(r[1])
		if v, ok := configOf(config)[keyShutdownTimeout]; ok {
			if t, err := time.ParseDuration(v + "s"); err == nil {
				out[name] = t
			}
		}
	}
	return out
}
