package trust

import "testing"

// The trust domain's end-to-end paths (adding with the password, removal refused at once
// on every member) are exercised by integration/security on real members, and the request
// bodies by the daemon's FuzzCertificateBody; this pins the cache's rules.

// A lookup that began before a forget must not be remembered: its answer may predate the
// change (a removal would be undone in the cache, a trusted client refused).
func TestTrustCacheForgetWinsOverOlderLookup(t *testing.T) {
	c := newTrustCache()
	epoch := c.begin()
	c.forget("aa", true)
	c.remember("aa", true, epoch, 7)
	if ok, _, known := c.cached("aa"); ok || known {
		t.Errorf("a lookup begun before the forget was remembered: trusted %v known %v", ok, known)
	}
	if !c.isRevoked("aa") {
		t.Error("a removed fingerprint is not marked revoked")
	}
	c.settled("aa")
	if c.isRevoked("aa") {
		t.Error("settled left the fingerprint revoked")
	}
}

func TestTrustCacheRemembers(t *testing.T) {
	c := newTrustCache()
	c.remember("aa", true, c.begin(), 7)
	if ok, at, known := c.cached("aa"); !ok || at != 7 || !known {
		t.Errorf("trusted aa at 7: cached %v %d %v", ok, at, known)
	}
	c.remember("bb", false, c.begin(), 7)
	if ok, _, known := c.cached("bb"); ok || !known {
		t.Errorf("a recent miss: cached trusted %v known %v", ok, known)
	}
	c.forget("aa", false)
	if _, _, known := c.cached("aa"); known || c.isRevoked("aa") {
		t.Error("forget (added) left aa known or revoked")
	}
}
