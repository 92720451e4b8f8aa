package instances

import (
	"context"
	"math/rand/v2"
	"strings"
	"time"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/db"
	"orch/nodeagent/daemon/rest"
	"orch/nodeagent/store"
)

// Instance row states: CREATING from placement until the owner made the container (a
// launch in flight, counted by placement), then CREATED.
const (
	instCreating = "CREATING"
	instCreated  = "CREATED"
)

// instanceRow is one row of the instances table with its member.
type instanceRow struct {
	name, member, address string
	image, profiles       string
	state                 string
	createdAt             time.Time
	config                map[string]string
	// devices are the instance's own devices (not its profiles').
	devices map[string]map[string]string
}

// instanceColumns are the columns scanInstances reads; legacyColumns read a database still
// at schema 1 (no devices column: a member already upgraded, BLOCKED until the last one
// is, reads its own instances at boot).
const (
	instanceColumns = `i.name, m.name, m.address, i.image, i.profiles, i.state, i.created_at, i.config, i.devices`
	legacyColumns   = `i.name, m.name, m.address, i.image, i.profiles, i.state, i.created_at, i.config, '{}'`
)

func scanInstances(rows db.Rows) []instanceRow {
	out := make([]instanceRow, 0, len(rows))
	for _, r := range rows {
		out = append(out, instanceRow{name: db.Str(r[0]), member: db.Str(r[1]), address: db.Str(r[2]),
			image: db.Str(r[3]), profiles: db.Str(r[4]), state: db.Str(r[5]), createdAt: time.UnixMilli(db.I64(r[6])),
			config: configOf(db.Str(r[7])), devices: devicesOf(db.Str(r[8]))})
	}
	return out
}

// instances reads every instance (or the one named), linearizably.
func (s *Service) instances(ctx context.Context, name string) ([]instanceRow, error) {
	q := ` FROM instances i LEFT JOIN members m ON m.id = i.member_id`
	var args []any
	if name != "" {
		q += ` WHERE i.name = ?`
		args = append(args, name)
	}
	q += ` ORDER BY i.name`
	rows, err := s.db.Query(ctx, `SELECT `+instanceColumns+q, args...)
	if err != nil && strings.Contains(err.Error(), "no such column: i.devices") {
		rows, err = s.db.Query(ctx, `SELECT `+legacyColumns+q, args...)
	}
	return scanInstances(rows), err
}

// instance returns the named instance or a 404 naming it.
func (s *Service) instance(ctx context.Context, name string) (instanceRow, error) {
	rows, err := s.instances(ctx, name)
	if err != nil {
		return instanceRow{}, err
	}
	if len(rows) == 0 {
		return instanceRow{}, rest.NotFound("no instance named %q", name)
	}
	return rows[0], nil
}

// placeInstance records a new instance on the candidate member with the fewest instances
// (launches in flight included, since their rows exist from this moment), ties broken by
// a random order the caller's member chose before the entry entered the log. Choosing and
// inserting are one statement of one raft entry, so concurrent launches spread evenly.
// It returns the chosen member.
func (s *Service) placeInstance(ctx context.Context, req api.InstancesPost, candidates []string) (string, error) {
	name, profiles := req.Name, req.Profiles
	order := append([]string(nil), candidates...)
	rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	list := "," + strings.Join(order, ",") + ","
	plist, nprof := profileSet(profiles)
	// The profiles must still exist when the row is written: checked in the same statement,
	// so a profile deleted since the caller read it cannot be left referenced.
	ins := store.Statement{
		SQL: `INSERT INTO instances(name, member_id, image, profiles, state, created_at, config, devices)
		      SELECT ?, m.id, ?, ?, ?, ?, ?, ? FROM members m WHERE instr(?, ',' || m.name || ',') > 0
		        AND (SELECT count(*) FROM profiles p WHERE instr(?, ',' || p.name || ',') > 0) = ?
		      ORDER BY (SELECT count(*) FROM instances i WHERE i.member_id = m.id), instr(?, ',' || m.name || ',')
		      LIMIT 1`,
		Args: []any{name, req.Source, strings.Join(profiles, ","), instCreating, time.Now().UnixMilli(), configJSON(req.Config), devicesJSON(req.Devices),
			list, plist, nprof, list},
		Expect: store.Int64(1),
	}
	if _, err := s.db.Exec(ctx, ins); err != nil {
		if strings.Contains(err.Error(), "UNIQUE") {
			return "", rest.Conflict("an instance named %q already exists", name)
		}
		if rest.IsConflict(err) {
			if _, perr := s.expand(ctx, profiles, nil, nil); perr != nil {
				return "", perr
			}
			return "", rest.Conflict("instance %q: none of the members %s can take it", name, strings.Join(candidates, ", "))
		}
		return "", err
	}
	row, err := s.instance(ctx, name)
	return row.member, err
}

// profileSet is ",a,b," for the distinct names of profiles, and how many there are.
func profileSet(profiles []string) (string, int64) {
	seen := map[string]bool{}
	var uniq []string
	for _, p := range profiles {
		if !seen[p] {
			seen[p] = true
			uniq = append(uniq, p)
		}
	}
	return "," + strings.Join(uniq, ",") + ",", int64(len(uniq))
}

// setInstance updates an instance's state and image after its owner made it.
func (s *Service) setInstance(ctx context.Context, name, state, image string) error {
	_, err := s.db.Exec(ctx, db.Stmt(`UPDATE instances SET state = ?, image = ? WHERE name = ?`, state, image, name))
	return err
}

// dropInstance deletes an instance's row.
func (s *Service) dropInstance(ctx context.Context, name string) error {
	_, err := s.db.Exec(ctx, db.Stmt(`DELETE FROM instances WHERE name = ?`, name))
	return err
}

// ownedInstances names the instances a member owns.
func (s *Service) ownedInstances(ctx context.Context, member string) ([]string, error) {
	rows, err := s.db.Query(ctx, `SELECT i.name FROM instances i JOIN members m ON m.id = i.member_id WHERE m.name = ? ORDER BY i.name`, member)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range rows {
		out = append(out, db.Str(r[0]))
	}
	return out, nil
}

// refuseIfOwnsInstances refuses a clean removal of a member that still owns instances.
func (s *Service) refuseIfOwnsInstances(ctx context.Context, member string) error {
	names, err := s.ownedInstances(ctx, member)
	if err != nil {
		return err
	}
	if len(names) > 0 {
		return rest.Conflict("member %q still owns instances: %s (delete or move them first)", member, strings.Join(names, ", "))
	}
	return nil
}

// forgetMemberInstances are the statements that drop a removed member's instances and
// image copies (a forced removal of a member that is gone).
func forgetMemberInstances(member string) []store.Statement {
	id := `(SELECT id FROM members WHERE name = ?)`
	return []store.Statement{
		db.Stmt(`DELETE FROM instances WHERE member_id = `+id, member),
		db.Stmt(`DELETE FROM images_members WHERE member_id = `+id, member),
	}
}
