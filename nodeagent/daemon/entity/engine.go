package entity

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"sync"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/db"
	"orch/nodeagent/daemon/rest"
	"orch/nodeagent/store"
)

// Storage pools and networks follow one cluster-wide flow (LXD's): `create --target M`
// records member M's node-specific keys and leaves the entity Pending; the final `create`
// (no target) asks every member, over the internal API, to make its own part, rolls back
// the members that succeeded when any fails, and marks the entity Created. The tables of
// pools and networks have the same shape; entityKind names them.

// entityKind names the tables and the local operations of pools or networks.
type entityKind struct {
	noun     string // "storage pool", "network"
	entity   string // PoolEntity, NetworkEntity (node-specific keys)
	table    string
	config   string
	members  string
	idCol    string
	typeCol  string
	internal string // internal API prefix: POST {internal}/create, {internal}/delete
	// create and delete make and remove this member's part; both are idempotent.
	create, delete func(s *Service, ctx context.Context, req entityRequest) error
	// prepare fills in global keys before the fan-out (network: ipv4.address=auto).
	prepare func(s *Service, global map[string]string) error
	// beforeDelete refuses a delete (pool: volumes left).
	beforeDelete func(s *Service, ctx context.Context, e *entityRow) error
}

// entityRequest is the body of the internal create/delete calls: everything the member
// needs, so it reads nothing from the database.
type entityRequest struct {
	Name   string            `json:"name"`
	Type   string            `json:"type"`
	Config map[string]string `json:"config"`
}

// memberPart is one member's row of an entity.
type memberPart struct {
	state, message string
	config         map[string]string
}

// entityRow is a pool or network with its global keys and its members' parts.
type entityRow struct {
	id                     int64
	name, typ, description string
	state, message         string
	global                 map[string]string
	members                map[string]*memberPart
	order                  []string // member names in member id order
}

// memberConfig is the config member m sees: global keys plus its node-specific keys.
func (e *entityRow) memberConfig(m string) map[string]string {
	cfg := maps.Clone(e.global)
	if p := e.members[m]; p != nil {
		maps.Copy(cfg, p.config)
	}
	return cfg
}

func (e *entityRow) request(m string) entityRequest {
	return entityRequest{Name: e.name, Type: e.typ, Config: e.memberConfig(m)}
}

// loadEntity reads one pool or network; nil when there is none.
func (s *Service) loadEntity(ctx context.Context, k *entityKind, name string) (*entityRow, error) {
	rows, err := s.db.Query(ctx, `SELECT id, name, `+k.typeCol+`, description, state, message FROM `+k.table+` WHERE name = ?`, name)
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	r := rows[0]
	e := &entityRow{id: db.I64(r[0]), name: db.Str(r[1]), typ: db.Str(r[2]), description: db.Str(r[3]), state: db.Str(r[4]), message: db.Str(r[5]),
		global: map[string]string{}, members: map[string]*memberPart{}}
	rows, err = s.db.Query(ctx, `SELECT m.Name, pm.state, pm.message FROM `+k.members+` pm JOIN members m ON m.id = pm.member_id
		WHERE pm.`+k.idCol+` = ? ORDER BY m.id`, e.id)
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		e.members[db.Str(r[0])] = &memberPart{state: db.Str(r[1]), message: db.Str(r[2]), config: map[string]string{}}
		e.order = append(e.order, db.Str(r[0]))
	}
	rows, err = s.db.Query(ctx, `SELECT c.member_id, COALESCE(m.Name, ''), c.key, c.value FROM `+k.config+` c
		LEFT JOIN members m ON m.id = c.member_id WHERE c.`+k.idCol+` = ?`, e.id)
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		if db.I64(r[0]) == 0 {
			e.global[db.Str(r[2])] = db.Str(r[3])
		} else if p := e.members[db.Str(r[1])]; p != nil {
			p.config[db.Str(r[2])] = db.Str(r[3])
		}
	}
	return e, nil
}

// listEntities reads every pool or network.
func (s *Service) listEntities(ctx context.Context, k *entityKind) ([]*entityRow, error) {
	rows, err := s.db.Query(ctx, `SELECT name FROM `+k.table+` ORDER BY name`)
	if err != nil {
		return nil, err
	}
	var out []*entityRow
	for _, r := range rows {
		e, err := s.loadEntity(ctx, k, db.Str(r[0]))
		if err != nil {
			return nil, err
		}
		if e != nil {
			out = append(out, e)
		}
	}
	return out, nil
}

// defineOn records member target's node-specific keys; the entity stays Pending.
func (s *Service) defineOn(ctx context.Context, k *entityKind, name, typ, desc string, cfg map[string]string, target string) error {
	for _, key := range db.SortedKeys(cfg) {
		if !api.IsNodeSpecific(k.entity, key) {
			return rest.BadRequest("%s %q: key %q is not node-specific and cannot be set with --target %s (give it in the final create, without --target)", k.noun, name, key, target)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	members, err := s.members.All(ctx)
	if err != nil {
		return err
	}
	if _, ok := findMember(members, target); !ok {
		return rest.NotFound("no member named %q", target)
	}
	e, err := s.loadEntity(ctx, k, name)
	if err != nil {
		return err
	}
	if e != nil && e.state == api.StatusCreated {
		return rest.Conflict("%s %q is already created on every member", k.noun, name)
	}
	if e != nil && typ != "" && typ != e.typ {
		return rest.BadRequest("%s %q is defined with %s %q, not %q", k.noun, name, k.typeCol, e.typ, typ)
	}
	_, err = s.db.Exec(ctx, defineStatements(k, name, typ, desc, cfg, target)...)
	return err
}

// defineStatements insert the entity (if new) and member's row and replace its keys.
func defineStatements(k *entityKind, name, typ, desc string, cfg map[string]string, member string) []store.Statement {
	id := `(SELECT id FROM ` + k.table + ` WHERE name = ?)`
	mid := `(SELECT id FROM members WHERE name = ?)`
	out := []store.Statement{
		db.Stmt(`INSERT OR IGNORE INTO `+k.table+`(name, `+k.typeCol+`, description, state) VALUES(?, ?, ?, ?)`, name, typ, desc, api.StatusPending),
		db.Stmt(`INSERT OR IGNORE INTO `+k.members+`(`+k.idCol+`, member_id, state) VALUES(`+id+`, `+mid+`, ?)`, name, member, api.StatusPending),
		db.Stmt(`DELETE FROM `+k.config+` WHERE `+k.idCol+` = `+id+` AND member_id = `+mid, name, member),
	}
	for _, key := range db.SortedKeys(cfg) {
		out = append(out, db.Stmt(`INSERT INTO `+k.config+`(`+k.idCol+`, member_id, key, value) VALUES(`+id+`, `+mid+`, ?, ?)`, name, member, key, cfg[key]))
	}
	return out
}

// createEverywhere is the final create: every member makes its part, or none keeps one.
func (s *Service) createEverywhere(ctx context.Context, k *entityKind, name, typ, desc string, cfg map[string]string) (*entityRow, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	members, err := s.members.All(ctx)
	if err != nil {
		return nil, err
	}
	e, err := s.pendingEntity(ctx, k, name, typ, desc, cfg, members)
	if err != nil {
		return nil, err
	}
	if missing := undefinedOn(e, members); len(missing) > 0 {
		return nil, rest.Conflict("%s %q is not defined on member(s) %s: define it there first with --target (nothing was created)", k.noun, name, strings.Join(missing, ", "))
	}
	if err := s.members.RequireOnline(ctx); err != nil {
		s.setEntityMessage(ctx, k, name, err.Error())
		return nil, fmt.Errorf("creating %s %q (nothing was created): %w", k.noun, name, err)
	}
	maps.Copy(e.global, api.GlobalConfig(k.entity, cfg))
	if desc != "" {
		e.description = desc
	}
	if k.prepare != nil {
		if err := k.prepare(s, e.global); err != nil {
			return nil, rest.BadRequest("%s %q: %v", k.noun, name, err)
		}
	}
	if err := s.fanOut(ctx, k, e, members, true); err != nil {
		return nil, err
	}
	if _, err := s.db.Exec(ctx, createdStatements(k, e)...); err != nil {
		return nil, err
	}
	return s.loadEntity(ctx, k, name)
}

// pendingEntity loads the entity for a final create; in a one-member cluster an undefined
// one is defined on the spot (node-specific keys allowed), as LXD does.
func (s *Service) pendingEntity(ctx context.Context, k *entityKind, name, typ, desc string, cfg map[string]string, members []db.Member) (*entityRow, error) {
	e, err := s.loadEntity(ctx, k, name)
	if err != nil {
		return nil, err
	}
	if e != nil && e.state == api.StatusCreated {
		return nil, rest.Conflict("%s %q already exists", k.noun, name)
	}
	if e != nil && typ != "" && typ != e.typ {
		return nil, rest.BadRequest("%s %q is defined with %s %q, not %q", k.noun, name, k.typeCol, e.typ, typ)
	}
	specific := map[string]string{}
	for key, v := range cfg {
		if api.IsNodeSpecific(k.entity, key) {
			specific[key] = v
		}
	}
	if len(members) > 1 && len(specific) > 0 {
		return nil, rest.BadRequest("%s %q: key %q is node-specific: set it on each member with --target", k.noun, name, db.SortedKeys(specific)[0])
	}
	if len(members) == 1 && (e == nil || len(specific) > 0) {
		if typ == "" && e == nil {
			return nil, rest.BadRequest("%s %q: %s is required", k.noun, name, k.typeCol)
		}
		if typ == "" {
			typ = e.typ
		}
		if _, err := s.db.Exec(ctx, defineStatements(k, name, typ, desc, specific, members[0].Name)...); err != nil {
			return nil, err
		}
		return s.loadEntity(ctx, k, name)
	}
	if e == nil {
		return nil, rest.Conflict("%s %q is not defined on any member: define it on each member with --target first", k.noun, name)
	}
	return e, nil
}

func undefinedOn(e *entityRow, members []db.Member) []string {
	var missing []string
	for _, m := range members {
		if e.members[m.Name] == nil {
			missing = append(missing, m.Name)
		}
	}
	return missing
}

// fanOut asks each member to create (or delete) its part, in parallel. When a create
// fails anywhere, the members that succeeded delete theirs again and the entity is
// marked Errored with the reasons.
func (s *Service) fanOut(ctx context.Context, k *entityKind, e *entityRow, members []db.Member, create bool) error {
	errs := make([]error, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.onMember(ctx, k, m, e.request(m.Name), create)
		}()
	}
	wg.Wait()
	var failed []string
	for i, err := range errs {
		if err != nil {
			failed = append(failed, fmt.Sprintf("member %s: %v", members[i].Name, err))
		}
	}
	if len(failed) == 0 {
		return nil
	}
	msg := strings.Join(failed, "; ")
	if create {
		for i, m := range members {
			if errs[i] == nil {
				if err := s.onMember(context.WithoutCancel(ctx), k, m, e.request(m.Name), false); err != nil {
					msg += fmt.Sprintf("; rolling back member %s: %v", m.Name, err)
				}
			}
		}
		_, _ = s.db.Exec(context.WithoutCancel(ctx), db.Stmt(`UPDATE `+k.table+` SET state = ?, message = ? WHERE id = ?`, api.StatusErrored, msg, e.id))
		return api.Errorf(http.StatusInternalServerError, "creating %s %q failed (rolled back on the other members): %s", k.noun, e.name, msg)
	}
	return api.Errorf(http.StatusInternalServerError, "deleting %s %q: %s", k.noun, e.name, msg)
}

// onMember runs the create or delete on member m: here, or over the internal API.
func (s *Service) onMember(ctx context.Context, k *entityKind, m db.Member, req entityRequest, create bool) error {
	op, path := k.delete, k.internal+"/delete"
	if create {
		op, path = k.create, k.internal+"/create"
	}
	if m.Name == s.members.Self() {
		return op(s, ctx, req)
	}
	return s.peers.Post(ctx, m.Address, path, req, nil)
}

// createdStatements record a successful create.
func createdStatements(k *entityKind, e *entityRow) []store.Statement {
	out := []store.Statement{
		db.Stmt(`DELETE FROM `+k.config+` WHERE `+k.idCol+` = ? AND member_id = 0`, e.id),
		db.Stmt(`UPDATE `+k.table+` SET state = ?, message = '', description = ? WHERE id = ?`, api.StatusCreated, e.description, e.id),
		db.Stmt(`UPDATE `+k.members+` SET state = ?, message = '' WHERE `+k.idCol+` = ?`, api.StatusCreated, e.id),
	}
	for _, key := range db.SortedKeys(e.global) {
		out = append(out, db.Stmt(`INSERT INTO `+k.config+`(`+k.idCol+`, member_id, key, value) VALUES(?, 0, ?, ?)`, e.id, key, e.global[key]))
	}
	return out
}

func (s *Service) setEntityMessage(ctx context.Context, k *entityKind, name, msg string) {
	_, _ = s.db.Exec(context.WithoutCancel(ctx), db.Stmt(`UPDATE `+k.table+` SET message = ? WHERE name = ?`, msg, name))
}

// deleteEverywhere removes every member's part, then the entity.
func (s *Service) deleteEverywhere(ctx context.Context, k *entityKind, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.loadEntity(ctx, k, name)
	if err != nil {
		return err
	}
	if e == nil {
		return rest.NotFound("no %s named %q", k.noun, name)
	}
	if k.beforeDelete != nil {
		if err := k.beforeDelete(s, ctx, e); err != nil {
			return err
		}
	}
	members, err := s.members.All(ctx)
	if err != nil {
		return err
	}
	var holders []db.Member
	for _, m := range members {
		if p := e.members[m.Name]; p != nil && p.state == api.StatusCreated {
			holders = append(holders, m)
		}
	}
	names := make([]string, len(holders))
	for i, m := range holders {
		names[i] = m.Name
	}
	if len(names) > 0 {
		if err := s.members.RequireOnline(ctx, names...); err != nil {
			return fmt.Errorf("deleting %s %q (nothing was deleted): %w", k.noun, name, err)
		}
	}
	if err := s.fanOut(ctx, k, e, holders, false); err != nil {
		return err
	}
	_, err = s.db.Exec(ctx, db.Stmt(`DELETE FROM `+k.table+` WHERE id = ?`, e.id))
	return err
}

// info builds the API view; with target, that member's keys and status.
func (e *entityRow) info(target string) (status string, cfg map[string]string, locations []string, err error) {
	status, cfg, locations = e.state, e.global, e.order
	if locations == nil {
		locations = []string{}
	}
	if target != "" {
		p := e.members[target]
		if p == nil {
			return "", nil, nil, rest.NotFound("%q is not defined on member %q", e.name, target)
		}
		status, cfg = p.state, e.memberConfig(target)
	}
	if cfg == nil {
		cfg = map[string]string{} // never null: LXD's clients set keys into it
	}
	return status, cfg, locations, nil
}

// postInternalEntity is a member's side of the fan-out.
func (s *Service) postInternalEntity(k *entityKind, create bool) rest.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var req entityRequest
		if err := rest.DecodeBody(r, &req); err != nil {
			return err
		}
		op := k.delete
		if create {
			op = k.create
		}
		if err := op(s, r.Context(), req); err != nil {
			// fanOut, the only caller, names this member ("member m2: ..."), as it does
			// for its own part: naming it here too said "member m2: m2: ...".
			return api.Errorf(http.StatusInternalServerError, "%v", err)
		}
		return rest.WriteOK(w, nil, "")
	}
}
