package template

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
)

// Filters on lists and dictionaries.

func fFirst(p ...any) (any, error) {
	l, err := toList(p[0])
	if err != nil || len(l) == 0 {
		return Undefined{Name: "first"}, err
	}
	return l[0], nil
}

func fLast(p ...any) (any, error) {
	l, err := toList(p[0])
	if err != nil || len(l) == 0 {
		return Undefined{Name: "last"}, err
	}
	return l[len(l)-1], nil
}

func fUnique(p ...any) (any, error) {
	l, err := toList(p[0])
	if err != nil {
		return nil, err
	}
	out := []any{}
	for _, v := range l {
		if !containsValue(out, v) {
			out = append(out, v)
		}
	}
	return out, nil
}

func containsValue(l []any, v any) bool {
	return slices.ContainsFunc(l, func(x any) bool { return equal(x, v) })
}

func fSort(p ...any) (any, error) {
	pos, kw := splitArgs(p)
	l, err := toList(pos[0])
	if err != nil {
		return nil, err
	}
	out := slices.Clone(l)
	reverse := toBool(arg(pos, kw, 1, "reverse", false))
	attrName, _ := arg(pos, kw, 3, "attribute", "").(string)
	key := func(v any) any {
		if attrName == "" {
			return v
		}
		x, _, _ := attr(v, attrName)
		return x
	}
	sort.SliceStable(out, func(i, j int) bool {
		if reverse {
			return less(key(out[j]), key(out[i]))
		}
		return less(key(out[i]), key(out[j]))
	})
	return out, nil
}

func fReverse(p ...any) (any, error) {
	if s, ok := p[0].(string); ok {
		r := []rune(s)
		slices.Reverse(r)
		return string(r), nil
	}
	l, err := toList(p[0])
	if err != nil {
		return nil, err
	}
	out := slices.Clone(l)
	slices.Reverse(out)
	return out, nil
}

func toList(v any) ([]any, error) {
	switch x := v.(type) {
	case []any:
		return x, nil
	case nil:
		return nil, nil
	case string:
		out := []any{}
		for _, r := range x {
			out = append(out, string(r))
		}
		return out, nil
	case map[string]any:
		keys := sortedKeys(x)
		out := make([]any, len(keys))
		for i, k := range keys {
			out[i] = k
		}
		return out, nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Slice || rv.Kind() == reflect.Array {
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = rv.Index(i).Interface()
		}
		return out, nil
	}
	return nil, fmt.Errorf("expected a list, got %T", v)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func fFlatten(p ...any) (any, error) {
	pos, kw := splitArgs(p)
	levels := -1
	if v := arg(pos, kw, 1, "levels", nil); v != nil {
		levels, _ = toInt(v)
	}
	l, err := toList(pos[0])
	if err != nil {
		return nil, err
	}
	return flatten(l, levels), nil
}

func flatten(l []any, levels int) []any {
	out := []any{}
	for _, v := range l {
		if inner, ok := v.([]any); ok && levels != 0 {
			out = append(out, flatten(inner, levels-1)...)
			continue
		}
		out = append(out, v)
	}
	return out
}

func fCombine(p ...any) (any, error) {
	pos, kw := splitArgs(p)
	recursive := toBool(kw["recursive"])
	out := map[string]any{}
	for _, d := range pos {
		if l, ok := d.([]any); ok {
			for _, e := range l {
				if err := combineInto(out, e, recursive); err != nil {
					return nil, err
				}
			}
			continue
		}
		if err := combineInto(out, d, recursive); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func combineInto(out map[string]any, d any, recursive bool) error {
	m, ok := d.(map[string]any)
	if !ok {
		return fmt.Errorf("combine expects dictionaries, got %T", d)
	}
	for k, v := range m {
		old, isMap := out[k].(map[string]any)
		nv, newMap := v.(map[string]any)
		if recursive && isMap && newMap {
			merged := map[string]any{}
			_ = combineInto(merged, old, true)
			_ = combineInto(merged, nv, true)
			out[k] = merged
			continue
		}
		out[k] = v
	}
	return nil
}

func fDict2Items(p ...any) (any, error) {
	pos, kw := splitArgs(p)
	m, ok := pos[0].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("dict2items expects a dictionary, got %T", pos[0])
	}
	kn := String(arg(nil, kw, 0, "key_name", "key"))
	vn := String(arg(nil, kw, 0, "value_name", "value"))
	out := make([]any, 0, len(m))
	for _, k := range sortedKeys(m) {
		out = append(out, map[string]any{kn: k, vn: m[k]})
	}
	return out, nil
}

func fItems2Dict(p ...any) (any, error) {
	pos, kw := splitArgs(p)
	l, err := toList(pos[0])
	if err != nil {
		return nil, err
	}
	kn := String(arg(nil, kw, 0, "key_name", "key"))
	vn := String(arg(nil, kw, 0, "value_name", "value"))
	out := map[string]any{}
	for _, e := range l {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("items2dict expects a list of dictionaries, got %T", e)
		}
		out[String(m[kn])] = m[vn]
	}
	return out, nil
}

func fMinMax(sign int) fn {
	return func(p ...any) (any, error) {
		l, err := toList(p[0])
		if err != nil || len(l) == 0 {
			return nil, err
		}
		best := l[0]
		for _, v := range l[1:] {
			if sign < 0 && less(v, best) || sign > 0 && less(best, v) {
				best = v
			}
		}
		return best, nil
	}
}

func fSum(p ...any) (any, error) {
	l, err := toList(p[0])
	if err != nil {
		return nil, err
	}
	total, isFloat := 0.0, false
	for _, v := range l {
		f, ok := number(v)
		if !ok {
			return nil, fmt.Errorf("sum of a non-number %T", v)
		}
		_, isF := v.(float64)
		isFloat = isFloat || isF
		total += f
	}
	if isFloat {
		return total, nil
	}
	return int(total), nil
}

func fMap(p ...any) (any, error) {
	pos, kw := splitArgs(p)
	l, err := toList(pos[0])
	if err != nil {
		return nil, err
	}
	out := make([]any, len(l))
	if a, ok := kw["attribute"]; ok {
		for i, e := range l {
			v, found, _ := attr(e, a)
			if !found {
				v = kw["default"]
				if _, ok := kw["default"]; !ok {
					v = Undefined{Name: String(a)}
				}
			}
			out[i] = v
		}
		return out, nil
	}
	if len(pos) < 2 {
		return nil, fmt.Errorf("map needs a filter name or attribute=")
	}
	f, ok := filterTable[String(pos[1])]
	if !ok {
		return nil, fmt.Errorf("map: unknown filter %q", String(pos[1]))
	}
	for i, e := range l {
		if out[i], err = f(append([]any{e}, pos[2:]...)...); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func selectFn(reject bool) fn {
	return func(p ...any) (any, error) {
		l, err := toList(p[0])
		if err != nil {
			return nil, err
		}
		return filterList(l, p[1:], reject, func(e any) any { return e })
	}
}

func selectAttrFn(reject bool) fn {
	return func(p ...any) (any, error) {
		l, err := toList(p[0])
		if err != nil || len(p) < 2 {
			return nil, fmt.Errorf("selectattr needs an attribute name: %v", err)
		}
		name := p[1]
		return filterList(l, p[2:], reject, func(e any) any {
			v, ok, _ := attr(e, name)
			if !ok {
				return Undefined{Name: String(name)}
			}
			return v
		})
	}
}

func filterList(l, testArgs []any, reject bool, value func(any) any) (any, error) {
	test := func(v any) (bool, error) { return Truthy(v), nil }
	if len(testArgs) > 0 {
		t, ok := testTable[String(testArgs[0])]
		if !ok {
			return nil, fmt.Errorf("unknown test %q", String(testArgs[0]))
		}
		rest := testArgs[1:]
		test = func(v any) (bool, error) {
			r, err := t(append([]any{v}, rest...)...)
			return Truthy(r), err
		}
	}
	out := []any{}
	for _, e := range l {
		ok, err := test(value(e))
		if err != nil {
			return nil, err
		}
		if ok != reject {
			out = append(out, e)
		}
	}
	return out, nil
}

func setOp(keep func(inB bool) bool) fn {
	return func(p ...any) (any, error) {
		a, err := toList(p[0])
		if err != nil || len(p) < 2 {
			return nil, fmt.Errorf("set operation needs two lists: %v", err)
		}
		b, err := toList(p[1])
		if err != nil {
			return nil, err
		}
		out := []any{}
		for _, v := range a {
			if keep(containsValue(b, v)) && !containsValue(out, v) {
				out = append(out, v)
			}
		}
		return out, nil
	}
}

func fUnion(p ...any) (any, error) {
	a, err := toList(p[0])
	if err != nil || len(p) < 2 {
		return nil, fmt.Errorf("union needs two lists: %v", err)
	}
	b, err := toList(p[1])
	if err != nil {
		return nil, err
	}
	return fUnique(append(slices.Clone(a), b...))
}

func fRange(p ...any) (any, error) {
	ints := make([]int, len(p))
	for i, v := range p {
		n, ok := toInt(v)
		if !ok {
			return nil, fmt.Errorf("range expects integers, got %T", v)
		}
		ints[i] = n
	}
	start, stop, step := 0, 0, 1
	switch len(ints) {
	case 1:
		stop = ints[0]
	case 2:
		start, stop = ints[0], ints[1]
	case 3:
		start, stop, step = ints[0], ints[1], ints[2]
	default:
		return nil, fmt.Errorf("range expects 1 to 3 arguments")
	}
	if step == 0 {
		return nil, fmt.Errorf("range step must not be zero")
	}
	out := []any{}
	for i := start; step > 0 && i < stop || step < 0 && i > stop; i += step {
		out = append(out, i)
		if len(out) > 1_000_000 {
			return nil, fmt.Errorf("range too large")
		}
	}
	return out, nil
}

func fZip(p ...any) (any, error) {
	lists := make([][]any, len(p))
	n := -1
	for i, v := range p {
		l, err := toList(v)
		if err != nil {
			return nil, err
		}
		lists[i] = l
		if n < 0 || len(l) < n {
			n = len(l)
		}
	}
	out := make([]any, max(n, 0))
	for i := range out {
		row := make([]any, len(lists))
		for j := range lists {
			row[j] = lists[j][i]
		}
		out[i] = row
	}
	return out, nil
}

func fKeys(p ...any) (any, error) {
	m, ok := p[0].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("keys of a %T", p[0])
	}
	return toList(m)
}

func fValues(p ...any) (any, error) {
	m, ok := p[0].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("values of a %T", p[0])
	}
	out := []any{}
	for _, k := range sortedKeys(m) {
		out = append(out, m[k])
	}
	return out, nil
}
