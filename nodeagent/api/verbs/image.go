package verbs

import (
	"context"
	"fmt"
	"os"

	"orch/nodeagent/api"
	"orch/output"
)

// ImageCmd is `image`: the cluster's images, as `lxc image`.
type ImageCmd struct {
	Import ImageImportCmd `cmd:"" help:"Import a rootfs tarball as an image (streamed to one member, then replicated)."`
	List   ImageListCmd   `cmd:"" help:"List the cluster's images and their holders."`
	Show   ImageShowCmd   `cmd:"" help:"Show one image."`
	Delete ImageDeleteCmd `cmd:"" help:"Delete an image from every member."`
	Alias  ImageAliasCmd  `cmd:"" help:"Manage image aliases."`
}

// ImageImportCmd is `image import TARBALL --alias NAME [--target MEMBER]`.
type ImageImportCmd struct {
	Tarball string   `arg:"" help:"Rootfs tarball (.tar, .tar.gz, .tar.xz)." type:"path"`
	Alias   []string `help:"Alias to give the image (repeatable)."`
	Target  string   `help:"Member to upload to (default: the one this command reaches)."`
}

// Run streams the tarball from disk to the member's API (never held in memory).
func (c *ImageImportCmd) Run(e *Env) error {
	f, err := os.Open(c.Tarball)
	if err != nil {
		return err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil {
		return err
	} else if !st.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", c.Tarball)
	}
	return e.with(c.Target, func(ctx context.Context, cl *api.Client) error {
		img, err := cl.ImportImage(ctx, f, c.Alias)
		if err != nil {
			return fmt.Errorf("importing %s: %w", c.Tarball, err)
		}
		fmt.Fprintf(e.Stdout, "Image imported with fingerprint: %s\n", img.Fingerprint)
		return nil
	})
}

// ImageListCmd is `image list`.
type ImageListCmd struct {
	Format output.Format `help:"table, json or yaml." default:"table"`
}

// Run lists the images.
func (c *ImageListCmd) Run(e *Env) error {
	if err := c.Format.Validate(); err != nil {
		return err
	}
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		imgs, err := cl.Images(ctx)
		if err != nil {
			return err
		}
		return output.Render(e.Stdout, c.Format, imgs, func() ([]string, [][]string) { return output.ImageTable(imgs) })
	})
}

// ImageShowCmd is `image show IMAGE`.
type ImageShowCmd struct {
	Image  string        `arg:"" help:"Alias or fingerprint (prefix)."`
	Format output.Format `help:"table, json or yaml." default:"yaml"`
}

// Run shows the image.
func (c *ImageShowCmd) Run(e *Env) error {
	if err := c.Format.Validate(); err != nil {
		return err
	}
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		img, err := cl.Image(ctx, c.Image)
		if err != nil {
			return fmt.Errorf("image %s: %w", c.Image, err)
		}
		return output.Render(e.Stdout, c.Format, img, func() ([]string, [][]string) { return output.ImageTable([]api.Image{*img}) })
	})
}

// ImageDeleteCmd is `image delete IMAGE`.
type ImageDeleteCmd struct {
	Image string `arg:"" help:"Alias or fingerprint (prefix)."`
}

// Run deletes the image.
func (c *ImageDeleteCmd) Run(e *Env) error {
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		if err := cl.DeleteImage(ctx, c.Image); err != nil {
			return fmt.Errorf("image %s: %w", c.Image, err)
		}
		return nil
	})
}

// ImageAliasCmd is `image alias create|delete` (add is create's other name).
type ImageAliasCmd struct {
	Create ImageAliasCreateCmd `cmd:"" aliases:"add" help:"Point an alias at an image."`
	Delete ImageAliasDeleteCmd `cmd:"" help:"Remove an alias."`
}

// ImageAliasCreateCmd is `image alias create NAME TARGET`.
type ImageAliasCreateCmd struct {
	Name   string `arg:""`
	Target string `arg:"" help:"Fingerprint (prefix) or alias."`
}

// Run creates (or moves) the alias.
func (c *ImageAliasCreateCmd) Run(e *Env) error {
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		if err := cl.CreateImageAlias(ctx, c.Name, c.Target); err != nil {
			return fmt.Errorf("alias %s -> image %s: %w", c.Name, c.Target, err)
		}
		return nil
	})
}

// ImageAliasDeleteCmd is `image alias delete NAME`.
type ImageAliasDeleteCmd struct {
	Name string `arg:""`
}

// Run deletes the alias.
func (c *ImageAliasDeleteCmd) Run(e *Env) error {
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		if err := cl.DeleteImageAlias(ctx, c.Name); err != nil {
			return fmt.Errorf("alias %s: %w", c.Name, err)
		}
		return nil
	})
}
