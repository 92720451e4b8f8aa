package entity

import (
	"errors"
	"io/fs"
	"net/http"

	"golang.org/x/sys/unix"

	"orch/modules/storage"
	"orch/nodeagent/api"
	"orch/nodeagent/daemon/rest"
)

// getPoolResources is GET /1.0/storage-pools/{name}/resources (`lxc storage info NAME
// [--target MEMBER]`): the space and inodes of the pool's filesystem on the member asked.
func (s *Service) getPoolResources(w http.ResponseWriter, r *http.Request) error {
	e, err := s.namedEntity(r, poolKind)
	if err != nil {
		return err
	}
	var res api.ResourcesStoragePool
	local := func() (err error) { res, err = s.localPoolResources(e.name); return err }
	if err := s.onTarget(r, local, "/internal/storage/pools/resources", entityRequest{Name: e.name}, &res); err != nil {
		return err
	}
	return rest.WriteOK(w, res, "")
}

// postInternalPoolResources answers another member with this member's pool resources.
func (s *Service) postInternalPoolResources(w http.ResponseWriter, r *http.Request) error {
	var req entityRequest
	if err := rest.DecodeBody(r, &req); err != nil {
		return err
	}
	res, err := s.localPoolResources(req.Name)
	if err != nil {
		return err
	}
	return rest.WriteOK(w, res, "")
}

// localPoolResources reads the filesystem under pool name's mount point on this member.
func (s *Service) localPoolResources(name string) (api.ResourcesStoragePool, error) {
	mp := storage.Pool{Name: name, AgentDir: s.dir}.MountPoint()
	var st unix.Statfs_t
	if err := unix.Statfs(mp, &st); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return api.ResourcesStoragePool{}, rest.NotFound("storage pool %q is not created on member %s", name, s.members.Self())
		}
		return api.ResourcesStoragePool{}, err
	}
	bs := uint64(st.Bsize)
	return api.ResourcesStoragePool{
		Space:  api.ResourcesUsage{Total: st.Blocks * bs, Used: (st.Blocks - st.Bfree) * bs},
		Inodes: api.ResourcesUsage{Total: st.Files, Used: st.Files - st.Ffree},
	}, nil
}
