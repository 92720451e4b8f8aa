package daemon

import (
	"net/http"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/rest"
	"orch/nodeagent/daemon/serve"
)

// defaultProject is LXD's default project: the only one an orch cluster has. LXD's clients
// ask for it (`lxc remote add`, `lxc project list`) once the server lists the "projects"
// extension; every object lives in it, and every feature is its own (nothing is shared
// with another project, there being none).
func defaultProject() api.Project {
	return api.Project{Name: "default", Description: "Default project", UsedBy: []string{},
		Config: map[string]string{"features.images": "true", "features.profiles": "true",
			"features.storage.volumes": "true", "features.networks": "true"}}
}

// projectRoutes are GET /1.0/projects and /1.0/projects/{name} (read-only: one project).
func (d *Daemon) projectRoutes(m serve.Router) {
	m.Handle("GET /1.0/projects", trusted, d.getProjects)
	m.Handle("GET /1.0/projects/{name}", trusted, d.getProject)
}

func (d *Daemon) getProjects(w http.ResponseWriter, r *http.Request) error {
	return rest.WriteList(w, r, "/1.0/projects", []api.Project{defaultProject()}, func(p api.Project) string { return p.Name })
}

func (d *Daemon) getProject(w http.ResponseWriter, r *http.Request) error {
	p := defaultProject()
	if r.PathValue("name") != p.Name {
		return notFound("no project %q (orch has only the default project)", r.PathValue("name"))
	}
	return writeOK(w, p, rest.ETag([]any{p.Description, p.Config}))
}
