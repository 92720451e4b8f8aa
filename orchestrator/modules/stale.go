package modules

import (
	"context"
	"errors"
	"fmt"

	"orch/nodeagent/api"
	"orch/playbooks"
)

// ErrCutOff is the failure of a host whose member the cluster removed or a recovery cut
// off: `orch up` must not start it, or it could lead the old members against the
// recovered cluster.
var ErrCutOff = errors.New("member cut off from the cluster")

// clusterStale fails the task host when its member was cut off by a recovery (its
// list-database, registered in args.facts, says so, or shows an older cluster epoch than
// another host's) or was removed, so that the tasks after it (installing and starting the
// agent) leave that host alone. The message says how to bring it back.
func (d Deps) clusterStale(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	factsVar, _ := t.Args.String("facts", "db")
	hosts, err := playHosts(t)
	if err != nil {
		return playbooks.Result{}, err
	}
	var mine *dbView
	var newest api.Epoch
	for _, h := range hosts {
		vars, err := hostVars(t, h)
		if err != nil {
			return playbooks.Result{}, err
		}
		v, ok := readDBView(vars[factsVar])
		if !ok || v.info.Member == "" {
			continue
		}
		if v.info.CutOff == nil && v.info.Epoch.Number > newest.Number {
			newest = v.info.Epoch
		}
		if h == t.Host {
			v.host, v.name = h, v.info.Member
			mine = &v
		}
	}
	if mine == nil {
		return playbooks.Result{Msg: "not a member"}, nil
	}
	if reason := staleReason(mine.info, newest); reason != "" {
		return playbooks.Result{}, fmt.Errorf("%w: %s (member %s) %s: not starting its agent; `orch recover --rejoin` wipes and rejoins it",
			ErrCutOff, t.Host, mine.name, reason)
	}
	return playbooks.Result{Msg: "member of the current cluster epoch"}, nil
}

// staleReason says why a member no longer belongs to the cluster, "" when it does.
func staleReason(info api.DatabaseInfo, newest api.Epoch) string {
	switch {
	case info.CutOff != nil && info.CutOff.Removed:
		return "was removed from the cluster"
	case info.CutOff != nil:
		return fmt.Sprintf("was cut off by a recovery on %s at %s", info.CutOff.Epoch.Member, info.CutOff.Epoch.Time.UTC().Format("2006-01-02T15:04:05Z"))
	case info.Epoch.Number < newest.Number:
		return fmt.Sprintf("was cut off by a recovery on %s at %s (it is in epoch %d, the cluster in %d)",
			newest.Member, newest.Time.UTC().Format("2006-01-02T15:04:05Z"), info.Epoch.Number, newest.Number)
	}
	return ""
}
