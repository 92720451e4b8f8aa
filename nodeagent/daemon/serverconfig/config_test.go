package serverconfig

import (
	"reflect"
	"testing"
)

// The compare-and-set itself (concurrent PATCHes sharing log entries, exactly one If-Match
// winner) runs on a real one-member daemon in the daemon package (config_test.go,
// FuzzServerConfigBody); these pin the ETag format and the PUT/PATCH bookkeeping.

func TestETagRoundTrip(t *testing.T) {
	local := map[string]string{"core.https_address": "127.0.0.1:8443"}
	etag := configETag(42, local)
	v, h, ok := parseETag(etag)
	if !ok || v != 42 || h != localConfigHash(local) {
		t.Fatalf("parseETag(%s) = %d %q %v", etag, v, h, ok)
	}
	if configETag(42, map[string]string{"core.https_address": "127.0.0.1:9443"}) == etag {
		t.Error("a local change kept the ETag")
	}
	for _, bad := range []string{"", "*", `"42"`, `"x-` + h + `"`, `"-1-` + h + `"`, etag[1 : len(etag)-1], `"42-short"`} {
		if _, _, ok := parseETag(bad); ok {
			t.Errorf("parseETag(%s) accepted", bad)
		}
	}
}

// A PUT unsets what it leaves out, except a secret (shown as "true"), which it keeps.
func TestReplacementKeepsSecrets(t *testing.T) {
	current := map[string]string{"user.a": "1", "user.b": "2", "core.trust_password": "true"}
	got := replacement(current, map[string]string{"user.a": "9"})
	want := map[string]string{"user.a": "9", "user.b": ""}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("replacement = %v, want %v", got, want)
	}
}

func TestSplitByScope(t *testing.T) {
	global, local, err := Split(map[string]string{"user.x": "1", "core.https_address": "127.0.0.1:8443", "core.trust_password": "true"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(global, map[string]string{"user.x": "1"}) || !reflect.DeepEqual(local, map[string]string{"core.https_address": "127.0.0.1:8443"}) {
		t.Errorf("split: global %v local %v (the masked secret must be left out)", global, local)
	}
	global, _, err = Split(map[string]string{"core.trust_password": "s3cret"})
	if err != nil || global["core.trust_password"] == "" || global["core.trust_password"] == "s3cret" {
		t.Errorf("a new trust password is stored as %q (%v), want a hash", global["core.trust_password"], err)
	}
	if _, _, err := Split(map[string]string{"no.such.key": "1"}); err == nil {
		t.Error("an unknown key was accepted")
	}
}
