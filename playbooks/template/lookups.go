package template

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	gexec "github.com/nikolalohinski/gonja/v2/exec"
)

// Lookups behind Ansible's with_X loops (and lookup()/query()): dict,
// nested/cartesian, together, subelements, indexed_items, flattened,
// sequence, fileglob, lines, inventory_hostnames, random_choice.
type lookupFunc func(ctx *gexec.Context, terms []any, kw map[string]any) ([]any, error)

var moreLookups = map[string]lookupFunc{
	"dict":                lookupDict,
	"nested":              lookupNested,
	"cartesian":           lookupNested,
	"together":            lookupTogether,
	"subelements":         lookupSubelements,
	"indexed_items":       lookupIndexed,
	"flattened":           lookupFlattened,
	"sequence":            lookupSequence,
	"fileglob":            lookupFileglob,
	"lines":               lookupLines,
	"inventory_hostnames": lookupInventoryHostnames,
	"random_choice":       lookupRandomChoice,
	"varnames":            lookupVarnames,
}

// lookupVarnames lists the variable names matching each regular expression.
func lookupVarnames(ctx *gexec.Context, terms []any, _ map[string]any) ([]any, error) {
	names := sortedMapKeys(contextVars(ctx))
	out := []any{}
	for _, t := range terms {
		re, err := regexp.Compile(String(t))
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			if re.MatchString(n) && !slices.Contains(out, any(n)) {
				out = append(out, n)
			}
		}
	}
	return out, nil
}

func lookupNames() []string {
	out := make([]string, 0, len(moreLookups))
	for k := range moreLookups {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Query runs a lookup plugin with Go values (the engine's with_X loops).
// kw["_subdir"] says where first_found looks (files, templates, vars).
func (e *Engine) Query(plugin string, terms []any, kw, vars map[string]any) (out []any, err error) {
	defer guard("lookup "+plugin, &err)
	ev := e.evaluator(vars)
	return e.runLookup(ev, plugin, terms, kw)
}

func firstFound(ctx *gexec.Context, terms []any, kw map[string]any) ([]any, error) {
	sub, _ := kw["_subdir"].(string)
	if sub == "" {
		sub = "files"
	}
	var cands []string
	add := func(files, paths []any) {
		for _, f := range files {
			if len(paths) == 0 {
				cands = append(cands, String(f))
			}
			for _, p := range paths {
				cands = append(cands, filepath.Join(String(p), String(f)))
			}
		}
	}
	for _, t := range terms {
		if m, ok := t.(map[string]any); ok {
			files, _ := listOf(m["files"])
			paths, _ := listOf(m["paths"])
			add(files, paths)
			continue
		}
		add([]any{t}, nil)
	}
	for _, c := range cands {
		if path := lookupPath(ctx, c, sub); fileExists(path) {
			return []any{path}, nil
		}
	}
	if skip, _ := kw["skip"].(bool); skip {
		return []any{}, nil
	}
	return nil, fmt.Errorf("no file found among %v", cands)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// listOf splits a list, or a comma/space separated string, into items.
func listOf(v any) ([]any, bool) {
	switch x := v.(type) {
	case []any:
		return x, true
	case string:
		var out []any
		for _, s := range strings.FieldsFunc(x, func(r rune) bool { return r == ',' || r == ';' }) {
			out = append(out, strings.TrimSpace(s))
		}
		return out, true
	case nil:
		return nil, false
	}
	return []any{v}, true
}

func lookupDict(_ *gexec.Context, terms []any, _ map[string]any) ([]any, error) {
	var out []any
	for _, t := range terms {
		m, ok := t.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("with_dict expects a dict, got %T", t)
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			out = append(out, map[string]any{"key": k, "value": m[k]})
		}
	}
	return out, nil
}

func lookupNested(_ *gexec.Context, terms []any, _ map[string]any) ([]any, error) {
	out := []any{[]any{}}
	for _, t := range terms {
		l, _ := listOf(t)
		var next []any
		for _, prefix := range out {
			for _, e := range l {
				next = append(next, append(slices.Clone(prefix.([]any)), e))
			}
		}
		out = next
	}
	return out, nil
}

func lookupTogether(_ *gexec.Context, terms []any, _ map[string]any) ([]any, error) {
	n := 0
	lists := make([][]any, len(terms))
	for i, t := range terms {
		lists[i], _ = listOf(t)
		n = max(n, len(lists[i]))
	}
	out := make([]any, n)
	for i := range out {
		row := make([]any, len(lists))
		for j, l := range lists {
			if i < len(l) {
				row[j] = l[i]
			}
		}
		out[i] = row
	}
	return out, nil
}

func lookupSubelements(_ *gexec.Context, terms []any, kw map[string]any) ([]any, error) {
	if len(terms) < 2 {
		return nil, fmt.Errorf("subelements needs a list and a key")
	}
	items, _ := listOf(terms[0])
	if m, ok := terms[0].(map[string]any); ok {
		items = nil
		for _, k := range sortedMapKeys(m) {
			items = append(items, m[k])
		}
	}
	key := String(terms[1])
	skip := len(terms) > 2 && strings.Contains(String(terms[2]), "skip_missing") || Truthy(kw["skip_missing"])
	var out []any
	for _, it := range items {
		m, _ := it.(map[string]any)
		var sub any = m
		for _, part := range strings.Split(key, ".") {
			sm, _ := sub.(map[string]any)
			if sub = sm[part]; sub == nil {
				break
			}
		}
		if sub == nil {
			if skip {
				continue
			}
			return nil, fmt.Errorf("subelements: %q missing in %v", key, it)
		}
		l, _ := listOf(sub)
		for _, e := range l {
			out = append(out, []any{it, e})
		}
	}
	return out, nil
}

func sortedMapKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func lookupIndexed(_ *gexec.Context, terms []any, _ map[string]any) ([]any, error) {
	out := make([]any, len(terms))
	for i, t := range terms {
		out[i] = []any{i, t}
	}
	return out, nil
}

func lookupFlattened(_ *gexec.Context, terms []any, _ map[string]any) ([]any, error) {
	var out []any
	var walk func(v any)
	walk = func(v any) {
		if l, ok := v.([]any); ok {
			for _, e := range l {
				walk(e)
			}
			return
		}
		out = append(out, v)
	}
	walk(terms)
	return out, nil
}

// lookupSequence: "start=1 end=5 stride=1 format=x%d", "1-5", or count=N.
func lookupSequence(_ *gexec.Context, terms []any, kw map[string]any) ([]any, error) {
	var out []any
	for _, t := range terms {
		args := map[string]string{}
		for k, v := range kw {
			args[k] = String(v)
		}
		for _, f := range strings.Fields(String(t)) {
			if k, v, ok := strings.Cut(f, "="); ok {
				args[k] = v
			} else if a, b, ok := strings.Cut(f, "-"); ok {
				args["start"], args["end"] = a, b
			} else {
				args["end"] = f
			}
		}
		num := func(k string, def int) (int, error) {
			if s, ok := args[k]; ok {
				n, err := strconv.ParseInt(s, 0, 64)
				return int(n), err
			}
			return def, nil
		}
		start, err1 := num("start", 1)
		stride, err2 := num("stride", 1)
		end, err3 := num("end", start)
		if c, ok := args["count"]; ok {
			n, err := strconv.Atoi(c)
			if err != nil {
				return nil, err
			}
			end = start + (n-1)*stride
		}
		if err := firstErr(err1, err2, err3); err != nil || stride == 0 {
			return nil, fmt.Errorf("sequence %q: bad numbers", String(t))
		}
		format := args["format"]
		if format == "" {
			format = "%d"
		}
		for i := start; stride > 0 && i <= end || stride < 0 && i >= end; i += stride {
			out = append(out, fmt.Sprintf(format, i))
		}
	}
	return out, nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func lookupFileglob(ctx *gexec.Context, terms []any, _ map[string]any) ([]any, error) {
	out := []any{}
	for _, t := range terms {
		pattern := String(t)
		if !filepath.IsAbs(pattern) {
			// the directory part is looked up as a file would be (files/ first)
			pattern = filepath.Join(lookupPath(ctx, filepath.Dir(pattern), "files"), filepath.Base(pattern))
		}
		matches, err := filepath.Glob(pattern)
		if err != nil {
			return nil, err
		}
		for _, m := range matches {
			if st, err := os.Stat(m); err == nil && !st.IsDir() {
				out = append(out, m)
			}
		}
	}
	return out, nil
}

func lookupLines(_ *gexec.Context, terms []any, _ map[string]any) ([]any, error) {
	var out []any
	for _, t := range terms {
		res, err := runPipe(String(t))
		if err != nil {
			return nil, err
		}
		for _, l := range strings.Split(strings.TrimRight(res, "\n"), "\n") {
			out = append(out, l)
		}
	}
	return out, nil
}

func lookupInventoryHostnames(ctx *gexec.Context, terms []any, _ map[string]any) ([]any, error) {
	g, _ := ctx.Get("groups")
	groups, _ := g.(map[string]any)
	var out []any
	for _, t := range terms {
		for _, part := range strings.FieldsFunc(String(t), func(r rune) bool { return r == ':' || r == ',' }) {
			exclude := strings.HasPrefix(part, "!")
			part = strings.TrimPrefix(part, "!")
			names, _ := groups[part].([]any)
			if names == nil {
				if all, _ := groups["all"].([]any); slices.Contains(all, any(part)) {
					names = []any{part}
				}
			}
			for _, n := range names {
				if exclude {
					out = slices.DeleteFunc(out, func(x any) bool { return x == n })
				} else if !slices.Contains(out, n) {
					out = append(out, n)
				}
			}
		}
	}
	return out, nil
}

func lookupRandomChoice(_ *gexec.Context, terms []any, _ map[string]any) ([]any, error) {
	if len(terms) == 0 {
		return []any{}, nil
	}
	return []any{terms[rand.IntN(len(terms))]}, nil
}
