package daemon

import (
	"context"
	"net/http"
	"time"

	"orch/nodeagent/api"
	"orch/nodeagent/version"
)

// statusReadTimeout bounds GET /1.0's database read, so status answers without quorum.
const statusReadTimeout = 3 * time.Second

// getServer is GET /1.0: the member's identity and, for trusted callers, the configuration
// with an ETag for compare-and-set.
func (d *Daemon) getServer(w http.ResponseWriter, r *http.Request) error {
	c := d.srv.CallerOf(r)
	s := api.Server{
		APIExtensions: version.Extensions(d.version.APILevel),
		APIStatus:     "stable",
		APIVersion:    "1.0",
		Auth:          "untrusted",
		Config:        map[string]string{},
	}
	if !c.Trusted {
		return writeOK(w, s, "")
	}
	s.Auth = "trusted"
	if !d.resumed.Load() {
		return unavailable("member %q is starting: its database is not open yet", d.memberName())
	}
	s.Environment = d.environment()
	// Bound the consistent read, so that a member without quorum answers at once instead of
	// hanging; it answers an error, never a partial configuration without an ETag (a client
	// would take it for the whole configuration and write over newer values).
	ctx, cancel := context.WithTimeout(r.Context(), statusReadTimeout)
	defer cancel()
	cs, err := d.conf.Full(ctx)
	if err != nil {
		return unavailable("the cluster database is unavailable: %v", err)
	}
	s.Config = cs.Config
	return writeOK(w, s, cs.ETag)
}

func (d *Daemon) environment() api.Environment {
	env := api.Environment{
		ServerName:      d.memberName(),
		ServerVersion:   d.version.Version,
		SchemaVersion:   d.version.Schema,
		ServerClustered: d.store() != nil,
		Initialised:     d.memberName() != "",
		ClusterAddress:  d.clusterAddress(),
	}
	if a, _ := d.local.Get("core.https_address"); a != "" {
		env.Addresses = append(env.Addresses, a)
	}
	if cid := d.cluster.Load(); cid != nil {
		env.CertificateFingerprint = cid.fingerprint
	} else {
		env.CertificateFingerprint, _ = d.serverPair().Fingerprint()
	}
	if msg := d.blockedMessage(); msg != "" {
		env.Blocked, env.Message = true, msg
	}
	env.CutOff = d.cutOffState()
	return env
}
