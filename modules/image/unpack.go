package image

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Files returns the paths of the image's rootfs tarball and metadata tarball ("" when it
// has none), for copying it to another member.
func (s *Store) Files(fp string) (rootfs, meta string, err error) {
	img, err := s.load(fp)
	if err != nil {
		return "", "", err
	}
	dir := filepath.Join(s.dir, fp)
	rootfs = filepath.Join(dir, img.Rootfs)
	if img.Meta != "" {
		meta = filepath.Join(dir, img.Meta)
	}
	return rootfs, meta, nil
}

// Unpack extracts the image ref refers to into dir (which must exist, normally an empty
// storage volume), keeping numeric owners and permissions.
func (s *Store) Unpack(ctx context.Context, ref, dir string) error {
	fp, err := s.Resolve(ref)
	if err != nil {
		return err
	}
	rootfs, _, err := s.Files(fp)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.tarTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "tar", "--numeric-owner", "-xpf", rootfs, "-C", dir)
	var errb strings.Builder
	cmd.Stderr = &errb
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("image %s: unpacking into %s: tar: %v: %s", fp[:12], dir, err, strings.TrimSpace(errb.String()))
	}
	return os.MkdirAll(filepath.Join(dir, "dev", "pts"), 0o755)
}

// Export writes the rootfs tarball of the image ref refers to into w.
func (s *Store) Export(ref string, w io.Writer) error {
	fp, err := s.Resolve(ref)
	if err != nil {
		return err
	}
	rootfs, _, err := s.Files(fp)
	if err != nil {
		return err
	}
	f, err := os.Open(rootfs)
	if err != nil {
		return fmt.Errorf("image %s: %w", fp, err)
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}
