package daemon

import (
	"bytes"
	"fmt"

	"orch/nodeagent/api/pki"
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
