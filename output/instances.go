package output

import (
	"fmt"
	"sort"
	"strings"

	"orch/nodeagent/api"
)

// InstanceTable is `list`: NAME, STATE, IPV4, IPV6, NODE (the owning member), as LXD shows it.
func InstanceTable(is []api.Instance) ([]string, [][]string) {
	rows := make([][]string, 0, len(is))
	for _, in := range is {
		state := strings.ToUpper(in.Status)
		rows = append(rows, []string{in.Name, state, strings.Join(in.IPv4, "\n"), strings.Join(in.IPv6, "\n"), in.Location})
	}
	return []string{"NAME", "STATE", "IPV4", "IPV6", "NODE"}, rows
}

// ImageTable is `image list`: ALIAS, FINGERPRINT (12 digits), DESCRIPTION, SIZE, MEMBERS.
func ImageTable(imgs []api.Image) ([]string, [][]string) {
	rows := make([][]string, 0, len(imgs))
	for _, img := range imgs {
		fp := img.Fingerprint
		if len(fp) > 12 {
			fp = fp[:12]
		}
		rows = append(rows, []string{strings.Join(img.AliasNames(), "\n"), fp, img.Properties["description"],
			fmt.Sprintf("%.2fMiB", float64(img.Size)/(1<<20)), strings.Join(img.Members, "\n")})
	}
	return []string{"ALIAS", "FINGERPRINT", "DESCRIPTION", "SIZE", "MEMBERS"}, rows
}

// ProfileTable is `profile list`: NAME, DESCRIPTION, DEVICES.
func ProfileTable(ps []api.Profile) ([]string, [][]string) {
	rows := make([][]string, 0, len(ps))
	for _, p := range ps {
		devs := make([]string, 0, len(p.Devices))
		for d := range p.Devices {
			devs = append(devs, d)
		}
		rows = append(rows, []string{p.Name, p.Description, strings.Join(sorted(devs), ",")})
	}
	return []string{"NAME", "DESCRIPTION", "DEVICES"}, rows
}

func sorted(s []string) []string {
	sort.Strings(s)
	return s
}
