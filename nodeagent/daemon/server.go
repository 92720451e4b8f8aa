package daemon

import (
	"context"
	"net/http"
	"os"
	"slices"
	"time"

	"golang.org/x/sys/unix"

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
		AuthMethods:   []string{"tls"},
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
	env.Addresses = []string{}
	if a, _ := d.local.Get("core.https_address"); a != "" {
		env.Addresses = append(env.Addresses, a)
	}
	if ca := env.ClusterAddress; ca != "" && !slices.Contains(env.Addresses, ca) {
		env.Addresses = append(env.Addresses, ca) // the client API is served there too
	}
	addHost(&env)
	env.Certificate = string(d.serverPair().CertPEM)
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

// addHost fills the environment's host fields as LXD's: uname, the daemon's PID, the
// instance driver and the (only) project.
func addHost(env *api.Environment) {
	env.Server, env.ServerPid, env.Project, env.Driver = "orch", os.Getpid(), "default", "lxc"
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return
	}
	env.Kernel = unix.ByteSliceToString(u.Sysname[:])
	env.KernelArchitecture = unix.ByteSliceToString(u.Machine[:])
	env.KernelVersion = unix.ByteSliceToString(u.Release[:])
	env.Architectures = []string{env.KernelArchitecture}
}
