package simplestreams

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Entry is one image to publish with Write.
type Entry struct {
	// Aliases the product answers to ("busybox", "busybox/1.36").
	Aliases []string
	// OS and Release name the product.
	OS, Release string
	// Arch is the Debian-style architecture (amd64).
	Arch string
	// Version names the build (a date stamp such as 20260101_0000).
	Version string
	// Rootfs is the path of the rootfs tarball (.tar.xz or .tar.gz).
	Rootfs string
	// Meta is the path of the metadata tarball, or "" for none.
	Meta string
}

// Write lays out a static simplestreams server in dir (serve it with http.FileServer):
// the tarballs under images/ and the streams/v1 index and products files.
func Write(dir string, entries []Entry) error {
	prods := Products{Format: "products:1.0", ContentID: "images", DataType: "image-downloads", Products: map[string]Product{}}
	for _, e := range entries {
		key := strings.Join([]string{e.OS, e.Release, e.Arch, "default"}, ":")
		p, ok := prods.Products[key]
		if !ok {
			p = Product{Aliases: strings.Join(e.Aliases, ","), Arch: e.Arch, OS: e.OS, Release: e.Release, Versions: map[string]Version{}}
		}
		v, err := publish(dir, e)
		if err != nil {
			return err
		}
		p.Versions[e.Version] = v
		prods.Products[key] = p
	}
	keys := make([]string, 0, len(prods.Products))
	for k := range prods.Products {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	idx := Index{Format: "index:1.0", Index: map[string]IndexEntry{"images": {
		DataType: "image-downloads", Path: "streams/v1/images.json", Format: "products:1.0", Products: keys}}}
	if err := writeJSON(filepath.Join(dir, "streams/v1/images.json"), prods); err != nil {
		return err
	}
	return writeJSON(filepath.Join(dir, IndexPath), idx)
}

// publish copies an entry's files under dir and describes them.
func publish(dir string, e Entry) (Version, error) {
	rel := filepath.Join("images", e.OS, e.Release, e.Arch, e.Version)
	v := Version{Items: map[string]Item{}}
	rootName := "root.tar" + ext(e.Rootfs)
	root, rootSum, err := copyFile(e.Rootfs, filepath.Join(dir, rel, rootName))
	if err != nil {
		return v, err
	}
	v.Items[rootName] = Item{FType: rootName, Path: filepath.Join(rel, rootName), SHA256: rootSum, Size: root}
	if e.Meta == "" {
		return v, nil
	}
	metaName := "lxd.tar" + ext(e.Meta)
	meta, metaSum, err := copyFile(e.Meta, filepath.Join(dir, rel, metaName))
	if err != nil {
		return v, err
	}
	combined, err := combinedSum(e.Meta, e.Rootfs)
	if err != nil {
		return v, err
	}
	v.Items[metaName] = Item{FType: metaName, Path: filepath.Join(rel, metaName), SHA256: metaSum, Size: meta,
		CombinedRootXZSHA256: combined, CombinedSHA256: combined}
	return v, nil
}

func ext(path string) string {
	switch {
	case strings.HasSuffix(path, ".xz"):
		return ".xz"
	case strings.HasSuffix(path, ".gz"):
		return ".gz"
	}
	return ""
}

// copyFile copies src to dst (making its directory) and returns the size and SHA-256.
func copyFile(src, dst string) (int64, string, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, "", err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return 0, "", err
	}
	out, err := os.Create(dst)
	if err != nil {
		return 0, "", err
	}
	defer out.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), in)
	if err != nil {
		return 0, "", fmt.Errorf("copying %s: %w", src, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), out.Close()
}

// combinedSum is the SHA-256 of the files' contents one after the other.
func combinedSum(paths ...string) (string, error) {
	h := sha256.New()
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return "", err
		}
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// WriteMeta makes an image metadata tarball at path (compressed after its suffix: .tar.xz
// or .tar.gz) holding metadata.yaml with the architecture, creation date and properties.
func WriteMeta(ctx context.Context, path, arch string, props map[string]string) error {
	src, err := os.MkdirTemp("", "orch-meta-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(src)
	var b strings.Builder
	fmt.Fprintf(&b, "architecture: %s\ncreation_date: %d\nproperties:\n", arch, time.Now().Unix())
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s: %q\n", k, props[k])
	}
	if err := os.WriteFile(filepath.Join(src, "metadata.yaml"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(src, "templates"), 0o755); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, "tar", "--numeric-owner", "--owner=0", "--group=0", "-caf", path, "-C", src, "metadata.yaml", "templates").CombinedOutput()
	if err != nil {
		return fmt.Errorf("writing %s: tar: %v: %s", path, err, out)
	}
	return nil
}
