package api

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Image is GET /1.0/images/{fingerprint}: an image and the members holding a copy.
type Image struct {
	// Fingerprint is the image's SHA-256.
	Fingerprint string `json:"fingerprint" yaml:"fingerprint"`
	// Aliases pointing at the image, as LXD's objects.
	Aliases []ImageAlias `json:"aliases" yaml:"aliases"`
	// Size of the image's tarballs in bytes.
	Size int64 `json:"size" yaml:"size"`
	// Architecture from the image metadata, when known.
	Architecture string `json:"architecture,omitempty" yaml:"architecture,omitempty"`
	// Properties from the image metadata (os, release, description).
	Properties map[string]string `json:"properties" yaml:"properties,omitempty"`
	// Source is where the image came from (a remote's URL), empty for an import.
	Source string `json:"source,omitempty" yaml:"source,omitempty"`
	// Members holding a copy.
	Members []string `json:"members" yaml:"members"`
	// CreatedAt is when the image entered the cluster.
	CreatedAt time.Time `json:"created_at" yaml:"created_at"`

	// LXD's fields of an image, for LXD's clients.

	// UploadedAt and LastUsedAt are CreatedAt (not tracked apart).
	UploadedAt time.Time `json:"uploaded_at" yaml:"uploaded_at"`
	LastUsedAt time.Time `json:"last_used_at" yaml:"last_used_at"`
	// Type is always "container"; Project always "default".
	Type    string `json:"type" yaml:"type"`
	Project string `json:"project" yaml:"project"`
	// Public, Cached and AutoUpdate are always false.
	Public     bool `json:"public" yaml:"public"`
	Cached     bool `json:"cached" yaml:"cached"`
	AutoUpdate bool `json:"auto_update" yaml:"auto_update"`
	// Profiles are always [] (images carry no profiles).
	Profiles []string `json:"profiles" yaml:"profiles"`
}

// AliasNames are the names of the image's aliases.
func (i Image) AliasNames() []string {
	out := make([]string, 0, len(i.Aliases))
	for _, a := range i.Aliases {
		out = append(out, a.Name)
	}
	return out
}

// ImageAlias is one alias of an image, as LXD's image object lists them.
type ImageAlias struct {
	Name        string `json:"name" yaml:"name"`
	Description string `json:"description" yaml:"description"`
}

// ImageAliasesPost is the body of POST /1.0/images/aliases, as LXD's.
type ImageAliasesPost struct {
	// Name of the alias.
	Name string `json:"name" yaml:"name"`
	// Target is the image's fingerprint (or unique prefix, or another alias).
	Target string `json:"target" yaml:"target"`
	// Description must be empty (alias descriptions are not stored).
	Description string `json:"description,omitempty" yaml:"description,omitempty"`
	// Type must be empty or "container".
	Type string `json:"type,omitempty" yaml:"type,omitempty"`
}

// ImageAliasesEntry is GET /1.0/images/aliases/NAME, as LXD's.
type ImageAliasesEntry struct {
	Name        string `json:"name" yaml:"name"`
	Description string `json:"description" yaml:"description"`
	Target      string `json:"target" yaml:"target"`
	Type        string `json:"type" yaml:"type"`
}

// ImageAliasesEntryPut is the body of PUT/PATCH /1.0/images/aliases/NAME: point the alias
// at another image.
type ImageAliasesEntryPut struct {
	Description string `json:"description,omitempty" yaml:"description,omitempty"`
	Target      string `json:"target" yaml:"target"`
}

// ImageAliasesEntryPost is the body of POST /1.0/images/aliases/NAME: rename the alias.
type ImageAliasesEntryPost struct {
	Name string `json:"name" yaml:"name"`
}

// Remote is an image server (GET /1.0/remotes).
type Remote struct {
	// Name used as REMOTE: in image references.
	Name string `json:"name" yaml:"name"`
	// URL of the server.
	URL string `json:"url" yaml:"url"`
	// Protocol is "simplestreams".
	Protocol string `json:"protocol" yaml:"protocol"`
}

// HeaderImageAliases carries the comma-separated aliases of an image upload.
const HeaderImageAliases = "X-Orch-Image-Aliases"

// ImportImage uploads a rootfs tarball as a new image with aliases.
func (c *Client) ImportImage(ctx context.Context, tarball io.Reader, aliases []string) (*Image, error) {
	hdr := http.Header{"Content-Type": {"application/octet-stream"}}
	if len(aliases) > 0 {
		hdr.Set(HeaderImageAliases, strings.Join(aliases, ","))
	}
	resp, err := c.Raw(ctx, http.MethodPost, "/1.0/images", tarball, hdr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out Image
	if err := c.decode(ctx, resp, &out); err != nil {
		return &out, err
	}
	return c.Image(ctx, out.Fingerprint)
}

// Images lists the cluster's images.
func (c *Client) Images(ctx context.Context) ([]Image, error) {
	var out []Image
	_, err := c.Call(ctx, http.MethodGet, "/1.0/images?recursion=1", nil, &out, "")
	return out, err
}

// Image returns an image by fingerprint, unique prefix or alias.
func (c *Client) Image(ctx context.Context, ref string) (*Image, error) {
	var out Image
	_, err := c.Call(ctx, http.MethodGet, "/1.0/images/"+url.PathEscape(ref), nil, &out, "")
	return &out, err
}

// DeleteImage removes an image from every member.
func (c *Client) DeleteImage(ctx context.Context, ref string) error {
	_, err := c.Call(ctx, http.MethodDelete, "/1.0/images/"+url.PathEscape(ref), nil, nil, "")
	return err
}

// CreateImageAlias points an alias at an image (moving it if it exists).
func (c *Client) CreateImageAlias(ctx context.Context, name, target string) error {
	_, err := c.Call(ctx, http.MethodPost, "/1.0/images/aliases", ImageAliasesPost{Name: name, Target: target}, nil, "")
	return err
}

// DeleteImageAlias removes an alias.
func (c *Client) DeleteImageAlias(ctx context.Context, name string) error {
	_, err := c.Call(ctx, http.MethodDelete, "/1.0/images/aliases/"+url.PathEscape(name), nil, nil, "")
	return err
}

// Remotes lists the image servers.
func (c *Client) Remotes(ctx context.Context) ([]Remote, error) {
	var out []Remote
	_, err := c.Call(ctx, http.MethodGet, "/1.0/remotes", nil, &out, "")
	return out, err
}

// AddRemote records an image server.
func (c *Client) AddRemote(ctx context.Context, r Remote) error {
	_, err := c.Call(ctx, http.MethodPost, "/1.0/remotes", r, nil, "")
	return err
}

// RemoveRemote forgets an image server.
func (c *Client) RemoveRemote(ctx context.Context, name string) error {
	_, err := c.Call(ctx, http.MethodDelete, "/1.0/remotes/"+url.PathEscape(name), nil, nil, "")
	return err
}

// Profiles lists the profiles.
func (c *Client) Profiles(ctx context.Context) ([]Profile, error) {
	var out []Profile
	_, err := c.Call(ctx, http.MethodGet, "/1.0/profiles?recursion=1", nil, &out, "")
	return out, err
}

// Profile returns one profile.
func (c *Client) Profile(ctx context.Context, name string) (*Profile, error) {
	var out Profile
	_, err := c.Call(ctx, http.MethodGet, "/1.0/profiles/"+url.PathEscape(name), nil, &out, "")
	return &out, err
}

// CreateProfile adds a profile.
func (c *Client) CreateProfile(ctx context.Context, p Profile) error {
	_, err := c.Call(ctx, http.MethodPost, "/1.0/profiles", p, nil, "")
	return err
}

// UpdateProfile replaces a profile's description, config and devices.
func (c *Client) UpdateProfile(ctx context.Context, p Profile) error {
	_, err := c.Call(ctx, http.MethodPut, "/1.0/profiles/"+url.PathEscape(p.Name), p, nil, "")
	return err
}

// DeleteProfile removes a profile no instance uses.
func (c *Client) DeleteProfile(ctx context.Context, name string) error {
	_, err := c.Call(ctx, http.MethodDelete, "/1.0/profiles/"+url.PathEscape(name), nil, nil, "")
	return err
}
