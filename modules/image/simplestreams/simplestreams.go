// Package simplestreams reads image servers that speak the simplestreams protocol as LXD
// and LXC image servers do (streams/v1/index.json pointing at streams/v1/images.json),
// downloads an image's rootfs and metadata items with their SHA-256 checked, and writes
// such a tree for tests and demos.
package simplestreams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"sort"
	"strings"
)

// Errors callers can test with errors.Is.
var (
	// ErrNotFound means no product on the server has that alias for this architecture.
	ErrNotFound = errors.New("image alias not found on the remote")
	// ErrChecksum means a download does not match its SHA-256 or size.
	ErrChecksum = errors.New("download checksum mismatch")
	// ErrProtocol means the server's JSON is not the simplestreams shape expected.
	ErrProtocol = errors.New("simplestreams protocol error")
)

// IndexPath is where every simplestreams server keeps its index.
const IndexPath = "streams/v1/index.json"

// Index is streams/v1/index.json.
type Index struct {
	// Format is "index:1.0".
	Format string `json:"format"`
	// Index maps a stream name (such as "images") to where its products are.
	Index map[string]IndexEntry `json:"index"`
}

// IndexEntry points at one products file.
type IndexEntry struct {
	// DataType is "image-downloads" for images.
	DataType string `json:"datatype"`
	// Path of the products file, relative to the server's root.
	Path string `json:"path"`
	// Format is "products:1.0".
	Format string `json:"format"`
	// Products lists the product keys in the file.
	Products []string `json:"products"`
}

// Products is a products file such as streams/v1/images.json.
type Products struct {
	// Format is "products:1.0".
	Format string `json:"format"`
	// ContentID names the stream ("images").
	ContentID string `json:"content_id"`
	// DataType is "image-downloads".
	DataType string `json:"datatype"`
	// Products by key ("busybox:1.36:amd64:default").
	Products map[string]Product `json:"products"`
}

// Product is one image line (an OS release for one architecture).
type Product struct {
	// Aliases is a comma-separated list of the names the product answers to.
	Aliases string `json:"aliases"`
	// Arch is the Debian-style architecture name (amd64, arm64).
	Arch string `json:"arch"`
	// OS name.
	OS string `json:"os"`
	// Release name.
	Release string `json:"release"`
	// Versions by version name (a date stamp); the greatest is the newest.
	Versions map[string]Version `json:"versions"`
}

// Version is one build of a product.
type Version struct {
	// Items by name (root.tar.xz, lxd.tar.xz, …).
	Items map[string]Item `json:"items"`
}

// Item is one downloadable file.
type Item struct {
	// FType is the file type: "root.tar.xz"/"rootfs.tar.xz" (rootfs) or "lxd.tar.xz" (metadata).
	FType string `json:"ftype"`
	// Path relative to the server's root.
	Path string `json:"path"`
	// SHA256 of the file, hex.
	SHA256 string `json:"sha256"`
	// Size in bytes.
	Size int64 `json:"size"`
	// CombinedRootXZSHA256 (on the metadata item) is the SHA-256 of metadata then rootfs:
	// the image's fingerprint.
	CombinedRootXZSHA256 string `json:"combined_rootxz_sha256,omitempty"`
	// CombinedSHA256 is the older name of the same combined fingerprint.
	CombinedSHA256 string `json:"combined_sha256,omitempty"`
}

// Client reads one simplestreams server.
type Client struct {
	// URL is the server's root, such as https://images.example.org/.
	URL string
	// HTTP does the requests; nil means http.DefaultClient.
	HTTP *http.Client
	// Arch is the architecture wanted; "" means this machine's (GOARCH).
	Arch string
}

// Image is the newest build of a product matching an alias.
type Image struct {
	// Product key on the server.
	Product string
	// Version name of the build.
	Version string
	// Rootfs item.
	Rootfs Item
	// Meta item; zero when the build has none.
	Meta Item
	// Fingerprint the image will have once imported (see package image).
	Fingerprint string
	// Aliases of the product.
	Aliases []string
	// OS and Release of the product.
	OS, Release string
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

func (c *Client) url(path string) string {
	return strings.TrimRight(c.URL, "/") + "/" + strings.TrimLeft(path, "/")
}

// getJSON fetches path and decodes it into v.
func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(path), nil)
	if err != nil {
		return err
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return fmt.Errorf("simplestreams %s: %w", c.url(path), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("simplestreams %s: %w: HTTP %s", c.url(path), ErrProtocol, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("simplestreams %s: %w: %v", c.url(path), ErrProtocol, err)
	}
	return nil
}

// Products returns the merged image products of every image-downloads stream.
func (c *Client) Products(ctx context.Context) (map[string]Product, error) {
	var idx Index
	if err := c.getJSON(ctx, IndexPath, &idx); err != nil {
		return nil, err
	}
	out := map[string]Product{}
	for name, e := range idx.Index {
		if e.DataType != "image-downloads" {
			continue
		}
		if e.Path == "" {
			return nil, fmt.Errorf("simplestreams %s: %w: stream %q has no path", c.url(IndexPath), ErrProtocol, name)
		}
		var p Products
		if err := c.getJSON(ctx, e.Path, &p); err != nil {
			return nil, err
		}
		for k, v := range p.Products {
			out[k] = v
		}
	}
	return out, nil
}

// Find returns the newest build of the product that has alias for the client's
// architecture. Aliases are matched exactly ("busybox", "ubuntu/18.04", "18.04").
func (c *Client) Find(ctx context.Context, alias string) (Image, error) {
	products, err := c.Products(ctx)
	if err != nil {
		return Image{}, err
	}
	arch := c.Arch
	if arch == "" {
		arch = runtime.GOARCH
	}
	keys := make([]string, 0, len(products))
	for k := range products {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := products[k]
		if p.Arch != arch || !hasAlias(p, alias) {
			continue
		}
		return newest(k, p)
	}
	return Image{}, fmt.Errorf("%s on %s (%s): %w", alias, c.URL, arch, ErrNotFound)
}

func hasAlias(p Product, alias string) bool {
	for _, a := range strings.Split(p.Aliases, ",") {
		if strings.TrimSpace(a) == alias {
			return true
		}
	}
	return false
}

// newest picks the greatest version that has a rootfs item.
func newest(key string, p Product) (Image, error) {
	names := make([]string, 0, len(p.Versions))
	for v := range p.Versions {
		names = append(names, v)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(names)))
	for _, v := range names {
		img := Image{Product: key, Version: v, OS: p.OS, Release: p.Release}
		for _, a := range strings.Split(p.Aliases, ",") {
			if a = strings.TrimSpace(a); a != "" {
				img.Aliases = append(img.Aliases, a)
			}
		}
		for _, it := range p.Versions[v].Items {
			switch it.FType {
			case "root.tar.xz", "rootfs.tar.xz", "root.tar.gz", "rootfs.tar.gz":
				img.Rootfs = it
			case "lxd.tar.xz", "lxd.tar.gz", "meta.tar.xz", "meta.tar.gz":
				img.Meta = it
			}
		}
		if img.Rootfs.Path == "" {
			continue
		}
		img.Fingerprint = img.Rootfs.SHA256
		if img.Meta.Path != "" {
			img.Fingerprint = img.Meta.CombinedRootXZSHA256
			if img.Fingerprint == "" {
				img.Fingerprint = img.Meta.CombinedSHA256
			}
		}
		return img, nil
	}
	return Image{}, fmt.Errorf("product %s: %w: no version with a rootfs item", key, ErrProtocol)
}
