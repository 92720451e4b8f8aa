package output

import (
	"sort"
	"strings"

	"orch/nodeagent/api"
)

// StoragePoolTable is `storage list`: NAME, DRIVER, STATE, LOCATIONS, DESCRIPTION.
func StoragePoolTable(ps []api.StoragePoolInfo) ([]string, [][]string) {
	rows := make([][]string, 0, len(ps))
	for _, p := range ps {
		rows = append(rows, []string{p.Name, p.Driver, strings.ToUpper(p.Status), strings.Join(p.Locations, "\n"), p.Description})
	}
	return []string{"NAME", "DRIVER", "STATE", "LOCATIONS", "DESCRIPTION"}, rows
}

// StorageVolumeTable is `storage volume list`: TYPE, NAME, DESCRIPTION, NODE.
func StorageVolumeTable(vs []api.StorageVolume) ([]string, [][]string) {
	rows := make([][]string, 0, len(vs))
	for _, v := range vs {
		rows = append(rows, []string{v.Type, v.Name, v.Description, v.Location})
	}
	return []string{"TYPE", "NAME", "DESCRIPTION", "NODE"}, rows
}

// NetworkTable is `network list`: NAME, TYPE, MANAGED, IPV4, IPV6, STATE, LOCATIONS.
func NetworkTable(ns []api.NetworkInfo) ([]string, [][]string) {
	rows := make([][]string, 0, len(ns))
	for _, n := range ns {
		managed := "NO"
		if n.Managed {
			managed = "YES"
		}
		rows = append(rows, []string{n.Name, n.Type, managed, n.Config["ipv4.address"], n.Config["ipv6.address"],
			strings.ToUpper(n.Status), strings.Join(n.Locations, "\n")})
	}
	return []string{"NAME", "TYPE", "MANAGED", "IPV4", "IPV6", "STATE", "LOCATIONS"}, rows
}

// ConfigLines renders a key=value map as sorted "key: value" lines (show commands).
func ConfigLines(cfg map[string]string) []string {
	keys := make([]string, 0, len(cfg))
	for k := range cfg {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k + ": " + cfg[k]
	}
	return out
}
