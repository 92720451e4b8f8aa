package images

import (
	"encoding/json"
	"net/http"
	"time"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/db"
	"orch/nodeagent/daemon/rest"
)

// imagePut is the editable part of an image, as LXD's ImagePut (`lxc image edit`): only
// the properties can change here; public images, auto-update, expiry and image profiles
// are not supported (refused naming the field).
type imagePut struct {
	AutoUpdate bool              `json:"auto_update"`
	Properties map[string]string `json:"properties"`
	Public     bool              `json:"public"`
	ExpiresAt  time.Time         `json:"expires_at"`
	Profiles   []string          `json:"profiles"`
}

// imageWritable is the editable part of img, whose hash is its ETag.
func imageWritable(img api.Image) any {
	return []any{img.AutoUpdate, img.Properties, img.Public, img.Profiles}
}

// putImage is PUT and PATCH /1.0/images/{name}: set the image's properties (PATCH merges
// them into the current ones).
func (s *Service) putImage(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	fp, err := s.resolveImage(ctx, r.PathValue("name"))
	if err != nil {
		return err
	}
	imgs, err := s.clusterImages(ctx, fp)
	if err != nil {
		return err
	}
	if len(imgs) == 0 {
		return rest.NotFound("no image %s", fp)
	}
	if err := rest.CheckIfMatch(r, imageWritable(imgs[0])); err != nil {
		return err
	}
	var put imagePut
	if err := rest.DecodeBody(r, &put); err != nil {
		return err
	}
	if err := checkImagePut(put); err != nil {
		return err
	}
	props := put.Properties
	if r.Method == http.MethodPatch {
		props = imgs[0].Properties
		if props == nil {
			props = map[string]string{}
		}
		for k, v := range put.Properties {
			props[k] = v
		}
	}
	b, err := json.Marshal(props)
	if err != nil {
		return err
	}
	if _, err := s.db.Exec(ctx, db.Stmt(`UPDATE images SET properties = ? WHERE fingerprint = ?`, string(b), fp)); err != nil {
		return err
	}
	return rest.WriteOK(w, nil, "")
}

// checkImagePut refuses what images cannot be here, naming the field.
func checkImagePut(put imagePut) error {
	switch {
	case put.Public:
		return rest.BadRequest("public: public images are not supported")
	case put.AutoUpdate:
		return rest.BadRequest("auto_update: automatic image updates are not supported")
	case !put.ExpiresAt.IsZero():
		return rest.BadRequest("expires_at: image expiry is not supported")
	case len(put.Profiles) > 0:
		return rest.BadRequest("profiles: image profiles are not supported")
	}
	return nil
}
