package modules

import (
	"context"
	"fmt"
	"os"
	"slices"

	"orch/nodeagent/api"
	"orch/playbooks"
)

// imageSpec is a declared image: the alias it is known by and the tarball to import.
type imageSpec struct {
	via, fp, alias, src, state string
}

func imageArgs(t *playbooks.TaskContext) (imageSpec, error) {
	var s imageSpec
	var err error
	for _, f := range []struct {
		dst  *string
		name string
	}{{&s.via, "via"}, {&s.fp, "fingerprint"}, {&s.alias, "alias"}} {
		if *f.dst, err = t.Args.Required(f.name); err != nil {
			return s, err
		}
	}
	if s.state, err = t.Args.String("state", "present"); err != nil {
		return s, err
	}
	if s.state != "present" && s.state != "absent" {
		return s, fmt.Errorf("state: %q (present or absent)", s.state)
	}
	if s.src, err = t.Args.String("src", ""); err != nil {
		return s, err
	}
	if s.src == "" && s.state == "present" {
		return s, fmt.Errorf("src: required unless state is absent")
	}
	if s.src != "" {
		s.src = t.LocalPath(s.src)
	}
	return s, nil
}

// imageSteps imports the tarball when no image has the alias, or deletes the image the
// alias names when absent is declared (cur is that image, nil when the alias is unknown).
func imageSteps(s imageSpec, cur *api.Image) []step {
	switch {
	case s.state == "present" && cur == nil:
		return []step{{fmt.Sprintf("import %s as %s", s.src, s.alias), func(ctx context.Context, cl *api.Client) error {
			return importTarball(ctx, cl, s.src, s.alias)
		}}}
	case s.state == "absent" && cur != nil:
		return []step{{fmt.Sprintf("delete image %s (%.12s)", s.alias, cur.Fingerprint), func(ctx context.Context, cl *api.Client) error {
			return cl.DeleteImage(ctx, cur.Fingerprint)
		}}}
	}
	return nil
}

// importTarball streams a local tarball to the API.
func importTarball(ctx context.Context, cl *api.Client, path, alias string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := cl.ImportImage(ctx, f, []string{alias}); err != nil {
		return fmt.Errorf("importing %s: %w", path, err)
	}
	return nil
}

// image is the image module.
func (d Deps) image(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	s, err := imageArgs(t)
	if err != nil {
		return playbooks.Result{}, err
	}
	cl, err := d.apiClient(s.via, s.fp)
	if err != nil {
		return playbooks.Result{}, err
	}
	defer cl.Close()
	cur, err := cl.Image(ctx, s.alias)
	if isNotFound(err) || (err == nil && !slices.Contains(cur.AliasNames(), s.alias)) {
		cur, err = nil, nil // not found, or the name is only a fingerprint prefix
	}
	if err != nil {
		return playbooks.Result{}, fmt.Errorf("image %s: %w", s.alias, err)
	}
	steps := imageSteps(s, cur)
	if len(steps) > 0 && s.state == "present" {
		if _, err := os.Stat(s.src); err != nil {
			return playbooks.Result{}, fmt.Errorf("image %s: %w", s.alias, err)
		}
	}
	return run(ctx, t, cl, "image", s.alias, steps)
}
