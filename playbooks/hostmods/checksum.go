package hostmods

import (
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"os"
)

// sha1Hex is Ansible's default checksum (the one fetch, copy and stat report).
func sha1Hex(b []byte) string {
	s := sha1.Sum(b)
	return hex.EncodeToString(s[:])
}

// md5Hex is the md5sum fetch also reports.
func md5Hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

// localSHA1 is the sha1 of a controller file, "" if it cannot be read.
func localSHA1(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return sha1Hex(b)
}
