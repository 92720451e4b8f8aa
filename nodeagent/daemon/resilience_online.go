package daemon

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"orch/nodeagent/api"
)

// ErrMemberOffline is matched (errors.Is) by the error of an operation refused because a
// member it needs is OFFLINE; the error's text names the members.
var ErrMemberOffline = errors.New("member offline")

// offlineError names the OFFLINE members an operation needed. It answers the client with
// 409 Conflict (not 503, which forwarding treats as "try another member").
type offlineError struct {
	names []string
	ages  []time.Duration
}

func (e *offlineError) Error() string {
	parts := make([]string, len(e.names))
	for i, n := range e.names {
		parts[i] = n + " (no heartbeat for " + e.ages[i].Round(time.Second).String() + ")"
	}
	if len(parts) == 1 {
		return "member " + parts[0] + " is offline"
	}
	return "members " + strings.Join(parts, ", ") + " are offline"
}

// Is makes errors.Is(err, ErrMemberOffline) hold.
func (e *offlineError) Is(target error) bool { return target == ErrMemberOffline }

// As gives the HTTP layer its status code.
func (e *offlineError) As(target any) bool {
	if p, ok := target.(**api.Error); ok {
		*p = api.Errorf(http.StatusConflict, "%s", e.Error())
		return true
	}
	return false
}

// requireOnline refuses, with an error naming them, an operation that needs members that
// are OFFLINE; with no names it needs every member (a change that each member must apply).
// A name that is not a member is refused as not found.
func (d *Daemon) requireOnline(ctx context.Context, names ...string) error {
	members, err := d.members(ctx)
	if err != nil {
		return err
	}
	cfg, err := d.globalConfig(ctx)
	if err != nil {
		return err
	}
	return offlineAmong(members, d.clusterNow(), offlineThreshold(cfg), names)
}

// offlineAmong checks the named members (every member when names is empty) against the
// threshold at now (the leader's clock), in the order given.
func offlineAmong(members []memberRow, now time.Time, threshold time.Duration, names []string) error {
	byName := make(map[string]memberRow, len(members))
	for _, m := range members {
		byName[m.name] = m
	}
	if len(names) == 0 {
		for _, m := range members {
			names = append(names, m.name)
		}
	}
	var off offlineError
	for _, n := range names {
		m, ok := byName[n]
		if !ok {
			return notFound("no member named %q", n)
		}
		if !m.online(now, threshold) {
			off.names = append(off.names, n)
			off.ages = append(off.ages, m.age(now))
		}
	}
	if len(off.names) > 0 {
		return &off
	}
	return nil
}
