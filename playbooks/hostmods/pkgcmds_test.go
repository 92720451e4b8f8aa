package hostmods

import (
	"strings"
	"testing"

	"orch/playbooks"
)

// No FreeBSD, OpenBSD or SUSE host is reachable here: these check the commands pkgng,
// openbsd_pkg and zypper build against their Ansible modules' (what a real run executes).
func TestOtherPackageManagerCommands(t *testing.T) {
	spec := func(tool *pkgTool, a playbooks.Args) pkgSpec {
		return pkgSpec{tool: tool, bin: tool.bin, a: a, state: "present"}
	}
	cases := []struct{ got, want string }{
		{pkgngTool.install(spec(pkgngTool, playbooks.Args{}), []string{"openjdk17", "bash"}), "'pkg' install -y 'openjdk17' 'bash'"},
		{pkgngTool.install(spec(pkgngTool, playbooks.Args{"cached": true, "jail": "www"}), []string{"nginx"}), "'pkg' --jail 'www' install -y --no-repo-update 'nginx'"},
		{pkgngTool.remove(spec(pkgngTool, playbooks.Args{"autoremove": true}), []string{"nginx"}), "'pkg' delete -y 'nginx' && 'pkg' autoremove -y"},
		{openbsdPkgTool.install(spec(openbsdPkgTool, playbooks.Args{}), []string{"nginx"}), "pkg_add -I nginx"},
		{openbsdPkgTool.remove(spec(openbsdPkgTool, playbooks.Args{"clean": true}), []string{"nginx"}), "pkg_delete -I -c nginx"},
		{zypperTool.install(spec(zypperTool, playbooks.Args{}), []string{"docker"}), "'zypper' --non-interactive install --auto-agree-with-licenses --no-recommends docker"},
		{zypperTool.remove(spec(zypperTool, playbooks.Args{"clean_deps": true}), []string{"docker"}), "'zypper' --non-interactive remove --clean-deps docker"},
		{zypperTool.refresh(spec(zypperTool, playbooks.Args{"disable_gpg_check": true})), "'zypper' --non-interactive --no-gpg-checks refresh"},
	}
	for _, c := range cases {
		if strings.ReplaceAll(c.got, "'", "") != strings.ReplaceAll(c.want, "'", "") {
			t.Errorf("got  %s\nwant %s", c.got, c.want)
		}
	}
	if p := pkgngTool.probe(spec(pkgngTool, playbooks.Args{})); !strings.Contains(p, "version -q -l '<'") {
		t.Errorf("probe without names lists the outdated packages (upgrade): %q", p)
	}
	s := spec(openbsdPkgTool, playbooks.Args{})
	s.names = []string{"nginx", "rsync-3.2.7"}
	if p := openbsdPkgTool.probe(s); !strings.Contains(p, `pkg_info -e "$n-*"`) {
		t.Errorf("openbsd probe: %s", p)
	}
}
