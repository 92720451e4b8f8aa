package images

import (
	"net/http"
	"net/url"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/db"
	"orch/nodeagent/daemon/rest"
	"orch/nodeagent/store"
)

func (s *Service) getRemotes(w http.ResponseWriter, r *http.Request) error {
	rows, err := s.db.Query(r.Context(), `SELECT name, url, protocol FROM remotes ORDER BY name`)
	if err != nil {
		return err
	}
	out := make([]api.Remote, 0, len(rows))
	for _, row := range rows {
		out = append(out, api.Remote{Name: db.Str(row[0]), URL: db.Str(row[1]), Protocol: db.Str(row[2])})
	}
	return rest.WriteOK(w, out, "")
}

// postRemote records an image server (simplestreams) under a name.
func (s *Service) postRemote(w http.ResponseWriter, r *http.Request) error {
	var rem api.Remote
	if err := rest.DecodeBody(r, &rem); err != nil {
		return err
	}
	if rem.Protocol == "" {
		rem.Protocol = "simplestreams"
	}
	if rem.Protocol != "simplestreams" {
		return rest.BadRequest("remote %s: protocol %q (only simplestreams)", rem.Name, rem.Protocol)
	}
	if rem.Name == "" || len(rem.Name) > 63 {
		return rest.BadRequest("remote name: 1 to 63 characters")
	}
	u, err := url.Parse(rem.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return rest.BadRequest("remote %s: url %q is not an http(s) URL", rem.Name, rem.URL)
	}
	_, err = s.db.Exec(r.Context(), db.Stmt(`INSERT INTO remotes(name, url, protocol) VALUES(?, ?, ?)`, rem.Name, rem.URL, rem.Protocol))
	if rest.IsUnique(err) {
		return rest.Conflict("a remote named %q already exists", rem.Name)
	}
	if err != nil {
		return err
	}
	return rest.WriteOK(w, nil, "")
}

func (s *Service) deleteRemote(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	_, err := s.db.Exec(r.Context(), store.Statement{SQL: `DELETE FROM remotes WHERE name = ?`, Args: []any{name}, Expect: store.Int64(1)})
	if rest.IsConflict(err) {
		return rest.NotFound("no remote named %q", name)
	}
	if err != nil {
		return err
	}
	return rest.WriteOK(w, nil, "")
}
