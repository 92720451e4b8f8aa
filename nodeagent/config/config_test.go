package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	good := map[string]string{
		"cluster.max_voters": "5", "cluster.max_standby": "0", "cluster.offline_threshold": "20",
		"cluster.images_minimal_replica": "-1", "user.anything": "x y", "cluster.join_token_expiry": "3H",
	}
	for k, v := range good {
		if _, err := Validate(k, v); err != nil {
			t.Errorf("%s=%s refused: %v", k, v, err)
		}
	}
	bad := map[string]string{
		"cluster.max_voters": "4", "cluster.max_standby": "6", "cluster.images_minimal_replica": "0",
		"cluster.offline_threshold": "x", "cluster.https_address": "0.0.0.0:8443", "cluster.join_token_expiry": "soon",
	}
	for k, v := range bad {
		_, err := Validate(k, v)
		if !errors.Is(err, ErrBadValue) || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: %v, want ErrBadValue naming the key", k, v, err)
		}
	}
	if _, err := Validate("core.bogus", "1"); !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), "core.bogus") {
		t.Errorf("unknown key: %v", err)
	}
	if _, err := Validate("user.", "1"); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("bare user. accepted: %v", err)
	}
}

func TestSecretNeverInErrors(t *testing.T) {
	k := keys["core.trust_password"]
	k.check = func(string) (string, error) { return "", errors.New("nope") }
	keys["core.trust_password"] = k
	defer func() { k.check = nonEmpty; keys["core.trust_password"] = k }()
	_, err := Validate("core.trust_password", "hunter2")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("secret leaked or accepted: %v", err)
	}
}

func TestAddressDefaultsPort(t *testing.T) {
	got, err := Validate("core.https_address", "10.0.0.1")
	if err != nil || got != "10.0.0.1:8443" {
		t.Fatalf("got %q %v", got, err)
	}
	if got, _ := Validate("core.https_address", "[::]:9443"); got != "[::]:9443" {
		t.Fatalf("wildcard core address refused: %q", got)
	}
}

func TestPasswordHash(t *testing.T) {
	h, err := HashPassword("sekret")
	if err != nil || strings.Contains(h, "sekret") {
		t.Fatalf("hash %q %v", h, err)
	}
	if !CheckPassword(h, "sekret") || CheckPassword(h, "sekret2") || CheckPassword("garbage", "sekret") {
		t.Fatal("password check wrong")
	}
}

func TestParseExpiry(t *testing.T) {
	for s, want := range map[string]time.Duration{"3H": 3 * time.Hour, "1d 2H": 26 * time.Hour, "30S": 30 * time.Second, "90m": 90 * time.Minute} {
		if got, err := ParseExpiry(s); err != nil || got != want {
			t.Errorf("%s: %v %v", s, got, err)
		}
	}
}

// TestRaftTimingKeys: the raft timing keys take Go durations within their bounds
// (normalised), the combination raft requires is checked naming the keys, and unset keys
// read as the defaults.
func TestRaftTimingKeys(t *testing.T) {
	for key, cases := range map[string]map[string]bool{
		RaftHeartbeatTimeout:   {"1.5s": true, "400ms": true, "1m": true, "19ms": false, "2m": false, "fast": false, "400": false},
		RaftElectionTimeout:    {"2s": true, "10ms": false},
		RaftLeaderLeaseTimeout: {"10ms": true, "5ms": false},
	} {
		for v, ok := range cases {
			_, err := Validate(key, v)
			if (err == nil) != ok {
				t.Errorf("Validate(%s, %q) = %v, want ok=%v", key, v, err, ok)
			}
			if err != nil && (!errors.Is(err, ErrBadValue) || !strings.Contains(err.Error(), key)) {
				t.Errorf("Validate(%s, %q): %v does not name the key or wrap ErrBadValue", key, v, err)
			}
		}
	}
	if v, _ := Validate(RaftHeartbeatTimeout, "1500ms"); v != "1.5s" {
		t.Errorf("1500ms normalised to %q, want 1.5s", v)
	}
	hb, el, lease := RaftTimings(map[string]string{})
	if hb != 800*time.Millisecond || el != 800*time.Millisecond || lease != 790*time.Millisecond {
		t.Errorf("defaults %v %v %v", hb, el, lease)
	}
	for cfg, bad := range map[[3]string]string{
		{"1s", "1s", "900ms"}:    "",
		{"1s", "500ms", "900ms"}: RaftElectionTimeout,
		{"1s", "2s", "1.5s"}:     RaftLeaderLeaseTimeout,
		{"300ms", "", ""}:        RaftLeaderLeaseTimeout, // the default election timeout 800ms is fine, the default lease 790ms is not
		{"2s", "2s", ""}:         "",
	} {
		m := map[string]string{RaftHeartbeatTimeout: cfg[0], RaftElectionTimeout: cfg[1], RaftLeaderLeaseTimeout: cfg[2]}
		err := CheckRaftTimings(m)
		switch {
		case bad == "" && err != nil:
			t.Errorf("%v: %v", cfg, err)
		case bad != "" && (err == nil || !strings.Contains(err.Error(), bad)):
			t.Errorf("%v: got %v, want an error naming %s", cfg, err, bad)
		}
	}
}
