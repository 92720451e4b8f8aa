package serverconfig

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"orch/nodeagent/api"
	"orch/nodeagent/config"
	"orch/nodeagent/daemon/db"
	"orch/nodeagent/daemon/rest"
	"orch/nodeagent/store"
)

// State is the visible configuration at one point: global and member-local keys
// (secrets shown as "true"), the global config version it was read at, and its ETag.
type State struct {
	Config  map[string]string
	Version int64
	ETag    string

	localGen uint64 // the node-local generation the member-local keys were read at
}

// fullKey is what a full configuration depends on: the replica state it was read at (the
// zero Replica before init) and the node-local generation.
type fullKey struct {
	replica db.Replica
	local   uint64
}

// fullConfig is Full. A member that reads its own replica remembers the last State with
// the replica state and the node-local generation it was read at, and answers it again
// while neither moved: after Fresh, the replica holds every acknowledged write, and an
// unchanged applied index means no write since that State was read.
func (s *Service) fullConfig(ctx context.Context) (*State, error) {
	var key fullKey
	query := s.db.QueryLocal
	if s.member.Clustered() {
		at, err := s.db.Fresh(ctx)
		if err != nil {
			return nil, err
		}
		if !at.Local() {
			return s.readFull(ctx, s.db.Query) // forwarded to the leader: nothing to remember
		}
		key.replica = at
	} else {
		query = nil
	}
	key.local = s.local.Generation()
	if st, ok := s.full.Get(key); ok {
		return st, nil
	}
	st, err := s.readFull(ctx, query)
	if err != nil {
		return nil, err
	}
	if st.localGen == key.local {
		s.full.Put(key, st)
	}
	return st, nil
}

// queryFunc reads the replicated database (Query, or QueryLocal once Fresh returned).
type queryFunc func(ctx context.Context, sql string, args ...any) (db.Rows, error)

// readFull reads the configuration: global keys with query (none when query is nil: not
// clustered) and member-local keys.
func (s *Service) readFull(ctx context.Context, query queryFunc) (*State, error) {
	out := map[string]string{}
	ver := int64(0)
	if query != nil {
		rows, err := query(ctx, `SELECT key, value FROM config UNION ALL SELECT 'meta:config_version', value FROM meta WHERE key = 'config_version'`)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			k, v := db.Str(r[0]), db.Str(r[1])
			if k == "meta:config_version" {
				ver = db.I64(r[1])
				continue
			}
			if key, err := config.Lookup(k); err == nil && key.Secret {
				v = "true"
			}
			out[k] = v
		}
	}
	local, gen, err := s.local.ConfigAt()
	if err != nil {
		return nil, err
	}
	for k, v := range local {
		if key, err := config.Lookup(k); err == nil && key.Scope == config.Local {
			out[k] = v
		}
	}
	return &State{Config: out, Version: ver, ETag: configETag(ver, local), localGen: gen}, nil
}

// configETag identifies a configuration state: the global config version (bumped by every
// replicated change) in clear, so that a compare-and-set can hand it to the replicated
// write as its guard, and a hash of the member-local keys.
func configETag(globalVersion int64, local map[string]string) string {
	return fmt.Sprintf(`"%d-%s"`, globalVersion, localConfigHash(local))
}

func localConfigHash(local map[string]string) string {
	h := sha256.New()
	keys := make([]string, 0, len(local))
	for k := range local {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "%s=%s\n", k, local[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:24]
}

// errStaleETag is the answer to an If-Match that does not name the current configuration.
func errStaleETag() error {
	return api.Errorf(http.StatusPreconditionFailed, "configuration changed since it was read (ETag mismatch)")
}

// parseETag splits an ETag of configETag into the global config version and the local
// hash; ok is false for anything else.
func parseETag(etag string) (version int64, localHash string, ok bool) {
	inner, found := strings.CutPrefix(etag, `"`)
	if inner, found = strings.CutSuffix(inner, `"`); !found {
		return 0, "", false
	}
	v, h, found := strings.Cut(inner, "-")
	version, err := strconv.ParseInt(v, 10, 64)
	if !found || err != nil || version < 0 || len(h) != 24 {
		return 0, "", false
	}
	return version, h, true
}

func (s *Service) putServer(w http.ResponseWriter, r *http.Request) error {
	return s.updateConfig(w, r, true)
}

func (s *Service) patchServer(w http.ResponseWriter, r *http.Request) error {
	return s.updateConfig(w, r, false)
}

// maxPutRetries bounds how often a PUT without If-Match re-reads the configuration when a
// concurrent write got in between its read and its write.
const maxPutRetries = 8

// updateConfig applies PUT (replace) or PATCH (merge) of the configuration. The replicated
// part is one raft entry that bumps the global config version; with If-Match that entry is
// guarded by the version the ETag names, so the compare-and-set happens in the state
// machine, atomically cluster-wide, and concurrent writes share log entries instead of
// queueing on a lock. A PUT without If-Match is guarded by the version it read (and
// retried when that went stale), so that it replaces the configuration as a whole.
func (s *Service) updateConfig(w http.ResponseWriter, r *http.Request, replace bool) error {
	put, err := decodePut(r)
	if err != nil {
		return err
	}
	match := r.Header.Get("If-Match")
	for range maxPutRetries {
		err = s.applyConfig(r.Context(), put.Config, replace, match)
		if !errors.Is(err, errPutRaced) {
			break
		}
	}
	if errors.Is(err, errPutRaced) {
		return rest.Unavailable("configuration changed %d times while replacing it; try again", maxPutRetries)
	}
	if err != nil {
		return err
	}
	return rest.WriteOK(w, nil, "")
}

// errPutRaced reports that a PUT without If-Match lost its guard to a concurrent write.
var errPutRaced = errors.New("a concurrent write changed the configuration")

// applyConfig makes one attempt of updateConfig.
func (s *Service) applyConfig(ctx context.Context, body map[string]string, replace bool, match string) error {
	changes, guard := body, int64(-1)
	if replace {
		current, err := s.fullConfig(ctx)
		if err != nil {
			return err
		}
		changes, guard = replacement(current.Config, body), current.Version
	}
	global, localChanges, err := splitConfig(changes)
	if err != nil {
		return rest.BadRequest("%v", err)
	}
	if err := s.checkLocalChange(localChanges); err != nil {
		return err
	}
	if err := s.checkRaftTimings(ctx, global); err != nil {
		return err
	}
	if match != "" || len(localChanges) > 0 {
		// Member-local keys live outside raft (and may move listeners): their check and
		// change stay under the daemon's lock.
		s.mu.Lock()
		defer s.mu.Unlock()
	}
	if match != "" {
		if guard, err = s.checkETag(ctx, match, len(global) == 0); err != nil {
			return err
		}
	}
	if len(global) > 0 {
		err := s.writeGlobalConfig(ctx, global, guard)
		if errors.Is(err, store.ErrConflict) {
			if match == "" {
				return errPutRaced
			}
			return errStaleETag()
		}
		if err != nil {
			return err
		}
	}
	return s.setLocalConfig(localChanges)
}

// checkETag compares the local half of an If-Match ETag with this member's local keys and
// returns the global config version it names, for the replicated write to check. With no
// replicated write to carry that check (verifyVersion), the version is checked here with
// a linearizable read.
func (s *Service) checkETag(ctx context.Context, match string, verifyVersion bool) (int64, error) {
	version, localHash, ok := parseETag(match)
	if !ok {
		return 0, errStaleETag()
	}
	local, err := s.local.Config()
	if err != nil {
		return 0, err
	}
	if localHash != localConfigHash(local) {
		return 0, errStaleETag()
	}
	if verifyVersion {
		cur, err := s.configVersion(ctx)
		if err != nil {
			return 0, err
		}
		if cur != version {
			return 0, errStaleETag()
		}
	}
	return version, nil
}

// configVersion reads the global config version linearizably (0 before init).
func (s *Service) configVersion(ctx context.Context) (int64, error) {
	if !s.member.Clustered() {
		return 0, nil
	}
	rows, err := s.db.Query(ctx, `SELECT value FROM meta WHERE key = 'config_version'`)
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	return db.I64(rows[0][0]), nil
}

// setLocalConfig stores member-local keys and moves the client listener when needed.
func (s *Service) setLocalConfig(changes map[string]string) error {
	if len(changes) == 0 {
		return nil
	}
	if err := s.local.Set(changes); err != nil {
		return err
	}
	return s.member.LocalChanged()
}

// replacement turns a PUT body into changes: keys absent from the body are unset.
func replacement(current, put map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range current {
		if _, ok := put[k]; !ok && v != "" {
			if key, err := config.Lookup(k); err == nil && key.Secret {
				continue // a PUT shows secrets as "true"; leaving one out keeps it
			}
			out[k] = ""
		}
	}
	for k, v := range put {
		out[k] = v
	}
	return out
}

// splitConfig validates changes and splits them by scope; secrets are hashed here.
func splitConfig(changes map[string]string) (global, local map[string]string, err error) {
	global, local = map[string]string{}, map[string]string{}
	keys := make([]string, 0, len(changes))
	for k := range changes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		key, err := config.Lookup(k)
		if err != nil {
			return nil, nil, err
		}
		v, err := config.Validate(k, changes[k])
		if err != nil {
			return nil, nil, err
		}
		if key.Secret && v == "true" {
			continue // the masked value GET returned: unchanged
		}
		if key.Secret && v != "" {
			if v, err = config.HashPassword(v); err != nil {
				return nil, nil, err
			}
		}
		if key.Scope == config.Local {
			local[k] = v
		} else {
			global[k] = v
		}
	}
	return global, local, nil
}

// checkRaftTimings refuses a change of the raft timing keys that raft would refuse together
// with the ones it leaves as they are (election >= heartbeat >= leader lease).
func (s *Service) checkRaftTimings(ctx context.Context, global map[string]string) error {
	touched := false
	for k := range global {
		touched = touched || strings.HasPrefix(k, "cluster.raft_")
	}
	if !touched {
		return nil
	}
	merged := map[string]string{}
	if s.member.Clustered() {
		rows, err := s.db.Query(ctx, `SELECT key, value FROM config WHERE key LIKE 'cluster.raft_%'`)
		if err != nil {
			return err
		}
		for _, r := range rows {
			merged[db.Str(r[0])] = db.Str(r[1])
		}
	}
	for k, v := range global {
		merged[k] = v // "" unsets: the default
	}
	if err := config.CheckRaftTimings(merged); err != nil {
		return rest.BadRequest("%v", err)
	}
	return nil
}

func (s *Service) checkLocalChange(changes map[string]string) error {
	if v, ok := changes["cluster.https_address"]; ok && s.member.Self() != "" {
		if cur := s.member.ClusterAddress(); v != cur {
			return rest.BadRequest("cluster.https_address cannot be changed on a cluster member (it is %s)", cur)
		}
	}
	return nil
}

// writeGlobalConfig replicates config changes in one raft entry that also bumps the config
// version; with guard >= 0 the entry fails with store.ErrConflict unless the version is
// still guard.
func (s *Service) writeGlobalConfig(ctx context.Context, changes map[string]string, guard int64) error {
	if !s.member.Clustered() {
		return fmt.Errorf("%w: cluster-wide keys need an initialised member", rest.ErrNotInitialised)
	}
	bump := store.Statement{SQL: `UPDATE meta SET value = value + 1 WHERE key = 'config_version'`}
	if guard >= 0 {
		bump.SQL += ` AND value = ?`
		bump.Args = []any{guard}
		bump.Expect = store.Int64(1)
	}
	stmts := append([]store.Statement{bump}, Statements(changes)...)
	_, err := s.db.Exec(ctx, stmts...)
	return err
}

// Statements replicate config changes: a key set to "" is deleted. Keys are sorted, so the
// entry does not depend on map order.
func Statements(changes map[string]string) []store.Statement {
	keys := make([]string, 0, len(changes))
	for k := range changes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []store.Statement
	for _, k := range keys {
		if v := changes[k]; v == "" {
			out = append(out, store.Statement{SQL: `DELETE FROM config WHERE key = ?`, Args: []any{k}})
		} else {
			out = append(out, store.Statement{SQL: `INSERT INTO config(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`, Args: []any{k, v}})
		}
	}
	return out
}
