package daemon

import (
	"net/http"

	"orch/nodeagent/api"
)

// postJoinInfo (leader) tells a prospective member which member-specific keys the
// cluster's storage pools take, so that interactive init asks for them before joining as
// LXD does ("Choose "source" property for storage pool "local":"). The caller
// authenticates as its join will (trust password or join token); a token is not consumed.
func (d *Daemon) postJoinInfo(w http.ResponseWriter, r *http.Request) error {
	var req api.ClusterJoinInfoPost
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if err := checkMemberName(req.ServerName); err != nil {
		return badRequest("%v", err)
	}
	ctx := r.Context()
	if _, err := d.authenticateJoin(ctx, acceptRequest{Name: req.ServerName, Password: req.Password, TokenSecret: req.TokenSecret}); err != nil {
		return err
	}
	keys, err := d.memberConfigKeys(ctx)
	if err != nil {
		return err
	}
	return writeOK(w, api.Cluster{Enabled: true, MemberConfig: keys}, "")
}
