package images

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"time"

	"orch/modules/image"
	"orch/modules/image/simplestreams"
	"orch/nodeagent/api"
	"orch/nodeagent/daemon/db"
	"orch/nodeagent/daemon/rest"
	"orch/nodeagent/store"
)

// imageFetchTimeout bounds copying one image from another member or a remote.
const imageFetchTimeout = 10 * time.Minute

// postImage is POST /1.0/images: the body is a rootfs tarball, stored here, recorded, and
// copied to cluster.images_minimal_replica members.
func (s *Service) postImage(w http.ResponseWriter, r *http.Request) error {
	images, err := s.open()
	if err != nil {
		return err
	}
	var aliases []string
	for _, a := range strings.Split(r.Header.Get(api.HeaderImageAliases), ",") {
		if a = strings.TrimSpace(a); a != "" {
			if err := image.ValidAlias(a); err != nil {
				return rest.BadRequest("%v", err)
			}
			aliases = append(aliases, a)
		}
	}
	img, err := images.Import(r.Context(), r.Body, image.ImportOptions{})
	if err != nil {
		return driverError(err)
	}
	op, err := s.ops.Start(r, rest.Task{Description: "Downloading image",
		Resources: map[string][]string{"images": {"/1.0/images/" + img.Fingerprint}},
		Run: func(ctx context.Context, op rest.Op) error {
			if err := s.recordImage(ctx, img, "", aliases); err != nil {
				return err
			}
			s.replicate(ctx, img.Fingerprint)
			op.SetMetadata(map[string]any{"fingerprint": img.Fingerprint, "size": img.Size})
			s.events.Lifecycle("image-created", "/1.0/images/"+img.Fingerprint, nil)
			return nil
		}})
	if err != nil {
		return err
	}
	return rest.WriteAsync(w, op)
}

func (s *Service) writeImage(w http.ResponseWriter, r *http.Request, fp string) error {
	imgs, err := s.clusterImages(r.Context(), fp)
	if err != nil {
		return err
	}
	if len(imgs) == 0 {
		return rest.NotFound("no image %s", fp)
	}
	return rest.WriteOK(w, imgs[0], rest.ETag(imageWritable(imgs[0])))
}

func (s *Service) getImages(w http.ResponseWriter, r *http.Request) error {
	imgs, err := s.clusterImages(r.Context(), "")
	if err != nil {
		return err
	}
	f, err := rest.ParseFilter(r)
	if err != nil {
		return err
	}
	kept := imgs[:0]
	for _, img := range imgs {
		if f.Match(img) {
			kept = append(kept, img)
		}
	}
	return rest.WriteList(w, r, "/1.0/images", kept, func(img api.Image) string { return img.Fingerprint })
}

func (s *Service) getImage(w http.ResponseWriter, r *http.Request) error {
	fp, err := s.resolveImage(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	return s.writeImage(w, r, fp)
}

// deleteImage forgets an image and asks every holder to drop its copy.
func (s *Service) deleteImage(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	fp, err := s.resolveImage(ctx, r.PathValue("name"))
	if err != nil {
		return err
	}
	op, err := s.ops.Start(r, rest.Task{Description: "Deleting image",
		Resources: map[string][]string{"images": {"/1.0/images/" + fp}},
		Run: func(ctx context.Context, _ rest.Op) error {
			if err := s.forgetImage(ctx, fp); err != nil {
				return err
			}
			s.events.Lifecycle("image-deleted", "/1.0/images/"+fp, nil)
			return nil
		}})
	if err != nil {
		return err
	}
	return rest.WriteAsync(w, op) // as LXD: `lxc image delete` waits for the operation
}

// forgetImage removes an image from the database and asks every holder to drop its copy.
func (s *Service) forgetImage(ctx context.Context, fp string) error {
	holders, err := s.holders(ctx, fp)
	if err != nil {
		return err
	}
	if _, err := s.db.Exec(ctx,
		db.Stmt(`DELETE FROM images_aliases WHERE fingerprint = ?`, fp),
		db.Stmt(`DELETE FROM images_members WHERE fingerprint = ?`, fp),
		db.Stmt(`DELETE FROM images WHERE fingerprint = ?`, fp)); err != nil {
		return err
	}
	if images, err := s.open(); err == nil && images.Has(fp) {
		if err := images.Delete(fp); err != nil {
			s.log.Warn("dropping the local image copy", "fingerprint", fp, "err", err)
		}
	}
	for _, h := range holders {
		if err := s.peers.Post(ctx, h.Address, "/internal/images/"+fp+"/drop", struct{}{}, nil); err != nil {
			s.log.Warn("member could not drop its image copy", "member", h.Name, "fingerprint", fp, "err", err)
		}
	}
	return nil
}

func (s *Service) postImageAlias(w http.ResponseWriter, r *http.Request) error {
	var req api.ImageAliasesPost
	if err := rest.DecodeBody(r, &req); err != nil {
		return err
	}
	if err := image.ValidAlias(req.Name); err != nil {
		return rest.BadRequest("%v", err)
	}
	if err := checkAliasFields(req.Description, req.Type); err != nil {
		return err
	}
	fp, err := s.resolveImage(r.Context(), req.Target)
	if err != nil {
		return err
	}
	if _, err := s.db.Exec(r.Context(), aliasStatement(req.Name, fp)); err != nil {
		return err
	}
	return rest.WriteOK(w, nil, "")
}

func (s *Service) deleteImageAlias(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	_, err := s.db.Exec(r.Context(), store.Statement{SQL: `DELETE FROM images_aliases WHERE name = ?`, Args: []any{name}, Expect: store.Int64(1)})
	if rest.IsConflict(err) {
		return rest.NotFound("no image alias %q", name)
	}
	if err != nil {
		return err
	}
	return rest.WriteOK(w, nil, "")
}

// getImageFile serves a part (rootfs or meta) of a local image copy to another member.
func (s *Service) getImageFile(w http.ResponseWriter, r *http.Request) error {
	images, err := s.open()
	if err != nil {
		return err
	}
	rootfs, meta, err := images.Files(r.PathValue("fp"))
	if err != nil {
		return driverError(err)
	}
	path := rootfs
	if r.PathValue("part") == "meta" {
		path = meta
	}
	if path == "" {
		return rest.NotFound("image %s has no %s part", r.PathValue("fp"), r.PathValue("part"))
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = io.Copy(w, f)
	return nil
}

// postImageFetch asks this member to copy an image from a holder.
func (s *Service) postImageFetch(w http.ResponseWriter, r *http.Request) error {
	if err := s.fetchImage(r.Context(), r.PathValue("fp")); err != nil {
		return err
	}
	return rest.WriteOK(w, nil, "")
}

// postImageDrop removes this member's copy of an image.
func (s *Service) postImageDrop(w http.ResponseWriter, r *http.Request) error {
	images, err := s.open()
	if err != nil {
		return err
	}
	if fp := r.PathValue("fp"); images.Has(fp) {
		if err := images.Delete(fp); err != nil {
			return err
		}
	}
	return rest.WriteOK(w, nil, "")
}

// ensureImage makes the image source refers to available on this member and returns its
// fingerprint: REMOTE:ALIAS is downloaded from the remote, anything else is resolved among
// the cluster's images and copied from a member holding it when this one does not.
func (s *Service) ensureImage(ctx context.Context, source string) (string, error) {
	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()
	if remote, alias, ok := strings.Cut(source, ":"); ok {
		return s.pullRemote(ctx, remote, alias)
	}
	fp, err := s.resolveImage(ctx, source)
	if err != nil {
		return "", err
	}
	return fp, s.fetchImageLocked(ctx, fp)
}

// fetchImage copies an image from a holder unless this member has it.
func (s *Service) fetchImage(ctx context.Context, fp string) error {
	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()
	return s.fetchImageLocked(ctx, fp)
}

func (s *Service) fetchImageLocked(ctx context.Context, fp string) error {
	images, err := s.open()
	if err != nil {
		return err
	}
	if images.Has(fp) {
		img, err := images.Show(fp)
		if err != nil {
			return err
		}
		return s.recordImage(ctx, img, "", nil)
	}
	holders, err := s.holders(ctx, fp)
	if err != nil {
		return err
	}
	if len(holders) == 0 {
		return rest.Conflict("image %s: no member holds a copy", fp[:12])
	}
	var errs []string
	for _, h := range holders {
		err := s.copyImageFrom(ctx, h, fp)
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Sprintf("%s: %v", h.Name, err))
	}
	return fmt.Errorf("image %s: no holder could send it: %s", fp[:12], strings.Join(errs, "; "))
}

// copyImageFrom downloads an image from member h and records this member as a holder.
func (s *Service) copyImageFrom(ctx context.Context, h db.Member, fp string) error {
	ctx, cancel := context.WithTimeout(ctx, imageFetchTimeout)
	defer cancel()
	images, err := s.open()
	if err != nil {
		return err
	}
	c, err := s.peers.Client(h.Address)
	if err != nil {
		return err
	}
	opts := image.ImportOptions{Expect: fp}
	meta, err := c.Raw(ctx, http.MethodGet, "/internal/images/"+fp+"/meta", nil, nil)
	if err != nil {
		return err
	}
	defer meta.Body.Close()
	if meta.StatusCode == http.StatusOK {
		opts.Meta = meta.Body
	}
	rootfs, err := c.Raw(ctx, http.MethodGet, "/internal/images/"+fp+"/rootfs", nil, nil)
	if err != nil {
		return err
	}
	defer rootfs.Body.Close()
	if rootfs.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %s", rootfs.Status)
	}
	img, err := images.Import(ctx, rootfs.Body, opts)
	if err != nil {
		return err
	}
	s.log.Info("image copied", "fingerprint", fp[:12], "from", h.Name)
	return s.recordImage(ctx, img, "", nil)
}

// pullRemote downloads REMOTE:ALIAS from a simplestreams server into this member.
func (s *Service) pullRemote(ctx context.Context, remote, alias string) (string, error) {
	rows, err := s.db.Query(ctx, `SELECT url FROM remotes WHERE name = ?`, remote)
	if err != nil {
		return "", err
	}
	if len(rows) == 0 {
		return "", rest.NotFound("no remote named %q (add it with `remote add`)", remote)
	}
	images, err := s.open()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, imageFetchTimeout)
	defer cancel()
	c := &simplestreams.Client{URL: db.Str(rows[0][0])}
	img, err := c.Pull(ctx, images, alias, image.ImportOptions{})
	if err != nil {
		return "", api.Errorf(http.StatusBadGateway, "image %s:%s: %v", remote, alias, err)
	}
	return img.Fingerprint, s.recordImage(ctx, img, c.URL, nil)
}

// replicate copies an image to ONLINE members that lack it until
// cluster.images_minimal_replica members hold it. Failures are logged: the image stays usable.
func (s *Service) replicate(ctx context.Context, fp string) {
	ms, err := s.members.Online(ctx)
	if err != nil {
		s.log.Warn("image replication: reading members", "err", err)
		return
	}
	all, err := s.members.All(ctx)
	cfg, cerr := s.config.GlobalConfig(ctx)
	imgs, ierr := s.clusterImages(ctx, fp)
	if err != nil || cerr != nil || ierr != nil || len(imgs) == 0 {
		s.log.Warn("image replication: reading the image", "fingerprint", fp, "err", fmt.Sprint(err, cerr, ierr))
		return
	}
	holding := map[string]bool{}
	for _, m := range imgs[0].Members {
		holding[m] = true
	}
	missing := replicaTarget(cfg, len(all)) - len(holding)
	rand.Shuffle(len(ms), func(i, j int) { ms[i], ms[j] = ms[j], ms[i] })
	for _, m := range ms {
		if missing <= 0 {
			return
		}
		if holding[m.Name] {
			continue
		}
		if err := s.peers.Post(ctx, m.Address, "/internal/images/"+fp+"/fetch", struct{}{}, nil); err != nil {
			s.log.Warn("image replication failed", "fingerprint", fp[:12], "member", m.Name, "err", err)
			continue
		}
		missing--
	}
}

// replicateAll brings every image back to its replica count (after a holder left).
func (s *Service) replicateAll(ctx context.Context) {
	imgs, err := s.clusterImages(ctx, "")
	if err != nil {
		s.log.Warn("image re-replication: listing images", "err", err)
		return
	}
	for _, img := range imgs {
		s.replicate(ctx, img.Fingerprint)
	}
}
