package simplestreams

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"

	"orch/modules/image"
)

// Download writes the item to w, checking its size and SHA-256 (w may have received a
// bad copy when an error is returned).
func (c *Client) Download(ctx context.Context, it Item, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(it.Path), nil)
	if err != nil {
		return err
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return fmt.Errorf("simplestreams %s: %w", c.url(it.Path), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("simplestreams %s: HTTP %s", c.url(it.Path), resp.Status)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), resp.Body)
	if err != nil {
		return fmt.Errorf("simplestreams %s: %w", c.url(it.Path), err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if (it.Size > 0 && n != it.Size) || got != it.SHA256 {
		return fmt.Errorf("simplestreams %s: %w: %d bytes sha256 %s, want %d bytes sha256 %s",
			c.url(it.Path), ErrChecksum, n, got, it.Size, it.SHA256)
	}
	return nil
}

// Pull downloads the newest image with alias into store (unless it is already there) and
// returns it. Both items are checked, then the store checks the combined fingerprint.
func (c *Client) Pull(ctx context.Context, store *image.Store, alias string, opts image.ImportOptions) (image.Image, error) {
	found, err := c.Find(ctx, alias)
	if err != nil {
		return image.Image{}, err
	}
	if found.Fingerprint != "" && store.Has(found.Fingerprint) {
		for _, a := range opts.Aliases {
			if err := store.Alias(a, found.Fingerprint); err != nil {
				return image.Image{}, err
			}
		}
		return store.Show(found.Fingerprint)
	}
	tmp, err := os.MkdirTemp(store.Dir(), ".download-")
	if err != nil {
		return image.Image{}, err
	}
	defer os.RemoveAll(tmp)
	rootfs, err := c.fetch(ctx, found.Rootfs, tmp+"/rootfs")
	if err != nil {
		return image.Image{}, err
	}
	defer rootfs.Close()
	if found.Meta.Path != "" {
		meta, err := c.fetch(ctx, found.Meta, tmp+"/meta")
		if err != nil {
			return image.Image{}, err
		}
		defer meta.Close()
		opts.Meta = meta
	}
	opts.Expect = found.Fingerprint
	if opts.Properties == nil {
		opts.Properties = map[string]string{}
	}
	opts.Properties["source"] = c.URL
	opts.Properties["source.alias"] = alias
	return store.Import(ctx, rootfs, opts)
}

// fetch downloads it into path and returns the file, rewound.
func (c *Client) fetch(ctx context.Context, it Item, path string) (*os.File, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := c.Download(ctx, it, f); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
