package template

import (
	"fmt"
	"strings"

	"github.com/nikolalohinski/gonja/v2/builtins"
	"github.com/nikolalohinski/gonja/v2/exec"
)

var strMethodNames = []string{"capitalize", "capwords", "casefold", "center", "count", "encode", "endswith",
	"expandtabs", "find", "format", "format_map", "isalnum", "isalpha", "isascii", "isdecimal", "isdigit",
	"islower", "isnumeric", "isprintable", "isspace", "istitle", "isupper", "join", "ljust", "lower", "lstrip",
	"partition", "removeprefix", "removesuffix", "rfind", "rjust", "rpartition", "rstrip",
	"splitlines", "startswith", "strip", "swapcase", "title", "upper", "zfill"}

var listMethodNames = []string{"append", "reverse", "copy"}

// methods returns gonja's Python methods with fixes: str.replace's count is
// optional (gonja requires it), str.index, list.index and list.count exist.
func methods() exec.Methods {
	m := builtins.Methods
	strs := map[string]exec.Method[string]{}
	for _, n := range strMethodNames {
		if f, ok := m.Str.Get(n); ok {
			strs[n] = f
		}
	}
	strs["replace"] = func(self string, _ *exec.Value, a *exec.VarArgs) (any, error) {
		if len(a.Args) < 2 {
			return nil, exec.ErrInvalidCall(fmt.Errorf("replace needs old and new"))
		}
		n := -1
		if len(a.Args) > 2 {
			n = a.Args[2].Integer()
		}
		return strings.Replace(self, a.Args[0].String(), a.Args[1].String(), n), nil
	}
	strs["split"] = func(self string, _ *exec.Value, a *exec.VarArgs) (any, error) {
		return pySplit(self, a, false), nil
	}
	strs["rsplit"] = func(self string, _ *exec.Value, a *exec.VarArgs) (any, error) {
		return pySplit(self, a, true), nil
	}
	for _, name := range []string{"startswith", "endswith"} {
		suffix := name == "endswith"
		strs[name] = func(self string, _ *exec.Value, a *exec.VarArgs) (any, error) {
			cands, ok := goValue(a.First()).([]any)
			if !ok {
				cands = []any{goValue(a.First())}
			}
			for _, c := range cands {
				if suffix && strings.HasSuffix(self, String(c)) || !suffix && strings.HasPrefix(self, String(c)) {
					return true, nil
				}
			}
			return false, nil
		}
	}
	strs["find"] = func(self string, _ *exec.Value, a *exec.VarArgs) (any, error) {
		return pyFind(self, a, false), nil
	}
	strs["rfind"] = func(self string, _ *exec.Value, a *exec.VarArgs) (any, error) {
		return pyFind(self, a, true), nil
	}
	strs["index"] = func(self string, _ *exec.Value, a *exec.VarArgs) (any, error) {
		i := strings.Index(self, a.First().String())
		if i < 0 {
			return nil, fmt.Errorf("substring %q not found", a.First().String())
		}
		return i, nil
	}
	lists := map[string]exec.Method[[]any]{}
	for _, n := range listMethodNames {
		if f, ok := m.List.Get(n); ok {
			lists[n] = f
		}
	}
	lists["index"] = func(self []any, _ *exec.Value, a *exec.VarArgs) (any, error) {
		want := goValue(a.First())
		for i, v := range self {
			if equal(plain(v), want) {
				return i, nil
			}
		}
		return nil, fmt.Errorf("%s is not in list", String(want))
	}
	lists["count"] = func(self []any, _ *exec.Value, a *exec.VarArgs) (any, error) {
		want := goValue(a.First())
		n := 0
		for _, v := range self {
			if equal(plain(v), want) {
				n++
			}
		}
		return n, nil
	}
	m.Str = exec.NewMethodSet(strs)
	m.List = exec.NewMethodSet(lists)
	return m
}

// pySplit is Python's str.split/rsplit: no separator (or None) splits on
// runs of whitespace; maxsplit bounds the number of splits.
func pySplit(s string, a *exec.VarArgs, fromRight bool) []any {
	sep, hasSep := "", false
	maxSplit := -1
	if len(a.Args) > 0 && !a.Args[0].IsNil() {
		sep, hasSep = a.Args[0].String(), true
	} else if v, ok := a.KwArgs["sep"]; ok && !v.IsNil() {
		sep, hasSep = v.String(), true
	}
	if len(a.Args) > 1 {
		maxSplit = a.Args[1].Integer()
	} else if v, ok := a.KwArgs["maxsplit"]; ok {
		maxSplit = v.Integer()
	}
	var parts []string
	switch {
	case !hasSep:
		parts = strings.Fields(s)
		if maxSplit >= 0 && len(parts) > maxSplit+1 {
			// re-split keeping the remainder intact
			rest := strings.TrimLeft(s, " \t\n\r\v\f")
			parts = parts[:0]
			for i := 0; i < maxSplit; i++ {
				j := strings.IndexAny(rest, " \t\n\r\v\f")
				parts = append(parts, rest[:j])
				rest = strings.TrimLeft(rest[j:], " \t\n\r\v\f")
			}
			parts = append(parts, rest)
		}
	case fromRight && maxSplit >= 0:
		all := strings.Split(s, sep)
		if len(all) > maxSplit+1 {
			head := strings.Join(all[:len(all)-maxSplit], sep)
			all = append([]string{head}, all[len(all)-maxSplit:]...)
		}
		parts = all
	default:
		parts = strings.SplitN(s, sep, maxSplit+1)
		if maxSplit < 0 {
			parts = strings.Split(s, sep)
		}
	}
	out := make([]any, len(parts))
	for i, p := range parts {
		out[i] = p
	}
	return out
}

// pyFind is Python's str.find/rfind(sub[, start[, end]]): the index in code
// points, -1 when absent (gonja's gives 0 on an empty string).
func pyFind(self string, a *exec.VarArgs, last bool) int {
	rs := []rune(self)
	start, end := 0, len(rs)
	clamp := func(i int) int {
		if i < 0 {
			i += len(rs)
		}
		return min(max(i, 0), len(rs))
	}
	if len(a.Args) > 1 && !a.Args[1].IsNil() {
		start = clamp(a.Args[1].Integer())
	}
	if len(a.Args) > 2 && !a.Args[2].IsNil() {
		end = clamp(a.Args[2].Integer())
	}
	if len(a.Args) == 0 || start > end {
		return -1
	}
	sub, hay := a.First().String(), string(rs[start:end])
	i := strings.Index(hay, sub)
	if last {
		i = strings.LastIndex(hay, sub)
	}
	if i < 0 {
		return -1
	}
	return start + len([]rune(hay[:i]))
}
