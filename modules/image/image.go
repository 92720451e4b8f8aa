// Package image keeps container images on one member: DIR/<sha256 fingerprint>/ holds the
// rootfs tarball (rootfs.tar.xz, .gz or plain, as imported), the optional metadata tarball
// (meta.tar.*, the layout LXC's `local` template and LXD's split images use) and
// metadata.yaml, the store's own description of the image (aliases, size, properties).
//
// The fingerprint is the SHA-256 of the rootfs tarball, or of the metadata tarball followed
// by the rootfs tarball for split images (LXD's combined fingerprint), so a copy can be
// verified wherever it lands.
package image

import (
	"errors"
	"regexp"
	"sync"
	"time"
)

// Errors callers can test with errors.Is.
var (
	// ErrNotFound means no image matches the fingerprint, prefix or alias.
	ErrNotFound = errors.New("image not found")
	// ErrAmbiguous means a fingerprint prefix matches several images.
	ErrAmbiguous = errors.New("ambiguous image fingerprint prefix")
	// ErrFingerprint means the content does not hash to the expected fingerprint.
	ErrFingerprint = errors.New("image fingerprint mismatch")
	// ErrInvalid means a tarball, alias or reference is malformed.
	ErrInvalid = errors.New("invalid image")
)

// Image describes a stored image (its metadata.yaml).
type Image struct {
	// Fingerprint is the hex SHA-256 identifying the image.
	Fingerprint string `yaml:"fingerprint" json:"fingerprint"`
	// Aliases are the local names pointing at the image.
	Aliases []string `yaml:"aliases,omitempty" json:"aliases,omitempty"`
	// Rootfs is the file name of the rootfs tarball in the image directory.
	Rootfs string `yaml:"rootfs" json:"rootfs"`
	// Meta is the file name of the metadata tarball, empty when there is none.
	Meta string `yaml:"meta,omitempty" json:"meta,omitempty"`
	// Size is the total size of the tarballs in bytes.
	Size int64 `yaml:"size" json:"size"`
	// Architecture as the image metadata states it (such as x86_64), when known.
	Architecture string `yaml:"architecture,omitempty" json:"architecture,omitempty"`
	// Properties from the image metadata (os, release, description) and the importer.
	Properties map[string]string `yaml:"properties,omitempty" json:"properties,omitempty"`
	// ImportedAt is when this member stored the image.
	ImportedAt time.Time `yaml:"imported_at" json:"imported_at"`
}

// aliasRE is what an alias may look like (also used as a simplestreams alias: "ubuntu/18.04").
// It and the node drivers' name patterns are compiled on first use: compiled at package
// init, every nodeagent process paid for them (0.5 ms, {0,127} is a long program), the
// CLI commands orch runs on every host included.
var aliasRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._/-]{0,127}$`) })

// fpRE matches a full fingerprint.
var fpRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9a-f]{64}$`) })

// ValidAlias reports an error wrapping ErrInvalid when name cannot be an alias.
func ValidAlias(name string) error {
	if !aliasRE().MatchString(name) || fpRE().MatchString(name) {
		return &aliasError{name}
	}
	return nil
}

type aliasError struct{ name string }

func (e *aliasError) Error() string {
	return "alias " + quote(e.name) + ": letters, digits, '.', '_', '/', '-' (not a fingerprint): " + ErrInvalid.Error()
}
func (e *aliasError) Unwrap() error { return ErrInvalid }

func quote(s string) string { return "\"" + s + "\"" }
