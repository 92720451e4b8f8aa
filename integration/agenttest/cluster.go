package agenttest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"orch/internal/wait"
	"orch/nodeagent/api"
)

// TrustPassword is the trust password of the clusters Bootstrap forms (unless the preseed
// given sets another).
const TrustPassword = "sekret-trust-pw"

// StartN starts n daemons named node1..nodeN, each on its own loopback address.
func StartN(tb testing.TB, n int) []*Agent {
	tb.Helper()
	ms := make([]*Agent, n)
	for i := range ms {
		ms[i] = Start(tb, fmt.Sprintf("node%d", i+1), NewAddr(tb))
	}
	return ms
}

// FormCluster starts n daemons, bootstraps node1 from a preseed with a trust password and
// joins the others with join tokens from `cluster add`, in order.
func FormCluster(tb testing.TB, n int) []*Agent {
	tb.Helper()
	ms := StartN(tb, n)
	Form(tb, ms)
	return ms
}

// Form bootstraps ms[0] and joins the rest with tokens.
func Form(tb testing.TB, ms []*Agent) {
	tb.Helper()
	Bootstrap(tb, ms[0], api.Preseed{})
	for _, m := range ms[1:] {
		JoinWithToken(tb, ms[0], m)
	}
}

// Bootstrap initialises a as the first member with `init --preseed`: extra's sections plus
// the trust password, a's address and name (extra's config keys win).
func Bootstrap(tb testing.TB, a *Agent, extra api.Preseed) {
	tb.Helper()
	p := extra
	p.Config = map[string]string{"core.trust_password": TrustPassword, "core.https_address": a.Addr}
	for k, v := range extra.Config {
		p.Config[k] = v
	}
	p.Cluster = &api.ClusterPut{Enabled: true, ServerName: a.Name}
	a.MustRunInput(PreseedYAML(tb, p), "init", "--preseed")
}

// JoinWithToken joins a to the cluster of via with a fresh token from `cluster add`.
func JoinWithToken(tb testing.TB, via, a *Agent) {
	tb.Helper()
	a.MustRunInput(PreseedYAML(tb, TokenPreseed(a, NewToken(tb, via, a.Name))), "init", "--preseed")
}

// NewToken runs `cluster add name` on via and returns the token it prints.
func NewToken(tb testing.TB, via *Agent, name string) string {
	tb.Helper()
	tok := strings.TrimSpace(via.MustRun("cluster", "add", name))
	if tok == "" {
		tb.Fatalf("%s: cluster add %s printed no token", via.Name, name)
	}
	return tok
}

// TokenPreseed is a joining member's preseed with a join token.
func TokenPreseed(a *Agent, token string) api.Preseed {
	return api.Preseed{Cluster: &api.ClusterPut{Enabled: true, ServerName: a.Name, ServerAddress: a.Addr, ClusterToken: token}}
}

// PasswordPreseed is a joining member's preseed with the cluster's address, certificate
// and a trust password, as the guide's second example.
func PasswordPreseed(a *Agent, clusterAddr, certPEM, password string) api.Preseed {
	return api.Preseed{Cluster: &api.ClusterPut{Enabled: true, ServerName: a.Name, ServerAddress: a.Addr,
		ClusterAddress: clusterAddr, ClusterCertificate: certPEM, ClusterPassword: password}}
}

// PreseedYAML renders a preseed as the YAML document `init --preseed` reads.
func PreseedYAML(tb testing.TB, p api.Preseed) string {
	tb.Helper()
	b, err := yaml.Marshal(p)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// ClusterCert reads a member's cluster certificate (PEM).
func ClusterCert(tb testing.TB, a *Agent) string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(a.Dir, "cluster.crt"))
	if err != nil {
		tb.Fatalf("%s: %v", a.Name, err)
	}
	return string(b)
}

// ListMembers is GET /1.0/cluster/members through a's socket.
func ListMembers(a *Agent) ([]api.ClusterMember, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return a.Client().Members(ctx)
}

// RoleMap maps member names to their roles joined by "," ("" for none).
func RoleMap(ms []api.ClusterMember) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		out[m.ServerName] = strings.Join(m.Roles, ",")
	}
	return out
}

// IsVoter reports whether roles (as RoleMap gives them) hold a database vote.
func IsVoter(roles string) bool {
	return roles == api.RoleDatabase || roles == api.RoleDatabaseLeader+","+api.RoleDatabase
}

// WaitRoles waits until `GET /1.0/cluster/members` through via satisfies check.
func WaitRoles(tb testing.TB, via *Agent, timeout time.Duration, what string, check func(map[string]string) error) {
	tb.Helper()
	wait.For(tb, timeout, what, func() error {
		ms, err := ListMembers(via)
		if err != nil {
			return err
		}
		return check(RoleMap(ms))
	})
}

// CountRoles counts voters, stand-bys, spares and leaders in a role map.
func CountRoles(roles map[string]string) (voters, standby, spare, leaders int) {
	for _, r := range roles {
		switch {
		case IsVoter(r):
			voters++
			if strings.HasPrefix(r, api.RoleDatabaseLeader) {
				leaders++
			}
		case r == api.RoleDatabaseStandby:
			standby++
		case r == "":
			spare++
		}
	}
	return
}

// WantRoleCounts returns a check that the cluster has exactly these role counts and a leader.
func WantRoleCounts(voters, standby, spare int) func(map[string]string) error {
	return func(roles map[string]string) error {
		v, s, sp, l := CountRoles(roles)
		if v != voters || s != standby || sp != spare || l != 1 {
			return fmt.Errorf("roles %v: %d voters (%d leaders), %d stand-by, %d spare; want %d, %d, %d and one leader",
				roles, v, l, s, sp, voters, standby, spare)
		}
		return nil
	}
}

// LeaderOf returns the member of ms that holds database-leader, waiting for one.
func LeaderOf(tb testing.TB, ms []*Agent) *Agent {
	tb.Helper()
	var leader *Agent
	wait.For(tb, 15*time.Second, "a database leader", func() error {
		var lastErr error = errors.New("no member running")
		for _, via := range ms {
			if !via.Running() {
				continue
			}
			list, err := ListMembers(via)
			if err != nil {
				lastErr = err
				continue
			}
			for name, r := range RoleMap(list) {
				if strings.HasPrefix(r, api.RoleDatabaseLeader) {
					if leader = ByName(ms, name); leader != nil {
						return nil
					}
				}
			}
			lastErr = fmt.Errorf("no leader in %v", RoleMap(list))
		}
		return lastErr
	})
	return leader
}

// ByName finds a member by name.
func ByName(ms []*Agent, name string) *Agent {
	for _, m := range ms {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// Server is GET /1.0 through a's socket with its ETag.
func Server(tb testing.TB, a *Agent) (*api.Server, string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, etag, err := a.Client().Server(ctx)
	if err != nil {
		tb.Fatalf("%s: GET /1.0: %v", a.Name, err)
	}
	return s, etag
}
