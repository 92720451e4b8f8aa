package rest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"

	"orch/nodeagent/api"
)

// ETag is the entity tag of an object's writable part, as LXD computes one: a hash of
// what a PUT would replace, so that it changes exactly when a PUT would have something
// to overwrite.
func ETag(writable any) string {
	b, err := json.Marshal(writable)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

// CheckIfMatch refuses (412) a PUT or PATCH whose If-Match names another ETag than
// current's; without If-Match it accepts, as LXD does. The check and the write that
// follows are not one transaction: it catches a client that edits a stale copy, which is
// what LXD's clients use it for (`lxc ... edit`, `set`).
func CheckIfMatch(r *http.Request, current any) error {
	m := r.Header.Get("If-Match")
	if m == "" || m == ETag(current) {
		return nil
	}
	return api.Errorf(http.StatusPreconditionFailed, "ETag doesn't match: %s was changed since it was read", r.URL.Path)
}
