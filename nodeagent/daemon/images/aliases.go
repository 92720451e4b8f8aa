package images

import (
	"context"
	"net/http"

	"orch/modules/image"
	"orch/nodeagent/api"
	"orch/nodeagent/daemon/db"
	"orch/nodeagent/daemon/rest"
	"orch/nodeagent/store"
)

// This file is /1.0/images/aliases as LXD's: the aliases as objects (name, target,
// type), listed at recursion 0 or 1, shown, created, repointed (PUT/PATCH), renamed
// (POST) and deleted. Alias descriptions are not stored: a non-empty one is refused.

// aliasEntries reads the aliases (all, or the one named).
func (s *Service) aliasEntries(ctx context.Context, name string) ([]api.ImageAliasesEntry, error) {
	rows, err := s.db.Query(ctx, `SELECT name, fingerprint FROM images_aliases WHERE ? = '' OR name = ? ORDER BY name`, name, name)
	if err != nil {
		return nil, err
	}
	out := make([]api.ImageAliasesEntry, 0, len(rows))
	for _, r := range rows {
		out = append(out, api.ImageAliasesEntry{Name: db.Str(r[0]), Target: db.Str(r[1]), Type: "container"})
	}
	return out, nil
}

// aliasEntry reads one alias or answers 404.
func (s *Service) aliasEntry(ctx context.Context, name string) (api.ImageAliasesEntry, error) {
	es, err := s.aliasEntries(ctx, name)
	if err != nil {
		return api.ImageAliasesEntry{}, err
	}
	if len(es) == 0 {
		return api.ImageAliasesEntry{}, rest.NotFound("no image alias %q", name)
	}
	return es[0], nil
}

// aliasWritable is the editable part of an alias, whose hash is its ETag.
func aliasWritable(e api.ImageAliasesEntry) any { return []string{e.Description, e.Target} }

func (s *Service) getImageAliases(w http.ResponseWriter, r *http.Request) error {
	es, err := s.aliasEntries(r.Context(), "")
	if err != nil {
		return err
	}
	return rest.WriteList(w, r, "/1.0/images/aliases", es, func(e api.ImageAliasesEntry) string { return e.Name })
}

func (s *Service) getImageAlias(w http.ResponseWriter, r *http.Request) error {
	e, err := s.aliasEntry(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	return rest.WriteOK(w, e, rest.ETag(aliasWritable(e)))
}

// checkAliasFields refuses what aliases cannot hold here, naming the field.
func checkAliasFields(description, typ string) error {
	if description != "" {
		return rest.BadRequest("description: image alias descriptions are not supported")
	}
	if typ != "" && typ != "container" {
		return rest.BadRequest("type %q: only container images are supported", typ)
	}
	return nil
}

// putImageAlias is PUT and PATCH /1.0/images/aliases/{name}: point the alias at another
// image (PATCH without a target keeps it).
func (s *Service) putImageAlias(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	cur, err := s.aliasEntry(ctx, r.PathValue("name"))
	if err != nil {
		return err
	}
	if err := rest.CheckIfMatch(r, aliasWritable(cur)); err != nil {
		return err
	}
	var put api.ImageAliasesEntryPut
	if r.Method == http.MethodPatch {
		put.Target = cur.Target
	}
	if err := rest.DecodeBody(r, &put); err != nil {
		return err
	}
	if err := checkAliasFields(put.Description, ""); err != nil {
		return err
	}
	fp, err := s.resolveImage(ctx, put.Target)
	if err != nil {
		return err
	}
	if _, err := s.db.Exec(ctx, aliasStatement(cur.Name, fp)); err != nil {
		return err
	}
	return rest.WriteOK(w, nil, "")
}

// renameImageAlias is POST /1.0/images/aliases/{name}: rename the alias (refused when the
// new name is taken).
func (s *Service) renameImageAlias(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	cur, err := s.aliasEntry(ctx, r.PathValue("name"))
	if err != nil {
		return err
	}
	var req api.ImageAliasesEntryPost
	if err := rest.DecodeBody(r, &req); err != nil {
		return err
	}
	if err := image.ValidAlias(req.Name); err != nil {
		return rest.BadRequest("name: %v", err)
	}
	_, err = s.db.Exec(ctx, store.Statement{SQL: `UPDATE images_aliases SET name = ? WHERE name = ?`,
		Args: []any{req.Name, cur.Name}, Expect: store.Int64(1)})
	switch {
	case rest.IsUnique(err):
		return rest.Conflict("an image alias %q already exists", req.Name)
	case rest.IsConflict(err):
		return rest.NotFound("no image alias %q", cur.Name)
	case err != nil:
		return err
	}
	return rest.WriteOK(w, nil, "")
}
