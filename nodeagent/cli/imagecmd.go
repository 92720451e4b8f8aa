package cli

import (
	"context"
	"fmt"
	"os"

	"orch/nodeagent/api"
	"orch/output"
)

// ImageCmd groups the image commands.
type ImageCmd struct {
	Import ImageImportCmd `cmd:"" help:"Import a rootfs tarball as an image."`
	List   ImageListCmd   `cmd:"" help:"List the cluster's images and their holders."`
	Show   ImageShowCmd   `cmd:"" help:"Show one image."`
	Delete ImageDeleteCmd `cmd:"" help:"Delete an image from every member."`
	Alias  ImageAliasCmd  `cmd:"" help:"Manage image aliases."`
}

// ImageImportCmd is `image import TARBALL --alias NAME`.
type ImageImportCmd struct {
	Tarball string   `arg:"" help:"Rootfs tarball (.tar, .tar.gz, .tar.xz)."`
	Alias   []string `help:"Alias to give the image (repeatable)."`
}

// Run uploads the tarball.
func (c *ImageImportCmd) Run(g *Globals) error {
	f, err := os.Open(c.Tarball)
	if err != nil {
		return err
	}
	defer f.Close()
	img, err := g.client().ImportImage(context.Background(), f, c.Alias)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.Stdout, "Image imported with fingerprint: %s\n", img.Fingerprint)
	return nil
}

// ImageListCmd lists images.
type ImageListCmd struct {
	Format output.Format `help:"table, json or yaml." default:"table"`
}

// Run lists the images.
func (c *ImageListCmd) Run(g *Globals) error {
	if err := c.Format.Validate(); err != nil {
		return err
	}
	imgs, err := g.client().Images(context.Background())
	if err != nil {
		return err
	}
	return output.Render(g.Stdout, c.Format, imgs, func() ([]string, [][]string) { return output.ImageTable(imgs) })
}

// ImageShowCmd shows one image.
type ImageShowCmd struct {
	Image  string        `arg:"" help:"Alias or fingerprint (prefix)."`
	Format output.Format `help:"table, json or yaml." default:"yaml"`
}

// Run shows the image.
func (c *ImageShowCmd) Run(g *Globals) error {
	img, err := g.client().Image(context.Background(), c.Image)
	if err != nil {
		return err
	}
	return output.Render(g.Stdout, c.Format, img, func() ([]string, [][]string) { return output.ImageTable([]api.Image{*img}) })
}

// ImageDeleteCmd deletes an image.
type ImageDeleteCmd struct {
	Image string `arg:"" help:"Alias or fingerprint (prefix)."`
}

// Run deletes the image.
func (c *ImageDeleteCmd) Run(g *Globals) error {
	return g.client().DeleteImage(context.Background(), c.Image)
}

// ImageAliasCmd groups alias create and delete.
type ImageAliasCmd struct {
	Create ImageAliasCreateCmd `cmd:"" help:"Point an alias at an image."`
	Delete ImageAliasDeleteCmd `cmd:"" help:"Remove an alias."`
}

// ImageAliasCreateCmd is `image alias create NAME TARGET`.
type ImageAliasCreateCmd struct {
	Name   string `arg:""`
	Target string `arg:"" help:"Fingerprint (prefix) or alias."`
}

// Run creates the alias.
func (c *ImageAliasCreateCmd) Run(g *Globals) error {
	return g.client().CreateImageAlias(context.Background(), c.Name, c.Target)
}

// ImageAliasDeleteCmd is `image alias delete NAME`.
type ImageAliasDeleteCmd struct {
	Name string `arg:""`
}

// Run deletes the alias.
func (c *ImageAliasDeleteCmd) Run(g *Globals) error {
	return g.client().DeleteImageAlias(context.Background(), c.Name)
}

// RemoteCmd groups the image server commands.
type RemoteCmd struct {
	Add    RemoteAddCmd    `cmd:"" help:"Add a simplestreams image server: NAME URL."`
	List   RemoteListCmd   `cmd:"" help:"List image servers."`
	Remove RemoteRemoveCmd `cmd:"" help:"Remove an image server."`
}

// RemoteAddCmd is `remote add NAME URL`.
type RemoteAddCmd struct {
	Name string `arg:""`
	URL  string `arg:""`
}

// Run records the remote.
func (c *RemoteAddCmd) Run(g *Globals) error {
	return g.client().AddRemote(context.Background(), api.Remote{Name: c.Name, URL: c.URL, Protocol: "simplestreams"})
}

// RemoteListCmd lists remotes.
type RemoteListCmd struct {
	Format output.Format `help:"table, json or yaml." default:"table"`
}

// Run lists the remotes.
func (c *RemoteListCmd) Run(g *Globals) error {
	rs, err := g.client().Remotes(context.Background())
	if err != nil {
		return err
	}
	return output.Render(g.Stdout, c.Format, rs, func() ([]string, [][]string) {
		rows := [][]string{}
		for _, r := range rs {
			rows = append(rows, []string{r.Name, r.URL, r.Protocol})
		}
		return []string{"NAME", "URL", "PROTOCOL"}, rows
	})
}

// RemoteRemoveCmd is `remote remove NAME`.
type RemoteRemoveCmd struct {
	Name string `arg:""`
}

// Run removes the remote.
func (c *RemoteRemoveCmd) Run(g *Globals) error {
	return g.client().RemoveRemote(context.Background(), c.Name)
}
