package daemon

import "net/http"

// instanceRoutes registers the instance, profile and image endpoints (instance_*.go,
// image_*.go). Requests about one instance run on the member owning it (onOwner).
func (d *Daemon) instanceRoutes(m *http.ServeMux) {
	d.handle(m, "GET /1.0/instances", trusted, d.getInstances)
	d.handle(m, "POST /1.0/instances", trusted, d.postInstance)
	d.handle(m, "GET /1.0/instances/{name}", trusted, d.getInstance)
	d.handle(m, "DELETE /1.0/instances/{name}", trusted, d.onOwner(d.deleteInstance))
	d.handle(m, "PUT /1.0/instances/{name}/state", trusted, d.onOwner(d.putInstanceState))
	d.handle(m, "POST /1.0/instances/{name}/exec", trusted, d.onOwner(d.postInstanceExec))
	d.handle(m, "GET /1.0/instances/{name}/files", trusted, d.onOwner(d.getFile))
	d.handle(m, "POST /1.0/instances/{name}/files", trusted, d.onOwner(d.postFile))
	d.handle(m, "GET /internal/instances", member, d.getInternalInstances)
	d.handle(m, "POST /internal/instances", member, d.postInternalInstance)

	d.handle(m, "GET /1.0/profiles", trusted, d.getProfiles)
	d.handle(m, "POST /1.0/profiles", trusted, d.postProfile)
	d.handle(m, "GET /1.0/profiles/{name}", trusted, d.getProfile)
	d.handle(m, "PUT /1.0/profiles/{name}", trusted, d.putProfile)
	d.handle(m, "DELETE /1.0/profiles/{name}", trusted, d.deleteProfile)

	d.handle(m, "GET /1.0/images", trusted, d.getImages)
	d.handle(m, "POST /1.0/images", trusted, d.postImage)
	d.handle(m, "GET /1.0/images/{name}", trusted, d.getImage)
	d.handle(m, "DELETE /1.0/images/{name}", trusted, d.deleteImage)
	d.handle(m, "POST /1.0/images/aliases", trusted, d.postImageAlias)
	d.handle(m, "DELETE /1.0/images/aliases/{name}", trusted, d.deleteImageAlias)
	d.handle(m, "GET /internal/images/{fp}/{part}", member, d.getImageFile)
	d.handle(m, "POST /internal/images/{fp}/fetch", member, d.postImageFetch)
	d.handle(m, "POST /internal/images/{fp}/drop", member, d.postImageDrop)

	d.handle(m, "GET /1.0/remotes", trusted, d.getRemotes)
	d.handle(m, "POST /1.0/remotes", trusted, d.postRemote)
	d.handle(m, "DELETE /1.0/remotes/{name}", trusted, d.deleteRemote)
}
