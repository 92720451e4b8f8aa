package playbooks

import (
	"fmt"
	"slices"
	"strings"
)

// unknownModule explains an unknown module name: the closest known names
// ("did you mean"), or that collection modules are not supported.
func unknownModule(name string, reg Registry) error {
	if ns := strings.Count(name, "."); ns >= 2 {
		short := name[strings.LastIndex(name, ".")+1:]
		if _, ok := reg[short]; ok {
			return fmt.Errorf("%w: collection module %s (orch has %q; write it so if it is the same module)", ErrUnknownModule, name, short)
		}
		return fmt.Errorf("%w: %s is a collection's module; orch runs Ansible's built-in modules and its own", ErrUnknownModule, name)
	}
	near := closest(name, reg, 3)
	if len(near) == 0 {
		return fmt.Errorf("%w (or unknown task keyword): %s", ErrUnknownModule, name)
	}
	return fmt.Errorf("%w (or unknown task keyword): %s; did you mean %s?", ErrUnknownModule, name, strings.Join(near, ", "))
}

// closest returns up to n known names nearest to name by edit distance
// (at most a third of the name's length, at least 2), or that contain it.
func closest(name string, reg Registry, n int) []string {
	type cand struct {
		name string
		d    int
	}
	limit := max(2, len(name)/3)
	var cs []cand
	for _, known := range append(sortedKeys(reg), taskKeywordNames...) {
		d := editDistance(name, known)
		if d <= limit || len(name) >= 4 && strings.Contains(known, name) {
			cs = append(cs, cand{known, d})
		}
	}
	slices.SortFunc(cs, func(a, b cand) int {
		if a.d != b.d {
			return a.d - b.d
		}
		return strings.Compare(a.name, b.name)
	})
	var out []string
	for _, c := range cs {
		if !slices.Contains(out, c.name) {
			out = append(out, c.name)
		}
		if len(out) == n {
			break
		}
	}
	return out
}

// taskKeywordNames are the task keywords, suggested for misspelt keys too.
var taskKeywordNames = []string{
	"name", "when", "register", "loop", "with_items", "loop_control", "notify", "tags", "become",
	"become_user", "become_method", "delegate_to", "run_once", "ignore_errors", "changed_when",
	"failed_when", "until", "retries", "delay", "vars", "environment", "no_log", "block", "rescue",
	"always", "args", "action", "local_action", "listen", "throttle", "check_mode", "diff", "async",
	"poll", "module_defaults", "remote_user", "connection",
}

// editDistance is Levenshtein's distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
