package hostmods

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"orch/playbooks"
)

// zfsModule is community.general.zfs: a missing file system, volume (volsize), snapshot
// (name@snap) or clone (origin) is created with its properties (`zfs create -p -o k=v`,
// `zfs snapshot`, `zfs clone`); an existing one gets the properties whose local value
// differs set (`zfs set`); state absent destroys it (`zfs destroy -R`). Properties come from
// extra_zfs_properties or, as the older module took them (ansible-examples' zfs.yml), as
// top-level arguments.
func zfsModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	name, err := a.Required("name")
	if err != nil {
		return playbooks.Result{}, err
	}
	state, err := a.Required("state")
	if err != nil {
		return playbooks.Result{}, err
	}
	if err := choice("state", state, "present", "absent"); err != nil {
		return playbooks.Result{}, err
	}
	origin, _ := a.String("origin", "")
	props, err := zfsProps(a)
	if err != nil {
		return playbooks.Result{}, err
	}
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	probe := "command -v zfs >/dev/null 2>&1 || { echo 'zfs not found on the host (install zfsutils)' >&2; exit 127; }\n" +
		"if zfs list -t all -H -o name " + q(name) + " >/dev/null 2>&1; then echo exists=yes\n"
	if len(keys) > 0 {
		probe += "zfs get -H -p -o property,value,source " + q(strings.Join(keys, ",")) + " " + q(name) + " | sed 's/^/prop=/'\n"
	}
	probe += "else echo exists=no; fi"
	o, err := runOK(ctx, t, "zfs list "+name, probe, nil)
	if err != nil {
		return playbooks.Result{Failed: true, Msg: err.Error()}, nil
	}
	cur := map[string][2]string{} // value, source
	exists := false
	for _, l := range strings.Split(o.stdout, "\n") {
		if l == "exists=yes" {
			exists = true
		}
		if p, ok := strings.CutPrefix(l, "prop="); ok {
			f := strings.Split(p, "\t")
			if len(f) == 3 {
				cur[f[0]] = [2]string{f[1], f[2]}
			}
		}
	}
	res := playbooks.Result{Data: map[string]any{"name": name, "state": state}}
	var cmd string
	switch {
	case state == "absent" && exists:
		cmd = "zfs destroy -R " + q(name)
	case state == "present" && !exists:
		cmd = zfsCreate(name, origin, props, keys)
	case state == "present":
		var sets []string
		for _, k := range keys {
			if k == "volsize" || k == "volblocksize" {
				if c, ok := cur[k]; ok && zfsSameValue(c[0], props[k]) {
					continue
				}
			} else if c, ok := cur[k]; ok && c[1] == "local" && zfsSameValue(c[0], props[k]) {
				continue
			}
			sets = append(sets, "zfs set "+q(k+"="+props[k])+" "+q(name))
		}
		cmd = strings.Join(sets, " && ")
	}
	if cmd == "" {
		return res, nil
	}
	return res, t.Change(cmd, func() error {
		_, err := runOK(ctx, t, "zfs "+name, cmd, nil)
		return err
	})
}

// zfsCreate is the command creating name: a snapshot, a clone, a volume or a file system.
func zfsCreate(name, origin string, props map[string]string, keys []string) string {
	if strings.Contains(name, "@") {
		return "zfs snapshot " + q(name)
	}
	var opts []string
	for _, k := range keys {
		if k == "volsize" {
			continue
		}
		opts = append(opts, "-o", k+"="+props[k])
	}
	if origin != "" {
		c := "zfs clone -p"
		if len(opts) > 0 {
			c += " " + shellJoin(opts)
		}
		return c + " " + q(origin) + " " + q(name)
	}
	c := "zfs create -p"
	if v, ok := props["volsize"]; ok {
		c += " -V " + q(v)
	}
	if len(opts) > 0 {
		c += " " + shellJoin(opts)
	}
	return c + " " + q(name)
}

// zfsProps gathers the properties asked for.
func zfsProps(a playbooks.Args) (map[string]string, error) {
	props := map[string]string{}
	if x := a["extra_zfs_properties"]; x != nil {
		m, ok := x.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%w \"extra_zfs_properties\": expected a mapping, got %T", playbooks.ErrArgs, x)
		}
		for k, v := range m {
			props[k] = zfsValue(v)
		}
	}
	for k, v := range a {
		switch k {
		case "name", "state", "origin", "extra_zfs_properties":
			continue
		}
		if v != nil {
			props[k] = zfsValue(v)
		}
	}
	return props, nil
}

// zfsValue spells a property value as zfs does (booleans are on/off).
func zfsValue(v any) string {
	switch x := v.(type) {
	case bool:
		return map[bool]string{true: "on", false: "off"}[x]
	}
	return fmt.Sprint(v)
}

// zfsSameValue compares a value read with -p (bytes as numbers) with one asked ("10G").
func zfsSameValue(have, want string) bool {
	if strings.EqualFold(have, want) {
		return true
	}
	n, ok := zfsBytes(want)
	return ok && fmt.Sprint(n) == have
}

// zfsBytes parses a zfs size ("10G", "512K", "1.5T") into bytes.
func zfsBytes(s string) (uint64, bool) {
	s = strings.ToUpper(strings.TrimSuffix(strings.TrimSuffix(strings.TrimSpace(s), "B"), "I"))
	mult := uint64(1)
	for i, u := range "KMGTPE" {
		if strings.HasSuffix(s, string(u)) {
			s = strings.TrimSuffix(s, string(u))
			mult = uint64(1) << (10 * (i + 1))
			break
		}
	}
	var f float64
	if _, err := fmt.Sscanf(s, "%g", &f); err != nil || f < 0 {
		return 0, false
	}
	return uint64(f * float64(mult)), true
}
