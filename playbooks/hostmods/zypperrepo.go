package hostmods

import (
	"context"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"

	"orch/playbooks"
)

// zypperRepo is one repository as `zypper --xmlout repos` lists it.
type zypperRepo struct {
	Alias       string `xml:"alias,attr"`
	Name        string `xml:"name,attr"`
	Priority    int    `xml:"priority,attr"`
	Enabled     int    `xml:"enabled,attr"`
	Autorefresh int    `xml:"autorefresh,attr"`
	GPGCheck    int    `xml:"gpgcheck,attr"`
	URL         string `xml:"url"`
}

// zypperRepositoryModule is community.general.zypper_repository: it lists the repositories
// with zypper's XML output, adds a missing one (`zypper addrepo` with its name, priority,
// gpg check, autorefresh and enabled flags), replaces one whose settings differ (remove,
// then add, as the Python module), and removes it for state absent; runrefresh refreshes
// it after a change (with auto_import_keys, importing its signing keys).
func zypperRepositoryModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("zypper_repository", a, "name", "repo", "state", "description", "disable_gpg_check",
		"autorefresh", "refresh", "priority", "overwrite_multiple", "auto_import_keys", "runrefresh", "enabled"); err != nil {
		return playbooks.Result{}, err
	}
	name, _ := a.String("name", "")
	url, _ := a.String("repo", "")
	state, _ := a.String("state", "present")
	if err := choice("state", state, "present", "absent"); err != nil {
		return playbooks.Result{}, err
	}
	if name == "" && url == "" || state == "present" && url == "" {
		return playbooks.Result{}, fmt.Errorf("%w: repo (and name) are required with state present; name or repo with absent", playbooks.ErrArgs)
	}
	if name == "" {
		return playbooks.Result{}, fmt.Errorf("%w \"name\": required (orch does not read .repo files' aliases)", playbooks.ErrArgs)
	}
	noGPG, err := a.Bool("disable_gpg_check", false)
	if err != nil {
		return playbooks.Result{}, err
	}
	refresh := true
	if v := firstSet(a, "autorefresh", "refresh"); v != nil {
		if refresh, err = (playbooks.Args{"autorefresh": v}).Bool("autorefresh", true); err != nil {
			return playbooks.Result{}, err
		}
	}
	enabled, err := a.Bool("enabled", true)
	if err != nil {
		return playbooks.Result{}, err
	}
	priority, err := a.Int("priority", 0)
	if err != nil {
		return playbooks.Result{}, err
	}
	importKeys, _ := a.Bool("auto_import_keys", false)
	runRefresh, _ := a.Bool("runrefresh", false)
	desc, _ := a.String("description", "")

	o, err := run(ctx, t, "command -v zypper >/dev/null 2>&1 || exit 127\nzypper --quiet --xmlout repos 2>/dev/null || true", nil)
	if err != nil {
		return playbooks.Result{}, err
	}
	if o.rc == 127 {
		return playbooks.Result{Failed: true, Msg: "zypper not found on the host: is this a SUSE host?"}, nil
	}
	var list struct {
		Repos []zypperRepo `xml:"repo-list>repo"`
	}
	if s := strings.TrimSpace(o.stdout); s != "" {
		if err := xml.Unmarshal([]byte(s), &list); err != nil {
			return playbooks.Result{Failed: true, Msg: "zypper repos: " + err.Error()}, nil
		}
	}
	var cur *zypperRepo
	for i := range list.Repos {
		if list.Repos[i].Alias == name || (url != "" && strings.TrimRight(list.Repos[i].URL, "/") == strings.TrimRight(url, "/")) {
			cur = &list.Repos[i]
		}
	}
	zy := "zypper --quiet --non-interactive"
	var cmds []string
	if state == "absent" {
		if cur != nil {
			cmds = append(cmds, zy+" removerepo "+q(cur.Alias))
		}
	} else {
		want := zypperRepo{Alias: name, URL: url, Enabled: b2i(enabled), Autorefresh: b2i(refresh), GPGCheck: b2i(!noGPG), Priority: priority}
		if want.Priority == 0 {
			want.Priority = 99
		}
		if cur == nil || cur.Alias != name || strings.TrimRight(cur.URL, "/") != strings.TrimRight(url, "/") || cur.Enabled != want.Enabled ||
			cur.Autorefresh != want.Autorefresh || cur.GPGCheck != want.GPGCheck || cur.Priority != want.Priority || (desc != "" && cur.Name != desc) {
			if cur != nil {
				cmds = append(cmds, zy+" removerepo "+q(cur.Alias))
			}
			add := zy + " addrepo --no-check"
			if desc != "" {
				add += " --name " + q(desc)
			}
			if priority != 0 {
				add += " --priority " + strconv.Itoa(priority)
			}
			if noGPG {
				add += " --no-gpgcheck"
			} else {
				add += " --gpgcheck"
			}
			if refresh {
				add += " --refresh"
			}
			if !enabled {
				add += " --disable"
			}
			cmds = append(cmds, add+" "+q(url)+" "+q(name))
			if runRefresh {
				r := zy
				if importKeys {
					r += " --gpg-auto-import-keys"
				}
				cmds = append(cmds, r+" refresh --force "+q(name))
			}
		}
	}
	res := playbooks.Result{Data: map[string]any{"repo": url, "name": name}}
	if len(cmds) == 0 {
		return res, nil
	}
	return res, t.Change(strings.Join(cmds, "; "), func() error {
		_, err := runOK(ctx, t, "zypper repository "+name, "set -e\n"+strings.Join(cmds, "\n")+"\n", nil)
		return err
	})
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
