// Package config defines the agent's configuration keys: which exist, whether they are
// cluster-wide (in the replicated database) or member-local (in the node-local database, as
// LXD keeps core.https_address and cluster.https_address), their defaults and validation.
package config

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/scrypt"
)

// Sentinel errors.
var (
	ErrUnknownKey = errors.New("unknown configuration key")
	ErrBadValue   = errors.New("invalid configuration value")
)

// Scope says where a key is stored.
type Scope int

// Key scopes.
const (
	Global Scope = iota // replicated to every member
	Local               // this member only
)

// Key describes one configuration key.
type Key struct {
	// Name is the dotted key.
	Name string
	// Scope is where it is stored.
	Scope Scope
	// Default is the value when unset ("" means no default).
	Default string
	// Secret keys are stored hashed and shown only as "true".
	Secret bool
	check  func(string) (string, error)
}

// DefaultPort is the agent's port when an address omits it.
const DefaultPort = "8443"

var keys = map[string]Key{
	"core.https_address":    {Name: "core.https_address", Scope: Local, check: checkAddress(true)},
	"cluster.https_address": {Name: "cluster.https_address", Scope: Local, check: checkAddress(false)},
	// core.debug_address is LXD's: where this member serves Go's pprof over plain HTTP.
	"core.debug_address":             {Name: "core.debug_address", Scope: Local, check: checkHostPort},
	"core.trust_password":            {Name: "core.trust_password", Scope: Global, Secret: true, check: nonEmpty},
	"cluster.max_voters":             {Name: "cluster.max_voters", Scope: Global, Default: "3", check: checkMaxVoters},
	"cluster.max_standby":            {Name: "cluster.max_standby", Scope: Global, Default: "2", check: intRange(0, 5)},
	"cluster.offline_threshold":      {Name: "cluster.offline_threshold", Scope: Global, Default: "20", check: intRange(1, 3600)},
	"cluster.images_minimal_replica": {Name: "cluster.images_minimal_replica", Scope: Global, Default: "3", check: checkReplica},
	"images.auto_update_interval":    {Name: "images.auto_update_interval", Scope: Global, Default: "6", check: intRange(0, 1<<20)},
	"cluster.join_token_expiry":      {Name: "cluster.join_token_expiry", Scope: Global, Default: "3H", check: checkExpiry},
	// core.remote_token_expiry is LXD's: how long a certificate-add token lasts ("": no expiry).
	RemoteTokenExpiry:             {Name: RemoteTokenExpiry, Scope: Global, check: checkExpiry},
	"core.metrics_authentication": {Name: "core.metrics_authentication", Scope: Global, Default: "true", check: checkBool},
	// Raft's timers (RaftHeartbeatTimeout and the two below): see RaftTimings.
	RaftHeartbeatTimeout:   {Name: RaftHeartbeatTimeout, Scope: Global, Default: "800ms", check: durationRange(20*time.Millisecond, time.Minute)},
	RaftElectionTimeout:    {Name: RaftElectionTimeout, Scope: Global, Default: "800ms", check: durationRange(20*time.Millisecond, time.Minute)},
	RaftLeaderLeaseTimeout: {Name: RaftLeaderLeaseTimeout, Scope: Global, Default: "790ms", check: durationRange(10*time.Millisecond, time.Minute)},
}

// The raft timing keys, cluster-wide, applied by every database member.
//
//   - cluster.raft_heartbeat_timeout (default 800ms): a voter or stand-by that hears nothing
//     from the leader for T (plus a step of T/8 per rank among the voters) starts an
//     election; the leader contacts each of them every 0.3-0.6 T. This bounds how soon a
//     SILENT leader (frozen, cut off, its host lost) is replaced: ~1.2-1.5 T. A leader whose
//     process ends is replaced at once whatever T (its connections close and its port
//     refuses). The default suits links up to ~100 ms RTT; raise it on slower or jittery
//     ones, lower it (not below ~300ms) for faster silent-failure detection at a higher
//     idle cost.
//   - cluster.raft_election_timeout (default 800ms, at least the heartbeat timeout): how long
//     a candidate waits for votes before trying again.
//   - cluster.raft_leader_lease_timeout (default 790ms, at most the heartbeat timeout): a
//     leader that cannot reach a quorum for this long steps down.
//
// Values are Go durations ("800ms", "1.5s"). The heartbeat and election timeouts take effect
// on every member as soon as its replica has the change; the leader lease when the member's
// daemon next starts (raft fixes it at start; until then a heartbeat timeout below a
// member's running lease waits for that restart too).
const (
	RaftHeartbeatTimeout   = "cluster.raft_heartbeat_timeout"
	RaftElectionTimeout    = "cluster.raft_election_timeout"
	RaftLeaderLeaseTimeout = "cluster.raft_leader_lease_timeout"
)

// RemoteTokenExpiry is how long a certificate-add token lasts, in LXD's expiry syntax
// ("30S", "10M", "3H", "2d", "1w"); unset, tokens last until used or revoked, as in LXD.
const RemoteTokenExpiry = "core.remote_token_expiry"

// RaftTimings reads the raft timing keys of cfg, defaults applied (values that do not
// parse count as their default).
func RaftTimings(cfg map[string]string) (heartbeat, election, lease time.Duration) {
	get := func(key string) time.Duration {
		if d, err := time.ParseDuration(cfg[key]); err == nil && d > 0 {
			return d
		}
		d, _ := time.ParseDuration(keys[key].Default)
		return d
	}
	return get(RaftHeartbeatTimeout), get(RaftElectionTimeout), get(RaftLeaderLeaseTimeout)
}

// CheckRaftTimings checks what raft requires of the three timings together; the error
// names the keys.
func CheckRaftTimings(cfg map[string]string) error {
	hb, el, lease := RaftTimings(cfg)
	switch {
	case el < hb:
		return fmt.Errorf("%w: %s %v must be at least %s %v", ErrBadValue, RaftElectionTimeout, el, RaftHeartbeatTimeout, hb)
	case lease > hb:
		return fmt.Errorf("%w: %s %v must be at most %s %v", ErrBadValue, RaftLeaderLeaseTimeout, lease, RaftHeartbeatTimeout, hb)
	}
	return nil
}

// durationRange accepts a Go duration in [lo, hi].
func durationRange(lo, hi time.Duration) func(string) (string, error) {
	return func(v string) (string, error) {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return "", errors.New(`not a duration (e.g. "400ms", "1.5s")`)
		}
		if d < lo || d > hi {
			return "", fmt.Errorf("must be between %v and %v", lo, hi)
		}
		return d.String(), nil
	}
}

// Lookup returns the description of key; user.* keys are free-form and global.
func Lookup(key string) (Key, error) {
	if k, ok := keys[key]; ok {
		return k, nil
	}
	if strings.HasPrefix(key, "user.") && len(key) > len("user.") {
		return Key{Name: key, Scope: Global, check: func(v string) (string, error) { return v, nil }}, nil
	}
	return Key{}, fmt.Errorf("%w %q", ErrUnknownKey, key)
}

// Validate checks value for key and returns it normalised (e.g. an address with its port).
// An empty value means "unset" and is always valid. Errors name the key, never a secret value.
func Validate(key, value string) (string, error) {
	k, err := Lookup(key)
	if err != nil {
		return "", err
	}
	if value == "" {
		return "", nil
	}
	v, err := k.check(value)
	if err != nil {
		if k.Secret {
			return "", fmt.Errorf("%w for %s", ErrBadValue, key)
		}
		return "", fmt.Errorf("%w for %s: %q: %v", ErrBadValue, key, value, err)
	}
	return v, nil
}

// Defaults returns every global key that has a default.
func Defaults() map[string]string {
	out := map[string]string{}
	for n, k := range keys {
		if k.Default != "" && k.Scope == Global {
			out[n] = k.Default
		}
	}
	return out
}

// Int returns the integer value of key in cfg, or its default.
func Int(cfg map[string]string, key string) int {
	v := cfg[key]
	if v == "" {
		v = keys[key].Default
	}
	n, _ := strconv.Atoi(v)
	return n
}

func nonEmpty(v string) (string, error) { return v, nil }

// checkBool accepts true or false (as LXD's boolean keys, any case).
func checkBool(v string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "1", "yes", "on":
		return "true", nil
	case "false", "0", "no", "off":
		return "false", nil
	}
	return "", errors.New("must be true or false")
}

func intRange(lo, hi int) func(string) (string, error) {
	return func(v string) (string, error) {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return "", errors.New("not an integer")
		}
		if n < lo || n > hi {
			return "", fmt.Errorf("must be between %d and %d", lo, hi)
		}
		return strconv.Itoa(n), nil
	}
}

func checkMaxVoters(v string) (string, error) {
	n, err := intRange(3, 99)(v)
	if err != nil {
		return "", err
	}
	if i, _ := strconv.Atoi(n); i%2 == 0 {
		return "", errors.New("must be an odd number")
	}
	return n, nil
}

func checkReplica(v string) (string, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return "", errors.New("not an integer")
	}
	if n == 0 || n < -1 {
		return "", errors.New("must be -1 (all members) or at least 1")
	}
	return strconv.Itoa(n), nil
}

func checkExpiry(v string) (string, error) {
	if _, err := ParseExpiry(v); err != nil {
		return "", err
	}
	return v, nil
}

// ParseExpiry parses LXD's expiry syntax ("30S", "10M", "3H", "2d", "1w", or several
// separated by spaces) and Go durations ("90m").
func ParseExpiry(v string) (time.Duration, error) {
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return d, nil
	}
	units := map[byte]time.Duration{'S': time.Second, 'M': time.Minute, 'H': time.Hour, 'd': 24 * time.Hour, 'w': 7 * 24 * time.Hour}
	var total time.Duration
	for _, f := range strings.Fields(v) {
		unit, ok := units[f[len(f)-1]]
		n, err := strconv.Atoi(f[:len(f)-1])
		if !ok || err != nil || n <= 0 {
			return 0, fmt.Errorf("bad duration %q (use e.g. 30S, 10M, 3H, 2d, 1w)", f)
		}
		total += time.Duration(n) * unit
	}
	if total <= 0 {
		return 0, errors.New("must be a positive duration")
	}
	return total, nil
}

func checkAddress(wildcardOK bool) func(string) (string, error) {
	return func(v string) (string, error) {
		return NormaliseAddress(v, wildcardOK)
	}
}

// checkHostPort accepts HOST:PORT with an explicit port (a debug address has no default).
func checkHostPort(v string) (string, error) {
	_, port, err := net.SplitHostPort(strings.TrimSpace(v))
	if err != nil {
		return "", err
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("port %q: must be 1-65535", port)
	}
	return strings.TrimSpace(v), nil
}

// NormaliseAddress adds the default port to a host address and validates it. A wildcard
// address (0.0.0.0, ::, empty host) is refused unless wildcardOK: members must be reachable
// at the cluster address they advertise.
func NormaliseAddress(v string, wildcardOK bool) (string, error) {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		host, port = strings.Trim(v, "[]"), DefaultPort
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return "", fmt.Errorf("bad port %q", port)
	}
	if ip := net.ParseIP(host); (host == "" || (ip != nil && ip.IsUnspecified())) && !wildcardOK {
		return "", errors.New("a wildcard address cannot be a cluster address")
	}
	return net.JoinHostPort(host, port), nil
}

// HashPassword hashes a trust password with scrypt and a random salt.
func HashPassword(pw string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	h, err := scrypt.Key([]byte(pw), salt, 1<<15, 8, 1, 32)
	if err != nil {
		return "", err
	}
	return "scrypt$" + hex.EncodeToString(salt) + "$" + hex.EncodeToString(h), nil
}

// CheckPassword reports whether pw matches a hash made by HashPassword.
func CheckPassword(hash, pw string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 3 || parts[0] != "scrypt" {
		return false
	}
	salt, err1 := hex.DecodeString(parts[1])
	want, err2 := hex.DecodeString(parts[2])
	if err1 != nil || err2 != nil {
		return false
	}
	got, err := scrypt.Key([]byte(pw), salt, 1<<15, 8, 1, 32)
	return err == nil && subtle.ConstantTimeCompare(got, want) == 1
}
