// Package metrics serves what a member measures of its host: GET /1.0/resources (its CPUs
// and memory, `lxc info --resources`) and GET /1.0/metrics as LXD does: the member's running instances'
// CPU, memory, process and network counters (lxd_* names, labels name/project/type, read
// from each container's cgroup v2 and network namespace), the daemon's own figures, and
// orch's cluster gauges (orch_raft_*: this member's database role and indexes;
// orch_member_heartbeat_age_seconds and orch_members: every member's heartbeat age and
// the members per status). Text exposition format ending with "# EOF".
//
// Authentication as LXD: the local socket, a member, a trusted client certificate, or a
// certificate of type "metrics" (good for nothing else); anyone when
// core.metrics_authentication is false. Per member, like LXD: ?target=NAME asks another
// member for its own.
//
// It must not import the daemon, another domain package of the daemon, orchestrator,
// playbooks or inventory.
package metrics

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/db"
	"orch/nodeagent/daemon/rest"
)

// AuthKey is the configuration key that, set to false, opens /1.0/metrics to anyone.
const AuthKey = "core.metrics_authentication"

// contentType is what LXD's metrics answer carries (the Prometheus text format).
const contentType = "text/plain; version=0.0.4; charset=utf-8"

// Caller is who sent a request, as the daemon classified it.
type Caller struct {
	// Fingerprint is the client certificate's fingerprint, "" without one.
	Fingerprint string
	// Trusted is set for the local socket, a member or a trusted client certificate.
	Trusted bool
}

// Callers classifies requests.
type Callers interface {
	Caller(r *http.Request) Caller
}

// Trust knows the certificates of type metrics.
type Trust interface {
	// IsMetricsClient reports whether fp is a trusted certificate of type metrics.
	IsMetricsClient(ctx context.Context, fp string) bool
}

// Config reads the cluster-wide configuration.
type Config interface {
	GlobalConfig(ctx context.Context) (map[string]string, error)
}

// Members finds other members for ?target=.
type Members interface {
	// Self is this member's name.
	Self() string
	// All are the members, read linearizably.
	All(ctx context.Context) ([]db.Member, error)
}

// Peers reaches other members' API.
type Peers interface {
	Client(addr string) (*api.Client, error)
}

// Cluster is this member's view of the cluster database.
type Cluster interface {
	// Raft is this member's database role and indexes; ok is false without a database.
	Raft() (r Raft, ok bool)
	// Members are the members with their status and heartbeat age.
	Members(ctx context.Context) ([]MemberHealth, error)
}

// Router registers a route with the access it requires.
type Router interface {
	Handle(pattern string, need rest.Access, h rest.HandlerFunc)
}

// Deps are what the service is built from.
type Deps struct {
	Callers Callers
	Trust   Trust
	Config  Config
	Members Members
	Peers   Peers
	Cluster Cluster
	// Instances lists this member's running instances.
	Instances func(ctx context.Context) ([]Instance, error)
	// Host is where instances' counters are read.
	Host Host
	// Started is when the daemon started (lxd_uptime_seconds).
	Started time.Time
	// Now is the clock of the instance metrics' cache (time.Now when nil).
	Now func() time.Time
	Log *slog.Logger
}

// InstanceCacheTTL is how long instance metrics are served from the last collection, as
// LXD does (8 s): several scrapers, or one scraping every member through ?target=, do not
// each list every container and read its cgroups. Member and raft metrics stay live.
const InstanceCacheTTL = 8 * time.Second

// Service serves /1.0/metrics.
type Service struct {
	d Deps

	// mu serialises instance collections: concurrent scrapes of a stale cache wait for one.
	mu        sync.Mutex
	instances *Set
	at        time.Time
}

// New builds the service.
func New(d Deps) *Service {
	if d.Host.Proc == "" {
		d.Host.Proc = "/proc"
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Service{d: d}
}

// Routes registers GET /1.0/metrics (public: the handler authenticates as LXD does).
func (s *Service) Routes(m Router) {
	m.Handle("GET /1.0/metrics", rest.Public, s.getMetrics)
	m.Handle("GET /1.0/resources", rest.Trusted, s.getResources)
}

// scrapeTimeout bounds the database reads of one scrape.
const scrapeTimeout = 5 * time.Second

func (s *Service) getMetrics(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), scrapeTimeout)
	defer cancel()
	if err := s.authorise(ctx, r); err != nil {
		return err
	}
	if t := r.URL.Query().Get("target"); t != "" && t != s.d.Members.Self() {
		return s.forward(ctx, w, t, "/1.0/metrics")
	}
	set := s.collect(ctx)
	w.Header().Set("Content-Type", contentType)
	_, err := set.WriteTo(w)
	return err
}

// authorise lets in what LXD lets in (see the package comment).
func (s *Service) authorise(ctx context.Context, r *http.Request) error {
	c := s.d.Callers.Caller(r)
	if c.Trusted {
		return nil
	}
	if cfg, err := s.d.Config.GlobalConfig(ctx); err == nil && cfg[AuthKey] == "false" {
		return nil
	}
	if c.Fingerprint != "" && s.d.Trust.IsMetricsClient(ctx, c.Fingerprint) {
		return nil
	}
	return api.Errorf(http.StatusForbidden, "not authorized: /1.0/metrics needs a trusted client certificate or one of type metrics (or %s=false)", AuthKey)
}

// instanceMetrics are this member's instances' metrics, collected again once the last
// collection is InstanceCacheTTL old. The returned set is not changed afterwards.
func (s *Service) instanceMetrics(ctx context.Context) *Set {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.d.Now()
	if s.instances != nil && now.Sub(s.at) < InstanceCacheTTL {
		return s.instances
	}
	set := NewSet()
	if s.d.Instances != nil {
		ins, err := s.d.Instances(ctx)
		if err != nil {
			s.d.Log.Warn("metrics: listing instances", "error", err)
			return set // not cached: the next scrape tries again
		}
		for _, in := range ins {
			if err := s.d.Host.addInstance(set, in); err != nil {
				s.d.Log.Debug("metrics: " + err.Error())
			}
		}
	}
	s.instances, s.at = set, now
	return set
}

// forward answers with another member's answer to GET path (its metrics or resources).
func (s *Service) forward(ctx context.Context, w http.ResponseWriter, target, path string) error {
	ms, err := s.d.Members.All(ctx)
	if err != nil {
		return rest.Unavailable("finding member %q: %v", target, err)
	}
	for _, m := range ms {
		if m.Name != target {
			continue
		}
		c, err := s.d.Peers.Client(m.Address)
		if err != nil {
			return err
		}
		resp, err := c.Raw(ctx, http.MethodGet, path, nil, nil)
		if err != nil {
			return rest.Unavailable("%s of member %s (%s): %v", path, target, m.Address, err)
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		_, err = io.Copy(w, resp.Body)
		return err
	}
	return api.Errorf(http.StatusNotFound, "no cluster member named %q", target)
}

// collect builds this member's metrics; what cannot be read is logged and left out.
func (s *Service) collect(ctx context.Context) *Set {
	set := NewSet()
	set.addAll(s.instanceMetrics(ctx))
	addInternal(set, time.Since(s.d.Started))
	if r, ok := s.d.Cluster.Raft(); ok {
		addRaft(set, r)
		ms, err := s.d.Cluster.Members(ctx)
		if err != nil {
			s.d.Log.Warn("metrics: reading members", "error", fmt.Sprint(err))
		} else {
			addMembers(set, ms)
		}
	}
	return set
}
