package daemon

import (
	"context"
	"net/http"
	"os"
	"reflect"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"orch/nodeagent/api"
	"orch/nodeagent/api/pki"
	"orch/nodeagent/daemon/rest"
	"orch/nodeagent/daemon/serverconfig"
	"orch/nodeagent/version"
)

// statusReadTimeout bounds GET /1.0's database read, so status answers without quorum.
const statusReadTimeout = 3 * time.Second

// getServer is GET /1.0: the member's identity and, for trusted callers, the configuration
// with an ETag for compare-and-set.
func (d *Daemon) getServer(w http.ResponseWriter, r *http.Request) error {
	c := d.srv.CallerOf(r)
	if !c.Trusted {
		return writeOK(w, d.serverBase("untrusted"), "")
	}
	if !d.resumed.Load() {
		return unavailable("member %q is starting: its database is not open yet", d.memberName())
	}
	env := d.environment()
	// Bound the consistent read, so that a member without quorum answers at once instead of
	// hanging; it answers an error, never a partial configuration without an ETag (a client
	// would take it for the whole configuration and write over newer values).
	ctx, cancel := context.WithTimeout(r.Context(), statusReadTimeout)
	defer cancel()
	cs, err := d.conf.Full(ctx)
	if err != nil {
		return unavailable("the cluster database is unavailable: %v", err)
	}
	body, err := d.serverBody(env, cs)
	if err != nil {
		return err
	}
	return rest.WriteBody(w, body, cs.ETag)
}

// serverAnswer is the last trusted GET /1.0 answer, encoded, with what it was made of.
type serverAnswer struct {
	env  api.Environment
	cs   *serverconfig.State
	body []byte
}

// serverBody is the encoded answer of GET /1.0 for a trusted caller. The configuration
// (serverconfig.Full) is the same State until a write; the environment changes with this
// member's state (addresses, certificate, blocked, cut off): while both are those of the
// last answer, it is sent again instead of encoding the same JSON for every request.
func (d *Daemon) serverBody(env api.Environment, cs *serverconfig.State) ([]byte, error) {
	if a := d.lastServer.Load(); a != nil && a.cs == cs && reflect.DeepEqual(a.env, env) {
		return a.body, nil
	}
	s := d.serverBase("trusted")
	s.Environment, s.Config = env, cs.Config
	body, err := rest.SyncBody(s)
	if err != nil {
		return nil, err
	}
	d.lastServer.Store(&serverAnswer{env: env, cs: cs, body: body})
	return body, nil
}

// serverBase is GET /1.0 without the environment and the configuration.
func (d *Daemon) serverBase(auth string) api.Server {
	return api.Server{
		APIExtensions: version.Extensions(d.version.APILevel),
		APIStatus:     "stable",
		APIVersion:    "1.0",
		Auth:          auth,
		AuthMethods:   []string{"tls"},
		Config:        map[string]string{},
	}
}

func (d *Daemon) environment() api.Environment {
	env := d.host
	env.ServerName = d.memberName()
	env.ServerVersion = d.version.Version
	env.SchemaVersion = d.version.Schema
	env.ServerClustered = d.store() != nil
	env.Initialised = env.ServerName != ""
	env.ClusterAddress = d.clusterAddress()
	env.Addresses = []string{}
	if a, _ := d.local.Get("core.https_address"); a != "" {
		env.Addresses = append(env.Addresses, a)
	}
	if ca := env.ClusterAddress; ca != "" && !slices.Contains(env.Addresses, ca) {
		env.Addresses = append(env.Addresses, ca) // the client API is served there too
	}
	env.Certificate, env.CertificateFingerprint = d.serverCert()
	if cid := d.cluster.Load(); cid != nil {
		env.CertificateFingerprint = cid.fingerprint
	}
	if msg := d.blockedMessage(); msg != "" {
		env.Blocked, env.Message = true, msg
	}
	env.CutOff = d.cutOffState()
	return env
}

// certView is a server certificate as GET /1.0 shows it.
type certView struct {
	pair    *pki.KeyPair
	pem, fp string
}

// serverCert is the server certificate's PEM and fingerprint, worked out once per
// certificate.
func (d *Daemon) serverCert() (pem, fingerprint string) {
	p := d.server.Load()
	if c := d.certView.Load(); c != nil && c.pair == p {
		return c.pem, c.fp
	}
	fp, _ := p.Fingerprint()
	c := &certView{pair: p, pem: string(p.CertPEM), fp: fp}
	d.certView.Store(c)
	return c.pem, c.fp
}

// hostEnvironment is the environment's host fields as LXD's: uname, the daemon's PID, the
// instance driver and the (only) project. They do not change while the daemon runs.
func hostEnvironment() api.Environment {
	env := api.Environment{Server: "orch", ServerPid: os.Getpid(), Project: "default", Driver: "lxc"}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return env
	}
	env.Kernel = unix.ByteSliceToString(u.Sysname[:])
	env.KernelArchitecture = unix.ByteSliceToString(u.Machine[:])
	env.KernelVersion = unix.ByteSliceToString(u.Release[:])
	env.Architectures = []string{env.KernelArchitecture}
	return env
}
