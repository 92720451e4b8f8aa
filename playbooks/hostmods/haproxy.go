package hostmods

import (
	"context"
	"encoding/csv"
	"fmt"
	"strconv"
	"strings"
	"time"

	"orch/playbooks"
)

// haproxySocketCmd sends the commands on stdin to HAProxy's admin socket and prints the
// answer, with socat, else python3, else nc -U (whichever the host has).
func haproxySocketCmd(socket string) string {
	s := q(socket)
	return "if command -v socat >/dev/null 2>&1; then socat stdio unix-connect:" + s + "\n" +
		"elif command -v python3 >/dev/null 2>&1; then python3 -c 'import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\ns.sendall(sys.stdin.buffer.read())\ns.shutdown(socket.SHUT_WR)\nwhile True:\n b=s.recv(65536)\n if not b: break\n sys.stdout.buffer.write(b)' " + s + "\n" +
		"elif command -v nc >/dev/null 2>&1; then nc -U " + s + "\n" +
		"else echo 'neither socat, python3 nor nc is on the host to talk to the HAProxy socket' >&2; exit 127; fi\n"
}

// haproxyServer is a server line of `show stat`.
type haproxyServer struct{ backend, status, weight string }

// haproxyModule is community.general.haproxy: it reads `show stat` on HAProxy's admin
// socket, finds host in backend (or in every backend holding it), and enables, disables or
// drains it (`enable server`, `disable server`, `set server ... state drain`), sets its
// weight, shuts its sessions down on disable with shutdown_sessions, and with wait polls
// until the status is the one asked. Changed when a server's status or weight changes.
func haproxyModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("haproxy", a, "backend", "host", "state", "socket", "shutdown_sessions", "fail_on_not_found",
		"wait", "wait_interval", "wait_retries", "weight", "drain", "agent", "health"); err != nil {
		return playbooks.Result{}, err
	}
	host, err := a.Required("host")
	if err != nil {
		return playbooks.Result{}, err
	}
	state, err := a.Required("state")
	if err != nil {
		return playbooks.Result{}, err
	}
	if err := choice("state", state, "enabled", "disabled", "drain"); err != nil {
		return playbooks.Result{}, err
	}
	backend, _ := a.String("backend", "")
	socket, _ := a.String("socket", "/var/run/haproxy.sock")
	weight, _ := a.String("weight", "")
	shutdown, _ := a.Bool("shutdown_sessions", false)
	failNotFound, _ := a.Bool("fail_on_not_found", false)
	wait, _ := a.Bool("wait", false)
	interval, _ := a.Int("wait_interval", 5)
	retries, _ := a.Int("wait_retries", 25)
	drain, _ := a.Bool("drain", false)
	agent, _ := a.Bool("agent", false)
	health, _ := a.Bool("health", false)

	stat := func() (map[string]haproxyServer, error) {
		o, err := run(ctx, t, haproxySocketCmd(socket), strings.NewReader("show stat\n"))
		if err != nil {
			return nil, err
		}
		if o.rc != 0 {
			return nil, fmt.Errorf("haproxy socket %s: %w (exit code %d): %s", socket, ErrHost, o.rc, strings.TrimSpace(o.stderr))
		}
		return parseHaproxyStat(o.stdout, host, backend)
	}
	servers, err := stat()
	if err != nil {
		return playbooks.Result{Failed: true, Msg: err.Error()}, nil
	}
	if len(servers) == 0 {
		msg := fmt.Sprintf("The specified host '%s' was not found in backend '%s'", host, backend)
		if backend == "" {
			msg = fmt.Sprintf("The specified host '%s' was not found in any backend", host)
		}
		return playbooks.Result{Failed: failNotFound, Msg: msg}, nil
	}
	var cmds []string
	var backends []string
	for b, s := range servers {
		backends = append(backends, b)
		target := b + "/" + host
		if weight != "" && strings.TrimSuffix(weight, "%") != s.weight {
			cmds = append(cmds, "set weight "+target+" "+weight)
		}
		want := map[string]string{"enabled": "UP", "disabled": "MAINT", "drain": "DRAIN"}[state]
		if strings.HasPrefix(s.status, want) || (state == "enabled" && !strings.HasPrefix(s.status, "MAINT") && !strings.HasPrefix(s.status, "DRAIN")) {
			continue
		}
		switch state {
		case "enabled":
			if agent {
				cmds = append(cmds, "enable agent "+target)
			}
			if health {
				cmds = append(cmds, "enable health "+target)
			}
			cmds = append(cmds, "enable server "+target)
		case "disabled":
			if agent {
				cmds = append(cmds, "disable agent "+target)
			}
			if health {
				cmds = append(cmds, "disable health "+target)
			}
			if drain {
				cmds = append(cmds, "set server "+target+" state drain")
			}
			cmds = append(cmds, "disable server "+target)
			if shutdown {
				cmds = append(cmds, "shutdown sessions server "+target)
			}
		case "drain":
			cmds = append(cmds, "set server "+target+" state drain")
		}
	}
	sortStrings(backends)
	sortStrings(cmds)
	res := playbooks.Result{Data: map[string]any{"backends": toAny(backends)}}
	if len(cmds) == 0 {
		return res, nil
	}
	return res, t.Change(strings.Join(cmds, "; "), func() error {
		o, err := run(ctx, t, haproxySocketCmd(socket), strings.NewReader(strings.Join(cmds, ";")+"\n"))
		if err != nil {
			return err
		}
		if err := o.err("haproxy " + strings.Join(cmds, "; ")); err != nil {
			return err
		}
		if out := strings.TrimSpace(o.stdout); out != "" {
			return fmt.Errorf("haproxy answered %q to %q: %w", out, strings.Join(cmds, ";"), ErrHost)
		}
		if !wait {
			return nil
		}
		want := map[string]string{"enabled": "UP", "disabled": "MAINT", "drain": "DRAIN"}[state]
		for i := 0; i < retries; i++ {
			now, err := stat()
			if err != nil {
				return err
			}
			ok := true
			for _, s := range now {
				// a server without health checks shows "no check" when up
				ok = ok && (strings.HasPrefix(s.status, want) || want == "UP" && s.status == "no check")
			}
			if ok {
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(interval) * time.Second):
			}
		}
		return fmt.Errorf("server %s/%s not status '%s' after %d retries. Aborting", backend, host, want, retries)
	})
}

// parseHaproxyStat reads `show stat` CSV: the servers named host, by backend (only backend
// when given).
func parseHaproxyStat(out, host, backend string) (map[string]haproxyServer, error) {
	out = strings.TrimPrefix(strings.TrimSpace(out), "# ")
	r := csv.NewReader(strings.NewReader(out))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil || len(recs) == 0 {
		return nil, fmt.Errorf("haproxy show stat: unexpected answer %q", lastLines(out, 3))
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	for _, c := range []string{"pxname", "svname", "status", "weight"} {
		if _, ok := col[c]; !ok {
			return nil, fmt.Errorf("haproxy show stat: no %s column in %q", c, strings.Join(recs[0], ","))
		}
	}
	servers := map[string]haproxyServer{}
	for _, rec := range recs[1:] {
		if len(rec) <= col["weight"] || rec[col["svname"]] != host || (backend != "" && rec[col["pxname"]] != backend) {
			continue
		}
		if rec[col["svname"]] == "BACKEND" || rec[col["svname"]] == "FRONTEND" {
			continue
		}
		w := rec[col["weight"]]
		if _, err := strconv.Atoi(w); err != nil {
			w = ""
		}
		servers[rec[col["pxname"]]] = haproxyServer{backend: rec[col["pxname"]], status: rec[col["status"]], weight: w}
	}
	return servers, nil
}
