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
	"partition", "removeprefix", "removesuffix", "rfind", "rjust", "rpartition", "rsplit", "rstrip",
	"split", "splitlines", "startswith", "strip", "swapcase", "title", "upper", "zfill"}

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
