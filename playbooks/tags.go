package playbooks

import (
	"fmt"
	"slices"
	"strings"
)

// TagsMatch reports whether a task with tags runs under --tags only and
// --skip-tags skip, with Ansible's special tags: always, never, all,
// tagged and untagged. Empty only means "all".
func TagsMatch(tags, only, skip []string) bool {
	if len(only) == 0 {
		only = []string{"all"}
	}
	has := func(l []string, s string) bool { return slices.Contains(l, s) }
	overlap := func(a, b []string) bool { return slices.ContainsFunc(a, func(s string) bool { return has(b, s) }) }
	run := false
	switch {
	case has(tags, "always"):
		run = true
	case has(only, "all") && !has(tags, "never"):
		run = true
	case overlap(tags, only):
		run = true
	case has(only, "tagged") && len(tags) > 0 && !has(tags, "never"):
		run = true
	case has(only, "untagged") && len(tags) == 0:
		run = true
	}
	if !run || len(skip) == 0 {
		return run
	}
	switch {
	case has(skip, "all"):
		return has(tags, "always") && !has(skip, "always")
	case overlap(tags, skip):
		return false
	case has(skip, "tagged") && len(tags) > 0:
		return false
	case has(skip, "untagged") && len(tags) == 0:
		return false
	}
	return true
}

// SimpleSelector resolves patterns without an inventory package: "all" or
// "*", a group, a host, "!x" exclusions and "a:b" / "a,b" unions.
func SimpleSelector(hosts []Host, groups map[string][]string) Selector {
	all := make([]string, len(hosts))
	for i, h := range hosts {
		all[i] = h.Name
	}
	resolve := func(name string) ([]string, bool) {
		if name == "all" || name == "*" {
			return all, true
		}
		if g, ok := groups[name]; ok {
			return g, true
		}
		if slices.Contains(all, name) {
			return []string{name}, true
		}
		return nil, false
	}
	return func(pattern string) ([]string, []string, error) {
		var out, warnings []string
		for _, part := range strings.FieldsFunc(pattern, func(r rune) bool { return r == ':' || r == ',' }) {
			part = strings.TrimSpace(part)
			exclude := strings.HasPrefix(part, "!")
			names, ok := resolve(strings.TrimPrefix(part, "!"))
			if !ok {
				warnings = append(warnings, fmt.Sprintf("could not match supplied host pattern, ignoring: %s", part))
				continue
			}
			if exclude {
				out = slices.DeleteFunc(out, func(n string) bool { return slices.Contains(names, n) })
				continue
			}
			for _, n := range names {
				if !slices.Contains(out, n) {
					out = append(out, n)
				}
			}
		}
		return out, warnings, nil
	}
}
