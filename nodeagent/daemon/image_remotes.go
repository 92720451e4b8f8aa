package daemon

import (
	"net/http"
	"net/url"

	"orch/nodeagent/api"
	"orch/nodeagent/store"
)

func (d *Daemon) getRemotes(w http.ResponseWriter, r *http.Request) error {
	rows, err := d.query(r.Context(), `SELECT name, url, protocol FROM remotes ORDER BY name`)
	if err != nil {
		return err
	}
	out := make([]api.Remote, 0, len(rows))
	for _, row := range rows {
		out = append(out, api.Remote{Name: str(row[0]), URL: str(row[1]), Protocol: str(row[2])})
	}
	return writeOK(w, out, "")
}

// postRemote records an image server (simplestreams) under a name.
func (d *Daemon) postRemote(w http.ResponseWriter, r *http.Request) error {
	var rem api.Remote
	if err := decodeBody(r, &rem); err != nil {
		return err
	}
	if rem.Protocol == "" {
		rem.Protocol = "simplestreams"
	}
	if rem.Protocol != "simplestreams" {
		return badRequest("remote %s: protocol %q (only simplestreams)", rem.Name, rem.Protocol)
	}
	if rem.Name == "" || len(rem.Name) > 63 {
		return badRequest("remote name: 1 to 63 characters")
	}
	u, err := url.Parse(rem.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return badRequest("remote %s: url %q is not an http(s) URL", rem.Name, rem.URL)
	}
	_, err = d.exec(r.Context(), storeStmt(`INSERT INTO remotes(name, url, protocol) VALUES(?, ?, ?)`, rem.Name, rem.URL, rem.Protocol))
	if isUnique(err) {
		return conflict("a remote named %q already exists", rem.Name)
	}
	if err != nil {
		return err
	}
	return writeOK(w, nil, "")
}

func (d *Daemon) deleteRemote(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	_, err := d.exec(r.Context(), store.Statement{SQL: `DELETE FROM remotes WHERE name = ?`, Args: []any{name}, Expect: store.Int64(1)})
	if isConflict(err) {
		return notFound("no remote named %q", name)
	}
	if err != nil {
		return err
	}
	return writeOK(w, nil, "")
}
