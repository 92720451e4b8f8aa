package images

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"time"

	"orch/modules/image"
	"orch/nodeagent/api"
	"orch/nodeagent/daemon/db"
	"orch/nodeagent/daemon/rest"
	"orch/nodeagent/store"
)

// clusterImages reads the images (all, or the one with that full fingerprint) with their
// aliases and holders.
func (s *Service) clusterImages(ctx context.Context, fp string) ([]api.Image, error) {
	rows, err := s.db.Query(ctx, `SELECT fingerprint, size, architecture, properties, source, created_at FROM images
		WHERE ? = '' OR fingerprint = ? ORDER BY fingerprint`, fp, fp)
	if err != nil {
		return nil, err
	}
	out := make([]api.Image, 0, len(rows))
	idx := map[string]int{}
	for _, r := range rows {
		img := api.Image{Fingerprint: db.Str(r[0]), Size: db.I64(r[1]), Architecture: db.Str(r[2]), Source: db.Str(r[4]),
			CreatedAt: time.UnixMilli(db.I64(r[5])), Aliases: []api.ImageAlias{}, Members: []string{},
			Type: "container", Project: "default", Profiles: []string{}}
		img.UploadedAt, img.LastUsedAt = img.CreatedAt, img.CreatedAt
		_ = json.Unmarshal([]byte(db.Str(r[3])), &img.Properties)
		if img.Properties == nil {
			img.Properties = map[string]string{}
		}
		idx[img.Fingerprint] = len(out)
		out = append(out, img)
	}
	aliases, err := s.db.Query(ctx, `SELECT name, fingerprint FROM images_aliases ORDER BY name`)
	if err != nil {
		return nil, err
	}
	for _, r := range aliases {
		if i, ok := idx[db.Str(r[1])]; ok {
			out[i].Aliases = append(out[i].Aliases, api.ImageAlias{Name: db.Str(r[0])})
		}
	}
	holders, err := s.db.Query(ctx, `SELECT im.fingerprint, m.Name FROM images_members im JOIN members m ON m.id = im.member_id ORDER BY m.Name`)
	if err != nil {
		return nil, err
	}
	for _, r := range holders {
		if i, ok := idx[db.Str(r[0])]; ok {
			out[i].Members = append(out[i].Members, db.Str(r[1]))
		}
	}
	return out, nil
}

// resolveImage turns an alias, a fingerprint or a unique prefix of one into a fingerprint
// of the cluster's images.
func (s *Service) resolveImage(ctx context.Context, ref string) (string, error) {
	if ref == "" {
		return "", rest.BadRequest("empty image reference")
	}
	rows, err := s.db.Query(ctx, `SELECT fingerprint FROM images_aliases WHERE name = ?`, ref)
	if err != nil {
		return "", err
	}
	if len(rows) == 1 {
		return db.Str(rows[0][0]), nil
	}
	rows, err = s.db.Query(ctx, `SELECT fingerprint FROM images WHERE substr(fingerprint, 1, ?) = ?`, int64(len(ref)), strings.ToLower(ref))
	if err != nil {
		return "", err
	}
	switch len(rows) {
	case 0:
		return "", rest.NotFound("no image %q (not an alias nor a fingerprint)", ref)
	case 1:
		return db.Str(rows[0][0]), nil
	}
	return "", rest.Conflict("image %q is ambiguous: %d fingerprints start with it", ref, len(rows))
}

// holders lists the members holding a copy of the image, other than this one.
func (s *Service) holders(ctx context.Context, fp string) ([]db.Member, error) {
	rows, err := s.db.Query(ctx, `SELECT name, address FROM members WHERE id IN
		(SELECT member_id FROM images_members WHERE fingerprint = ?) AND name != ? ORDER BY id`, fp, s.members.Self())
	out := make([]db.Member, 0, len(rows))
	for _, r := range rows {
		out = append(out, db.Member{Name: db.Str(r[0]), Address: db.Str(r[1])})
	}
	return out, err
}

// recordImage records that this member holds img (and the image itself, if new), and
// points the aliases at it.
func (s *Service) recordImage(ctx context.Context, img image.Image, source string, aliases []string) error {
	props, _ := json.Marshal(img.Properties)
	stmts := []store.Statement{
		db.Stmt(`INSERT INTO images(fingerprint, size, architecture, properties, source, created_at) VALUES(?, ?, ?, ?, ?, ?)
			ON CONFLICT(fingerprint) DO NOTHING`, img.Fingerprint, img.Size, img.Architecture, string(props), source, time.Now().UnixMilli()),
		db.Stmt(`INSERT INTO images_members(fingerprint, member_id) SELECT ?, id FROM members WHERE name = ?
			ON CONFLICT DO NOTHING`, img.Fingerprint, s.members.Self()),
	}
	sort.Strings(aliases)
	for _, a := range aliases {
		stmts = append(stmts, aliasStatement(a, img.Fingerprint))
	}
	_, err := s.db.Exec(ctx, stmts...)
	return err
}

func aliasStatement(name, fp string) store.Statement {
	return db.Stmt(`INSERT INTO images_aliases(name, fingerprint) VALUES(?, ?)
		ON CONFLICT(name) DO UPDATE SET fingerprint = excluded.fingerprint`, name, fp)
}

// replicaTarget is how many members should hold each image: cluster.images_minimal_replica
// (-1: every member), at most the number of members.
func replicaTarget(cfg map[string]string, members int) int {
	n := int(db.I64(cfg["cluster.images_minimal_replica"]))
	if n < 0 || n > members {
		return members
	}
	if n == 0 {
		return 1
	}
	return n
}
