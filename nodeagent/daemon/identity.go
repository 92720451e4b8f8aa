package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"orch/nodeagent/api/pki"
	"orch/nodeagent/localdb"
)

// The certificate files of the agent directory (DIR/BASE.crt and DIR/BASE.key). As in LXD,
// a clustered member's server certificate is the cluster certificate: DIR/server.crt and
// DIR/cluster.crt hold the same certificate from bootstrap or join on, so that the guide's
// recipe (`sed ':a;N;$!ba;s/\n/\n\n/g' /var/lib/lxd/server.crt` on the bootstrap member)
// builds the join preseed's cluster_certificate. An uninitialised member has a server
// certificate of its own and no cluster certificate.
const (
	serverCertBase  = "server"
	clusterCertBase = "cluster"
)

// serverPair is this member's current server certificate (DIR/server.crt).
func (d *Daemon) serverPair() pki.KeyPair { return *d.server.Load() }

// serverIsCluster makes the cluster certificate this member's server certificate too
// (DIR/server.crt/.key), unless it already is: at bootstrap, on join, and on resume for a
// member whose directory an earlier version initialised with a separate server certificate.
func (d *Daemon) serverIsCluster(cluster pki.KeyPair) error {
	if cur := d.serverPair(); bytes.Equal(cur.CertPEM, cluster.CertPEM) && bytes.Equal(cur.KeyPEM, cluster.KeyPEM) {
		return nil
	}
	if err := cluster.Save(d.cfg.Dir, serverCertBase); err != nil {
		return fmt.Errorf("making the cluster certificate the server certificate (%s.crt): %w", serverCertBase, err)
	}
	d.server.Store(&cluster)
	return nil
}

// newServerPair gives a member that leaves its cluster (removed, wiped, or a bootstrap or
// join undone) a fresh certificate of its own: it must no longer present the cluster's.
func (d *Daemon) newServerPair() error {
	kp, err := pki.Generate("nodeagent")
	if err != nil {
		return err
	}
	if err := kp.Save(d.cfg.Dir, serverCertBase); err != nil {
		return fmt.Errorf("writing a new server certificate: %w", err)
	}
	d.server.Store(&kp)
	return nil
}

// dropStaleClusterIdentity runs at start: an uninitialised agent directory that still holds
// the cluster certificate (its member data lost or partly wiped, the certificate files left)
// must not present it, or the cluster would take the agent for a member. The leftover
// cluster files go and the agent gets a certificate of its own.
func (d *Daemon) dropStaleClusterIdentity() error {
	name, err := d.local.Get(localdb.KeyMemberName)
	if err != nil || name != "" {
		return err
	}
	crt := filepath.Join(d.cfg.Dir, clusterCertBase+".crt")
	if _, err := os.Stat(crt); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	d.log.Warn("an uninitialised agent directory holds a cluster certificate: dropping it", "file", crt)
	for _, f := range []string{crt, filepath.Join(d.cfg.Dir, clusterCertBase+".key")} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return d.newServerPair()
}
