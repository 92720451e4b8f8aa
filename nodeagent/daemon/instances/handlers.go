package instances

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"orch/modules/lxc"
	"orch/nodeagent/api"
	"orch/nodeagent/daemon/rest"
)

// peerCallTimeout bounds a member's answer about its instances when listing.
const peerCallTimeout = 5 * time.Second

// postInstance is POST /1.0/instances[?target=MEMBER]: place the instance, record it, and
// have its member create (and start) it.
func (s *Service) postInstance(w http.ResponseWriter, r *http.Request) error {
	var req api.InstancesPost
	if err := rest.DecodeBody(r, &req); err != nil {
		return err
	}
	if err := lxc.ValidName(req.Name); err != nil {
		return rest.BadRequest("%v", err)
	}
	if req.CopyFrom != "" {
		if err := s.fillCopy(r.Context(), &req); err != nil {
			return err
		}
	}
	if req.Source == "" {
		return rest.BadRequest("no image given (source)")
	}
	if len(req.Profiles) == 0 {
		req.Profiles = []string{"default"}
	}
	ctx := r.Context()
	if err := validInstanceConfig(req.Config); err != nil {
		return err
	}
	if err := checkDevices(req.Devices); err != nil {
		return err
	}
	if _, err := s.expand(ctx, req.Profiles, req.Config, req.Devices); err != nil {
		return err
	}
	candidates, err := s.launchCandidates(ctx, r.URL.Query().Get("target"))
	if err != nil {
		return err
	}
	owner, err := s.placeInstance(ctx, req, candidates)
	if err != nil {
		return err
	}
	s.log.Info("instance placed", "instance", req.Name, "member", owner)
	op, err := s.ops.Start(r, rest.Task{Description: "Creating instance", Resources: resources(req.Name),
		Run: func(ctx context.Context, _ rest.Op) error { return s.launch(ctx, owner, req) }})
	if err != nil {
		return err
	}
	return rest.WriteAsync(w, op)
}

// launch has owner create the instance, and drops its record when that fails.
func (s *Service) launch(ctx context.Context, owner string, req api.InstancesPost) error {
	if err := s.createOn(ctx, owner, req); err != nil {
		if derr := s.dropInstance(context.WithoutCancel(ctx), req.Name); derr != nil {
			s.log.Warn("dropping the failed instance's record", "instance", req.Name, "err", derr)
		}
		return fmt.Errorf("launching %s on %s: %w", req.Name, owner, err)
	}
	return nil
}

// resources are an operation's resources for the instance name.
func resources(name string) map[string][]string {
	return map[string][]string{"instances": {"/1.0/instances/" + name}}
}

// source is an instance's URL, a lifecycle event's source.
func source(name string) string { return "/1.0/instances/" + name }

// launchCandidates lists the members a launch may go to: the target (which must be an
// ONLINE member), the ONLINE members of a cluster group (target @GROUP), or every ONLINE
// member; never an evacuated one.
func (s *Service) launchCandidates(ctx context.Context, target string) ([]string, error) {
	evacuated, err := s.evacuatedMembers(ctx)
	if err != nil {
		return nil, err
	}
	if group, ok := strings.CutPrefix(target, "@"); ok {
		return s.groupCandidates(ctx, group, evacuated)
	}
	if target != "" {
		if err := s.members.RequireOnline(ctx, target); err != nil {
			return nil, err
		}
		if evacuated[target] {
			return nil, rest.Conflict("member %s is evacuated (lxc cluster restore %s first)", target, target)
		}
		return []string{target}, nil
	}
	ms, err := s.members.Online(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, m := range ms {
		if !evacuated[m.Name] {
			names = append(names, m.Name)
		}
	}
	if len(names) == 0 {
		return nil, rest.Unavailable("no member is online and not evacuated")
	}
	return names, nil
}

// groupCandidates are the ONLINE members of a cluster group not evacuated, refused naming
// the group when it does not exist or none of its members is such.
func (s *Service) groupCandidates(ctx context.Context, group string, evacuated map[string]bool) ([]string, error) {
	if s.group == nil {
		return nil, rest.BadRequest("target @%s: cluster groups are not available", group)
	}
	members, ok, err := s.group(ctx, group)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, rest.NotFound("target @%s: no cluster group named %q", group, group)
	}
	online, err := s.members.Online(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range online {
		if slices.Contains(members, m.Name) && !evacuated[m.Name] {
			out = append(out, m.Name)
		}
	}
	if len(out) == 0 {
		return nil, rest.Conflict("target @%s: no member of cluster group %s is online and not evacuated (members: %s)", group, group, strings.Join(members, ", "))
	}
	return out, nil
}

// createOn has owner create the instance: here, or through its internal API.
func (s *Service) createOn(ctx context.Context, owner string, req api.InstancesPost) error {
	if req.CopyFrom != "" {
		return s.copyOn(ctx, owner, req)
	}
	if owner == s.members.Self() {
		return s.createLocal(ctx, req)
	}
	row, err := s.instance(ctx, req.Name)
	if err != nil {
		return err
	}
	return s.postTo(ctx, row.address, "/internal/instances", req)
}

// postInternalInstance is the owner's part of a launch.
func (s *Service) postInternalInstance(w http.ResponseWriter, r *http.Request) error {
	var req api.InstancesPost
	if err := rest.DecodeBody(r, &req); err != nil {
		return err
	}
	if err := s.createLocal(r.Context(), req); err != nil {
		return err
	}
	return rest.WriteOK(w, nil, "")
}

// prepare makes what a container of this member needs before it is defined: the
// profiles, config and devices expanded and resolved here, and its root disk (made last:
// the caller removes it, with dropCopy, if a later step fails).
func (s *Service) prepare(ctx context.Context, name string, profiles []string, config map[string]string, devices map[string]map[string]string) (lxc.CreateConfig, error) {
	ex, err := s.expand(ctx, profiles, config, devices)
	if err != nil {
		return lxc.CreateConfig{}, err
	}
	bridge, err := s.eth0Bridge(ctx, ex.launchSpec)
	if err != nil {
		return lxc.CreateConfig{}, err
	}
	settings, err := s.settingsHere(ctx, ex)
	if err != nil {
		return lxc.CreateConfig{}, err
	}
	dir, err := s.makeRootfs(ctx, ex.pool, name)
	if err != nil {
		return lxc.CreateConfig{}, err
	}
	return lxc.CreateConfig{Rootfs: dir, Bridge: bridge, HWAddr: ex.hwaddr, Settings: settings}, nil
}

// createLocal makes the container on this member: image (fetched if needed), rootfs on the
// profile's pool, eth0 on its bridge; then starts it and marks the record CREATED.
func (s *Service) createLocal(ctx context.Context, req api.InstancesPost) (err error) {
	m, images, err := s.drivers()
	if err != nil {
		return err
	}
	fp, err := s.images.Ensure(ctx, req.Source)
	if err != nil {
		return err
	}
	cc, err := s.prepare(ctx, req.Name, req.Profiles, req.Config, req.Devices)
	if err != nil {
		return err
	}
	dir := cc.Rootfs
	defer func() {
		if err != nil {
			s.dropCopy(context.WithoutCancel(ctx), m, req.Name)
		}
	}()
	if err := images.Unpack(ctx, fp, dir); err != nil {
		return err
	}
	if err := m.Create(ctx, req.Name, cc); err != nil {
		return driverError(err)
	}
	if !req.NoStart {
		if err := m.Start(ctx, req.Name); err != nil {
			return driverError(err)
		}
		if err := s.recordPower(ctx, req.Name, powerRunning); err != nil {
			return err
		}
	}
	s.log.Info("instance created", "instance", req.Name, "image", fp[:12], "rootfs", dir)
	if err := s.setInstance(ctx, req.Name, instCreated, fp); err != nil {
		return err
	}
	s.events.Lifecycle("instance-created", source(req.Name), map[string]any{"location": s.members.Self()})
	if !req.NoStart {
		s.events.Lifecycle("instance-started", source(req.Name), nil)
	}
	return nil
}

// writeInstance answers with the instance as its owner sees it.
func (s *Service) writeInstance(w http.ResponseWriter, r *http.Request, name string) error {
	rows, err := s.instances(r.Context(), name)
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return rest.NotFound("no instance named %q", name)
	}
	live, usage := s.instanceViews(r.Context(), rows)
	views, err := s.withLXDFields(r.Context(), live)
	if err != nil {
		return err
	}
	if strings.HasSuffix(r.URL.Path, "/state") {
		return rest.WriteOK(w, stateOf(views[0], usage[name]), "")
	}
	etag := rest.ETag(instanceWritable(views[0]))
	if level, err := rest.Recursion(r); err != nil || level > rest.RecursionURLs {
		f := full(views[0], usage[name])
		if f.Snapshots, err = s.snapshotViews(r.Context(), name); err != nil {
			return err
		}
		if len(f.Snapshots) == 0 {
			f.Snapshots = nil
		}
		return rest.WriteOK(w, f, etag) // LXD's instance_get_full (an error: ignored, as LXD)
	}
	return rest.WriteOK(w, views[0], etag)
}

// getInstances is GET /1.0/instances: every instance, with state from its owner.
func (s *Service) getInstances(w http.ResponseWriter, r *http.Request) error {
	rows, err := s.instances(r.Context(), "")
	if err != nil {
		return err
	}
	live, usage := s.instanceViews(r.Context(), rows)
	views, err := s.withLXDFields(r.Context(), live)
	if err != nil {
		return err
	}
	prefix, _, _ := strings.Cut(r.URL.Path, "?")
	return s.writeInstances(w, r, strings.TrimSuffix(prefix, "/"), views, usage)
}

// getInstance is GET /1.0/instances/{name}.
func (s *Service) getInstance(w http.ResponseWriter, r *http.Request) error {
	name, err := rest.PathName(r)
	if err != nil {
		return err
	}
	return s.writeInstance(w, r, name)
}

// ownerInstance is an instance as its owner reports it to other members: its live view
// and, running, what the owner measured of it (the usage part of its LXD state).
type ownerInstance struct {
	api.Instance
	Usage *api.InstanceState `json:"usage,omitempty"`
}

// instanceViews joins the records with the live state each owner reports; instances of
// OFFLINE or silent members show Unknown with the reason. usage has what owners measured
// of their running instances, by name.
func (s *Service) instanceViews(ctx context.Context, rows []instanceRow) (views []api.Instance, usage map[string]*api.InstanceState) {
	byMember := map[string][]instanceRow{}
	for _, row := range rows {
		byMember[row.member] = append(byMember[row.member], row)
	}
	online := map[string]bool{}
	if ms, err := s.members.Online(ctx); err == nil {
		for _, m := range ms {
			online[m.Name] = true
		}
	}
	live := map[string]ownerInstance{}
	problems := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for member, mrows := range byMember {
		if !online[member] {
			problems[member] = "member " + member + " is offline"
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := s.memberInstances(ctx, member, mrows[0].address)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				problems[member] = fmt.Sprintf("member %s did not answer: %v", member, err)
			}
			for _, in := range got {
				live[in.Name] = in
			}
		}()
	}
	wg.Wait()
	views = make([]api.Instance, 0, len(rows))
	usage = map[string]*api.InstanceState{}
	for _, row := range rows {
		v := viewOf(row, live, problems)
		if in, ok := live[row.name]; ok && in.Usage != nil && v.Status == api.InstanceRunning {
			usage[row.name] = in.Usage
		}
		views = append(views, v)
	}
	return views, usage
}

// viewOf merges a record with its live state.
func viewOf(row instanceRow, live map[string]ownerInstance, problems map[string]string) api.Instance {
	v := api.Instance{Name: row.name, Location: row.member, Image: row.image, CreatedAt: row.createdAt,
		Profiles: profileList(row.profiles), Config: row.config, Devices: row.devices}
	switch in, ok := live[row.name]; {
	case row.state == instCreating:
		v.Status = api.InstanceCreating
	case problems[row.member] != "":
		v.Status, v.Message = api.InstanceUnknown, problems[row.member]
	case !ok:
		v.Status, v.Message = api.InstanceError, "the container is missing on member "+row.member
	default:
		v.Status, v.PID, v.IPv4, v.IPv6, v.Architecture = in.Status, in.PID, in.IPv4, in.IPv6, in.Architecture
	}
	return v
}

// memberInstances asks a member (maybe this one) for the live state of its containers.
func (s *Service) memberInstances(ctx context.Context, member, addr string) ([]ownerInstance, error) {
	if member == s.members.Self() {
		return s.localInstances(ctx)
	}
	ctx, cancel := context.WithTimeout(ctx, peerCallTimeout)
	defer cancel()
	c, err := s.peers.Client(addr)
	if err != nil {
		return nil, err
	}
	var out []ownerInstance
	err = c.CallHeaders(ctx, http.MethodGet, "/internal/instances", nil, &out, nil)
	return out, err
}

// getInternalInstances answers another member with this member's containers.
func (s *Service) getInternalInstances(w http.ResponseWriter, r *http.Request) error {
	out, err := s.localInstances(r.Context())
	if err != nil {
		return err
	}
	return rest.WriteOK(w, out, "")
}

// localInstances is the live state of this member's containers, the running ones measured.
func (s *Service) localInstances(ctx context.Context) ([]ownerInstance, error) {
	m, _, err := s.drivers()
	if err != nil {
		return nil, err
	}
	infos, err := m.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]ownerInstance, 0, len(infos))
	for _, in := range infos {
		v := api.Instance{Name: in.Name, Location: s.members.Self(), Status: statusOf(in.State),
			PID: in.PID, IPv4: in.IPv4, IPv6: in.IPv6, Architecture: machine()}
		out = append(out, ownerInstance{Instance: v, Usage: s.measure(v)})
	}
	return out, nil
}

// measure is what this member measures of its running instance v (nil when stopped or
// not measured); what cannot be read is logged and left zero.
func (s *Service) measure(v api.Instance) *api.InstanceState {
	if s.usage == nil || v.Status != api.InstanceRunning || v.PID <= 0 {
		return nil
	}
	st := &api.InstanceState{}
	if err := s.usage.Usage(v.PID, st); err != nil {
		s.log.Debug("measuring an instance", "instance", v.Name, "err", err)
	}
	return st
}

// statusOf names an LXC state as LXD does.
func statusOf(s lxc.State) string {
	switch s {
	case lxc.StateRunning:
		return api.InstanceRunning
	case lxc.StateStopped:
		return api.InstanceStopped
	}
	return strings.ToUpper(string(s[:1])) + strings.ToLower(string(s[1:]))
}

// stateActions are the actions of PUT /1.0/instances/NAME/state: the operation's
// description and the lifecycle event of each.
var stateActions = map[string]struct{ desc, event string }{
	"start":    {"Starting instance", "instance-started"},
	"stop":     {"Stopping instance", "instance-stopped"},
	"restart":  {"Restarting instance", "instance-restarted"},
	"freeze":   {"Freezing instance", "instance-paused"},
	"unfreeze": {"Unfreezing instance", "instance-resumed"},
}

// putInstanceState starts, stops, restarts, freezes or unfreezes the instance (on its
// owner), in an operation.
func (s *Service) putInstanceState(w http.ResponseWriter, r *http.Request, row instanceRow) error {
	var put api.InstanceStatePut
	if err := rest.DecodeBody(r, &put); err != nil {
		return err
	}
	act, ok := stateActions[put.Action]
	if !ok {
		return rest.BadRequest("action %q: start, stop, restart, freeze or unfreeze", put.Action)
	}
	if put.Stateful {
		return rest.BadRequest("stateful %s is not supported (LXC containers here have no checkpoints)", put.Action)
	}
	m, _, err := s.drivers()
	if err != nil {
		return err
	}
	op, err := s.ops.Start(r, rest.Task{Description: act.desc, Resources: resources(row.name),
		Run: func(ctx context.Context, _ rest.Op) error {
			if err := s.changeState(ctx, m, row, put); err != nil {
				return err
			}
			s.events.Lifecycle(act.event, source(row.name), nil)
			return nil
		}})
	if err != nil {
		return err
	}
	return rest.WriteAsync(w, op)
}

// changeState runs a state action on this member's container and records the power state.
// A start first gives the container what its profiles and config say now.
func (s *Service) changeState(ctx context.Context, m *lxc.Manager, row instanceRow, put api.InstanceStatePut) error {
	name := row.name
	var err error
	if put.Action == "start" {
		if err := s.refreshSettings(ctx, m, row); err != nil {
			return err
		}
	}
	switch put.Action {
	case "start":
		err = m.Start(ctx, name)
	case "stop":
		err = m.Stop(ctx, name, put.Force)
	case "restart":
		err = m.Restart(ctx, name, put.Force)
	case "freeze":
		err = m.Freeze(ctx, name)
	case "unfreeze":
		err = m.Unfreeze(ctx, name)
	}
	if err != nil {
		return driverError(err)
	}
	power := powerRunning
	if put.Action == "stop" {
		power = powerStopped
	}
	return s.recordPower(ctx, name, power)
}

// deleteInstance removes the container, its rootfs and its record (on its owner), in an
// operation; what would refuse it (running without force, being created) is answered at once.
func (s *Service) deleteInstance(w http.ResponseWriter, r *http.Request, row instanceRow) error {
	force := r.URL.Query().Get("force") == "1" || r.URL.Query().Get("force") == "true"
	m, _, err := s.drivers()
	if err != nil {
		return err
	}
	if m.Exists(row.name) && !force {
		if info, err := m.Info(r.Context(), row.name); err == nil && info.State != lxc.StateStopped {
			return driverError(fmt.Errorf("%s: %w: stop it first or pass --force", row.name, lxc.ErrRunning))
		}
	} else if !m.Exists(row.name) && row.state == instCreating && !force {
		return rest.Conflict("instance %q is being created", row.name)
	}
	op, err := s.ops.Start(r, rest.Task{Description: "Deleting instance", Resources: resources(row.name),
		Run: func(ctx context.Context, _ rest.Op) error { return s.removeInstance(ctx, m, row, force) }})
	if err != nil {
		return err
	}
	return rest.WriteAsync(w, op)
}

// removeInstance deletes this member's container, its rootfs and its record.
func (s *Service) removeInstance(ctx context.Context, m *lxc.Manager, row instanceRow, force bool) error {
	if m.Exists(row.name) {
		if err := m.Delete(ctx, row.name, force); err != nil {
			return driverError(err)
		}
	}
	if snapper, err := s.snapshotter(ctx, row.name); err == nil {
		if err := snapper.DeleteSnapshot(ctx, row.name, ""); err != nil {
			return fmt.Errorf("snapshots of %s: %w", row.name, err)
		}
	}
	if err := s.dropRootfs(ctx, row.name); err != nil {
		return err
	}
	if err := s.dropInstance(ctx, row.name); err != nil {
		return err
	}
	s.log.Info("instance deleted", "instance", row.name)
	s.events.Lifecycle("instance-deleted", source(row.name), nil)
	return nil
}

// errBadCommand is returned for an exec without a command.
var errBadCommand = errors.New("exec: no command given")
