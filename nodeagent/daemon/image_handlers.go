package daemon

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
	"orch/nodeagent/store"
)

// imageFetchTimeout bounds copying one image from another member or a remote.
const imageFetchTimeout = 10 * time.Minute

// postImage is POST /1.0/images: the body is a rootfs tarball, stored here, recorded, and
// copied to cluster.images_minimal_replica members.
func (d *Daemon) postImage(w http.ResponseWriter, r *http.Request) error {
	_, images, err := d.drivers()
	if err != nil {
		return err
	}
	var aliases []string
	for _, a := range strings.Split(r.Header.Get(api.HeaderImageAliases), ",") {
		if a = strings.TrimSpace(a); a != "" {
			if err := image.ValidAlias(a); err != nil {
				return badRequest("%v", err)
			}
			aliases = append(aliases, a)
		}
	}
	img, err := images.Import(r.Context(), r.Body, image.ImportOptions{})
	if err != nil {
		return driverError(err)
	}
	if err := d.recordImage(r.Context(), img, "", aliases); err != nil {
		return err
	}
	d.replicate(r.Context(), img.Fingerprint)
	return d.writeImage(w, r, img.Fingerprint)
}

func (d *Daemon) writeImage(w http.ResponseWriter, r *http.Request, fp string) error {
	imgs, err := d.clusterImages(r.Context(), fp)
	if err != nil {
		return err
	}
	if len(imgs) == 0 {
		return notFound("no image %s", fp)
	}
	return writeOK(w, imgs[0], "")
}

func (d *Daemon) getImages(w http.ResponseWriter, r *http.Request) error {
	imgs, err := d.clusterImages(r.Context(), "")
	if err != nil {
		return err
	}
	return writeOK(w, imgs, "")
}

func (d *Daemon) getImage(w http.ResponseWriter, r *http.Request) error {
	fp, err := d.resolveImage(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	return d.writeImage(w, r, fp)
}

// deleteImage forgets an image and asks every holder to drop its copy.
func (d *Daemon) deleteImage(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	fp, err := d.resolveImage(ctx, r.PathValue("name"))
	if err != nil {
		return err
	}
	holders, err := d.holders(ctx, fp)
	if err != nil {
		return err
	}
	if _, err := d.exec(ctx,
		storeStmt(`DELETE FROM images_aliases WHERE fingerprint = ?`, fp),
		storeStmt(`DELETE FROM images_members WHERE fingerprint = ?`, fp),
		storeStmt(`DELETE FROM images WHERE fingerprint = ?`, fp)); err != nil {
		return err
	}
	if _, images, err := d.drivers(); err == nil && images.Has(fp) {
		if err := images.Delete(fp); err != nil {
			d.log.Warn("dropping the local image copy", "fingerprint", fp, "err", err)
		}
	}
	for _, h := range holders {
		if err := d.peers.post(ctx, h.address, "/internal/images/"+fp+"/drop", struct{}{}, nil, 1); err != nil {
			d.log.Warn("member could not drop its image copy", "member", h.name, "fingerprint", fp, "err", err)
		}
	}
	return writeOK(w, nil, "")
}

func (d *Daemon) postImageAlias(w http.ResponseWriter, r *http.Request) error {
	var req api.ImageAliasesPost
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if err := image.ValidAlias(req.Name); err != nil {
		return badRequest("%v", err)
	}
	fp, err := d.resolveImage(r.Context(), req.Target)
	if err != nil {
		return err
	}
	if _, err := d.exec(r.Context(), aliasStatement(req.Name, fp)); err != nil {
		return err
	}
	return writeOK(w, nil, "")
}

func (d *Daemon) deleteImageAlias(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	_, err := d.exec(r.Context(), store.Statement{SQL: `DELETE FROM images_aliases WHERE name = ?`, Args: []any{name}, Expect: store.Int64(1)})
	if isConflict(err) {
		return notFound("no image alias %q", name)
	}
	if err != nil {
		return err
	}
	return writeOK(w, nil, "")
}

// getImageFile serves a part (rootfs or meta) of a local image copy to another member.
func (d *Daemon) getImageFile(w http.ResponseWriter, r *http.Request) error {
	_, images, err := d.drivers()
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
		return notFound("image %s has no %s part", r.PathValue("fp"), r.PathValue("part"))
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
func (d *Daemon) postImageFetch(w http.ResponseWriter, r *http.Request) error {
	if err := d.fetchImage(r.Context(), r.PathValue("fp")); err != nil {
		return err
	}
	return writeOK(w, nil, "")
}

// postImageDrop removes this member's copy of an image.
func (d *Daemon) postImageDrop(w http.ResponseWriter, r *http.Request) error {
	_, images, err := d.drivers()
	if err != nil {
		return err
	}
	if fp := r.PathValue("fp"); images.Has(fp) {
		if err := images.Delete(fp); err != nil {
			return err
		}
	}
	return writeOK(w, nil, "")
}

// ensureImage makes the image source refers to available on this member and returns its
// fingerprint: REMOTE:ALIAS is downloaded from the remote, anything else is resolved among
// the cluster's images and copied from a member holding it when this one does not.
func (d *Daemon) ensureImage(ctx context.Context, source string) (string, error) {
	d.node.fetchMu.Lock()
	defer d.node.fetchMu.Unlock()
	if remote, alias, ok := strings.Cut(source, ":"); ok {
		return d.pullRemote(ctx, remote, alias)
	}
	fp, err := d.resolveImage(ctx, source)
	if err != nil {
		return "", err
	}
	return fp, d.fetchImageLocked(ctx, fp)
}

// fetchImage copies an image from a holder unless this member has it.
func (d *Daemon) fetchImage(ctx context.Context, fp string) error {
	d.node.fetchMu.Lock()
	defer d.node.fetchMu.Unlock()
	return d.fetchImageLocked(ctx, fp)
}

func (d *Daemon) fetchImageLocked(ctx context.Context, fp string) error {
	_, images, err := d.drivers()
	if err != nil {
		return err
	}
	if images.Has(fp) {
		img, err := images.Show(fp)
		if err != nil {
			return err
		}
		return d.recordImage(ctx, img, "", nil)
	}
	holders, err := d.holders(ctx, fp)
	if err != nil {
		return err
	}
	if len(holders) == 0 {
		return conflict("image %s: no member holds a copy", fp[:12])
	}
	var errs []string
	for _, h := range holders {
		err := d.copyImageFrom(ctx, h, fp)
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Sprintf("%s: %v", h.name, err))
	}
	return fmt.Errorf("image %s: no holder could send it: %s", fp[:12], strings.Join(errs, "; "))
}

// copyImageFrom downloads an image from member h and records this member as a holder.
func (d *Daemon) copyImageFrom(ctx context.Context, h memberRow, fp string) error {
	ctx, cancel := context.WithTimeout(ctx, imageFetchTimeout)
	defer cancel()
	_, images, err := d.drivers()
	if err != nil {
		return err
	}
	c, err := d.peers.client(h.address)
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
	d.log.Info("image copied", "fingerprint", fp[:12], "from", h.name)
	return d.recordImage(ctx, img, "", nil)
}

// pullRemote downloads REMOTE:ALIAS from a simplestreams server into this member.
func (d *Daemon) pullRemote(ctx context.Context, remote, alias string) (string, error) {
	rows, err := d.query(ctx, `SELECT url FROM remotes WHERE name = ?`, remote)
	if err != nil {
		return "", err
	}
	if len(rows) == 0 {
		return "", notFound("no remote named %q (add it with `remote add`)", remote)
	}
	_, images, err := d.drivers()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, imageFetchTimeout)
	defer cancel()
	c := &simplestreams.Client{URL: str(rows[0][0])}
	img, err := c.Pull(ctx, images, alias, image.ImportOptions{})
	if err != nil {
		return "", api.Errorf(http.StatusBadGateway, "image %s:%s: %v", remote, alias, err)
	}
	return img.Fingerprint, d.recordImage(ctx, img, c.URL, nil)
}

// replicate copies an image to ONLINE members that lack it until
// cluster.images_minimal_replica members hold it. Failures are logged: the image stays usable.
func (d *Daemon) replicate(ctx context.Context, fp string) {
	ms, err := d.onlineMembers(ctx)
	if err != nil {
		d.log.Warn("image replication: reading members", "err", err)
		return
	}
	all, err := d.members(ctx)
	cfg, cerr := d.globalConfig(ctx)
	imgs, ierr := d.clusterImages(ctx, fp)
	if err != nil || cerr != nil || ierr != nil || len(imgs) == 0 {
		d.log.Warn("image replication: reading the image", "fingerprint", fp, "err", fmt.Sprint(err, cerr, ierr))
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
		if holding[m.name] {
			continue
		}
		if err := d.peers.post(ctx, m.address, "/internal/images/"+fp+"/fetch", struct{}{}, nil, 1); err != nil {
			d.log.Warn("image replication failed", "fingerprint", fp[:12], "member", m.name, "err", err)
			continue
		}
		missing--
	}
}

// replicateAll brings every image back to its replica count (after a holder left).
func (d *Daemon) replicateAll(ctx context.Context) {
	imgs, err := d.clusterImages(ctx, "")
	if err != nil {
		d.log.Warn("image re-replication: listing images", "err", err)
		return
	}
	for _, img := range imgs {
		d.replicate(ctx, img.Fingerprint)
	}
}
