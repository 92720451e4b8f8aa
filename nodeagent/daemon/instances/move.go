package instances

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"

	"orch/modules/lxc"
	"orch/modules/storage"
	"orch/nodeagent/api"
	"orch/nodeagent/daemon/rest"
	"orch/nodeagent/store"
)

// Moving a stopped instance to another member (`lxc move c1 --target node3`, LXD's POST
// /1.0/instances/NAME?target= with migration): the target makes a root disk on the pool
// the instance's profiles name, fills it with the source's rootfs streamed as tar between
// the members, and defines the container with the instance's settings; then the record
// names the target in one raft write (only if the source still owns it), and the source
// deletes its copy. Until that write the source's copy is the instance and a failure
// removes the target's; after it the target's is, and a source that cannot delete its
// copy leaves only disk space behind (logged). Running instances are refused: there is no
// live migration here.

// instancePost is LXD's InstancePost.
type instancePost struct {
	Name      string `json:"name"`
	Migration bool   `json:"migration"`
	// Live is what lxc sends for every move; a running instance is refused (checkMove), a
	// stopped one moves cold as LXD's.
	Live bool `json:"live"`
	// InstanceOnly and ContainerOnly change nothing: an instance with snapshots does not
	// move (checkMove).
	InstanceOnly      bool   `json:"instance_only"`
	ContainerOnly     bool   `json:"container_only"`
	AllowInconsistent bool   `json:"allow_inconsistent"`
	Pool              string `json:"pool"`
	Project           string `json:"project"`
	// Target is a migration to another server (not supported: the cluster's ?target= is).
	Target json.RawMessage `json:"target"`
}

// moveRequest is the target's part of a move.
type moveRequest struct {
	Name string `json:"name"`
	// Source is the instance whose files are pulled (a copy's; Name for a move).
	Source   string                       `json:"source,omitempty"`
	Profiles []string                     `json:"profiles"`
	Config   map[string]string            `json:"config"`
	Devices  map[string]map[string]string `json:"devices"`
	// From is the source member's cluster address.
	From string `json:"from"`
	// Start starts the container once made (a copy asked started).
	Start bool `json:"start,omitempty"`
}

// postInstanceMove is POST /1.0/instances/{name}: a move to ?target=.
func (s *Service) postInstanceMove(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	name, err := rest.PathName(r)
	if err != nil {
		return err
	}
	// The body is kept: a rename is forwarded to the owner with it.
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return rest.BadRequest("request body: %v", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var req instancePost
	if err := rest.DecodeBody(r, &req); err != nil {
		return err
	}
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	target := rest.Target(r)
	if req.Name != "" && req.Name != name && target == "" && !req.Migration {
		return s.onOwner(func(w http.ResponseWriter, r *http.Request, row instanceRow) error {
			return s.renameInstance(w, r, row, req.Name)
		})(w, r)
	}
	switch {
	case req.Name != "" && req.Name != name:
		return rest.BadRequest("name %q: a move does not rename (move, then rename)", req.Name)
	case target == "" && req.Migration:
		// lxc copies a running instance through a live migration source.
		return rest.Conflict("instance %q: a live copy or migration is not supported: stop it first", name)
	case target == "":
		return rest.BadRequest("no ?target= member to move instance %q to", name)
	case req.Pool != "":
		return rest.BadRequest("pool %q: the root disk moves to the pool its profiles name", req.Pool)
	case req.Project != "" && req.Project != "default":
		return rest.BadRequest("project %q: there is only the default project", req.Project)
	case len(req.Target) > 0 && string(req.Target) != "null":
		return rest.BadRequest("target: moving to another server is not supported (move within the cluster with ?target=MEMBER)")
	}
	row, err := s.instance(ctx, name)
	if err != nil {
		return err
	}
	if err := s.checkMove(ctx, row, target); err != nil {
		return err
	}
	op, err := s.ops.Start(r, rest.Task{Description: "Moving instance", Resources: resources(name),
		Run: func(ctx context.Context, _ rest.Op) error { return s.move(ctx, row, target) }})
	if err != nil {
		return err
	}
	return rest.WriteAsync(w, op)
}

// checkMove refuses a move that cannot be done, naming why: the instance is not made yet
// or runs, the target is its member, OFFLINE or evacuated.
func (s *Service) checkMove(ctx context.Context, row instanceRow, target string) error {
	switch {
	case row.state != instCreated:
		return rest.Conflict("instance %q is still being created", row.name)
	case target == row.member:
		return rest.BadRequest("instance %q is already on member %s", row.name, target)
	}
	if _, err := s.memberAddress(ctx, target); err != nil {
		return err
	}
	// The target must be able to take a launch: ONLINE, not evacuated.
	if _, err := s.launchCandidates(ctx, target); err != nil {
		return err
	}
	if err := s.members.RequireOnline(ctx, row.member); err != nil {
		return err
	}
	if snaps, err := s.snapshotsOf(ctx, row.name); err != nil {
		return err
	} else if len(snaps) > 0 {
		return rest.Conflict("instance %q has %d snapshots, which do not move: delete them first", row.name, len(snaps))
	}
	return s.refuseRunning(ctx, row, "stop it first (there is no live migration)")
}

// refuseRunning is a conflict naming the instance's status and what to do (how) unless
// its member reports it stopped.
func (s *Service) refuseRunning(ctx context.Context, row instanceRow, how string) error {
	if views, _ := s.instanceViews(ctx, []instanceRow{row}); len(views) == 1 && views[0].Status != api.InstanceStopped {
		return rest.Conflict("instance %q is %s: %s", row.name, strings.ToLower(views[0].Status), how)
	}
	return nil
}

// move has the target copy the instance, records the target as its member, and has the
// source delete its copy.
func (s *Service) move(ctx context.Context, row instanceRow, target string) error {
	taddr, err := s.memberAddress(ctx, target)
	if err != nil {
		return err
	}
	req := moveRequest{Name: row.name, Profiles: profileList(row.profiles), Config: userConfig(row.config), Devices: row.devices, From: row.address}
	if err := s.postTo(ctx, taddr, "/internal/instances/"+row.name+"/receive", req); err != nil {
		return fmt.Errorf("copying %s to %s: %w", row.name, target, err)
	}
	_, err = s.db.Exec(ctx, store.Statement{SQL: `UPDATE instances SET member_id = (SELECT id FROM members WHERE name = ?)
		WHERE name = ? AND member_id = (SELECT id FROM members WHERE name = ?)`, Args: []any{target, row.name, row.member}, Expect: store.Int64(1)})
	if err != nil {
		if derr := s.postTo(context.WithoutCancel(ctx), taddr, "/internal/instances/"+row.name+"/drop", nil); derr != nil {
			s.log.Warn("removing a failed move's copy", "instance", row.name, "member", target, "err", derr)
		}
		if rest.IsConflict(err) {
			return rest.Conflict("instance %q changed member or was deleted during the move", row.name)
		}
		return err
	}
	if err := s.postTo(ctx, row.address, "/internal/instances/"+row.name+"/drop", nil); err != nil {
		s.log.Warn("the source of a move kept its copy", "instance", row.name, "member", row.member, "err", err)
	}
	s.log.Info("instance moved", "instance", row.name, "from", row.member, "to", target)
	s.events.Lifecycle("instance-updated", source(row.name), map[string]any{"location": target})
	return nil
}

// postTo posts body to path on the member at addr, over the cluster API.
func (s *Service) postTo(ctx context.Context, addr, path string, body any) error {
	c, err := s.peers.Client(addr)
	if err != nil {
		return err
	}
	return c.CallHeaders(ctx, http.MethodPost, path, body, nil, nil)
}

// postReceive is the target's part of a move (or the owner's of a copy): a root disk
// filled from the source, the container defined (started if asked). On a failure nothing
// is left here.
func (s *Service) postReceive(w http.ResponseWriter, r *http.Request) (err error) {
	ctx := r.Context()
	var req moveRequest
	if err := rest.DecodeBody(r, &req); err != nil {
		return err
	}
	m, _, err := s.drivers()
	if err != nil {
		return err
	}
	if m.Exists(req.Name) {
		return rest.Conflict("member %s already has a container %q", s.members.Self(), req.Name)
	}
	cc, err := s.prepare(ctx, req.Name, req.Profiles, req.Config, req.Devices)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			s.dropCopy(context.WithoutCancel(ctx), m, req.Name)
		}
	}()
	src := req.Source
	if src == "" {
		src = req.Name
	}
	if err := s.pullRootfs(ctx, req.From, src, cc.Rootfs); err != nil {
		return err
	}
	if err := m.Create(ctx, req.Name, cc); err != nil {
		return driverError(err)
	}
	if req.Start {
		if err := m.Start(ctx, req.Name); err != nil {
			return driverError(err)
		}
		if err := s.recordPower(ctx, req.Name, powerRunning); err != nil {
			return err
		}
	}
	return rest.WriteOK(w, nil, "")
}

// pullRootfs streams the source's rootfs of name into dir (tar, owners and modes kept).
func (s *Service) pullRootfs(ctx context.Context, from, name, dir string) error {
	c, err := s.peers.Client(from)
	if err != nil {
		return err
	}
	resp, err := c.Raw(ctx, http.MethodGet, "/internal/instances/"+name+"/rootfs", nil, nil)
	if err != nil {
		return fmt.Errorf("fetching the rootfs of %s from %s: %w", name, from, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("fetching the rootfs of %s from %s: HTTP %d %s", name, from, resp.StatusCode, b)
	}
	untar := exec.CommandContext(ctx, "tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf", "-", "-C", dir)
	untar.Stdin = resp.Body
	if out, err := untar.CombinedOutput(); err != nil {
		return fmt.Errorf("unpacking the rootfs of %s: %w: %s", name, err, tailOf(out))
	}
	return nil
}

// getRootfs is the source's part: its stopped container's rootfs as a tar stream.
func (s *Service) getRootfs(w http.ResponseWriter, r *http.Request) error {
	name, err := rest.PathName(r)
	if err != nil {
		return err
	}
	m, _, err := s.drivers()
	if err != nil {
		return err
	}
	if in, err := m.Info(r.Context(), name); err != nil {
		return driverError(err)
	} else if in.State != lxc.StateStopped {
		return rest.Conflict("instance %q is running on member %s", name, s.members.Self())
	}
	dir, err := m.Rootfs(name)
	if err != nil {
		return driverError(err)
	}
	w.Header().Set("Content-Type", "application/x-tar")
	tar := exec.CommandContext(r.Context(), "tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-cpf", "-", "-C", dir, ".")
	tar.Stdout = w
	var errb strings.Builder
	tar.Stderr = &errb
	if err := tar.Run(); err != nil {
		// The status is sent: the receiver's tar sees a cut stream and fails.
		s.log.Warn("streaming a rootfs", "instance", name, "err", err, "stderr", errb.String())
	}
	return nil
}

// postDrop deletes this member's copy of an instance that another member owns (a move's
// source after it, or its target after a failure); the owner's own copy is refused.
func (s *Service) postDrop(w http.ResponseWriter, r *http.Request) error {
	name, err := rest.PathName(r)
	if err != nil {
		return err
	}
	if row, err := s.instance(r.Context(), name); err == nil && row.member == s.members.Self() {
		return rest.Conflict("instance %q belongs to this member (%s): not dropping it", name, row.member)
	}
	m, _, err := s.drivers()
	if err != nil {
		return err
	}
	s.dropCopy(r.Context(), m, name)
	return rest.WriteOK(w, nil, "")
}

// dropCopy removes this member's container and root disk of name, logging failures.
func (s *Service) dropCopy(ctx context.Context, m *lxc.Manager, name string) {
	if m.Exists(name) {
		if err := m.Delete(ctx, name, true); err != nil {
			s.log.Warn("removing a copy of an instance", "instance", name, "err", err)
		}
	}
	if err := s.dropRootfs(ctx, name); err != nil {
		s.log.Warn("removing a copy's root disk", "instance", name, "err", err)
	}
}

// tailOf is the last 512 bytes of a tool's output.
func tailOf(b []byte) string {
	if len(b) > 512 {
		b = b[len(b)-512:]
	}
	return strings.TrimSpace(string(b))
}

// A copy within the cluster (`lxc copy c1 c2 [--target node3]`, LXD's create with a source
// of type copy) is placed like a launch and made by its owner as a move's target makes
// its copy (the source's files pulled from the source's member), then started unless it
// was asked stopped (lxc copy's default). The source must be stopped unless the copy
// allows an inconsistent one.

// fillCopy checks a copy's source and fills what the request leaves out from it: the
// image, profiles, config (no volatile keys) and devices.
func (s *Service) fillCopy(ctx context.Context, req *api.InstancesPost) error {
	src, err := s.instance(ctx, req.CopyFrom)
	if err != nil {
		return err
	}
	if src.state != instCreated {
		return rest.Conflict("instance %q is still being created", src.name)
	}
	if !req.AllowInconsistent {
		if err := s.refuseRunning(ctx, src, "stop it first to copy it (or allow an inconsistent copy)"); err != nil {
			return err
		}
	}
	req.Source = src.image
	if len(req.Profiles) == 0 {
		req.Profiles = profileList(src.profiles)
	}
	if req.Config == nil {
		req.Config = src.config
	}
	req.Config = userConfig(req.Config)
	delete(req.Config, keyEvacuated)
	if req.Devices == nil {
		req.Devices = src.devices
	}
	return nil
}

// copyOn has owner make the copy: here, or through its internal API.
func (s *Service) copyOn(ctx context.Context, owner string, req api.InstancesPost) error {
	src, err := s.instance(ctx, req.CopyFrom)
	if err != nil {
		return err
	}
	row, err := s.instance(ctx, req.Name)
	if err != nil {
		return err
	}
	mr := moveRequest{Name: req.Name, Source: src.name, Profiles: req.Profiles, Config: req.Config, Devices: req.Devices,
		From: src.address, Start: !req.NoStart}
	if err := s.postTo(ctx, row.address, "/internal/instances/"+req.Name+"/receive", mr); err != nil {
		return err
	}
	if err := s.setInstance(ctx, req.Name, instCreated, src.image); err != nil {
		return err
	}
	s.events.Lifecycle("instance-created", source(req.Name), map[string]any{"location": owner})
	return nil
}

// renameInstance renames a stopped instance on its owner (`lxc rename c1 c2`, `lxc move
// c1 c2`): its root disk (with its snapshots) through the pool's driver, its container,
// then its records in one raft write; a failed write puts the files back.
func (s *Service) renameInstance(w http.ResponseWriter, r *http.Request, row instanceRow, name string) error {
	ctx := r.Context()
	if err := lxc.ValidName(name); err != nil {
		return rest.BadRequest("%v", err)
	}
	if _, err := s.instance(ctx, name); err == nil {
		return rest.Conflict("an instance named %q already exists", name)
	}
	if row.state != instCreated {
		return rest.Conflict("instance %q is still being created", row.name)
	}
	m, _, err := s.drivers()
	if err != nil {
		return err
	}
	if info, err := m.Info(ctx, row.name); err != nil {
		return driverError(err)
	} else if info.State != lxc.StateStopped {
		return rest.Conflict("instance %q is running: stop it first to rename it", row.name)
	}
	renamer, pool, err := s.rootRenamer(ctx, row.name)
	if err != nil {
		return err
	}
	op, err := s.ops.Start(r, rest.Task{Description: "Renaming instance", Resources: resources(row.name),
		Run: func(ctx context.Context, _ rest.Op) error { return s.rename(ctx, m, renamer, pool, row.name, name) }})
	if err != nil {
		return err
	}
	return rest.WriteAsync(w, op)
}

// rename does renameInstance's work.
func (s *Service) rename(ctx context.Context, m *lxc.Manager, renamer storage.Renamer, pool storage.Pool, old, name string) error {
	rootfs := func(n string) string { return filepath.Join(pool.VolumePathOf(storage.VolumeContainer, n), "rootfs") }
	if err := renamer.RenameContainer(ctx, old, name); err != nil {
		return fmt.Errorf("renaming the root disk of %s: %w", old, err)
	}
	undo := context.WithoutCancel(ctx)
	if err := m.Rename(ctx, old, name, rootfs(name)); err != nil {
		return errors.Join(driverError(err), renamer.RenameContainer(undo, name, old))
	}
	_, err := s.db.Exec(ctx,
		store.Statement{SQL: `UPDATE instances SET name = ? WHERE name = ?`, Args: []any{name, old}, Expect: store.Int64(1)},
		store.Statement{SQL: `UPDATE storage_volumes SET name = ? WHERE type = 'container' AND name = ?
			AND member_id = (SELECT id FROM members WHERE name = ?)`, Args: []any{name, old, s.members.Self()}})
	if err != nil {
		err = errors.Join(err, m.Rename(undo, name, old, rootfs(old)), renamer.RenameContainer(undo, name, old))
		if rest.IsUnique(err) {
			return rest.Conflict("an instance named %q already exists", name)
		}
		return err
	}
	s.log.Info("instance renamed", "from", old, "to", name)
	s.events.Lifecycle("instance-renamed", source(name), map[string]any{"old_name": old})
	return nil
}

// rootRenamer is the renaming driver of the pool holding the instance's root disk here,
// with the pool.
func (s *Service) rootRenamer(ctx context.Context, name string) (storage.Renamer, storage.Pool, error) {
	drv, pool, poolName, err := s.rootDriver(ctx, name)
	if err != nil {
		return nil, storage.Pool{}, err
	}
	r, err := storage.RenamerOf(drv)
	if err != nil {
		return nil, storage.Pool{}, rest.BadRequest("storage pool %s of %s: %v", poolName, name, err)
	}
	return r, pool, nil
}
