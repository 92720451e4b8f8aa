package template

import (
	"fmt"
	"reflect"
	"strconv"
)

// fn is the shape of every function the engine adds to expr.
type fn = func(params ...any) (any, error)

// undefinedError carries the name of a missing variable up to Engine.run.
type undefinedError struct{ name string }

func (u *undefinedError) Error() string { return fmt.Sprintf("undefined variable %q", u.name) }

// kwarg is a Jinja keyword argument (name=value) passed to a filter or test.
type kwarg struct {
	name  string
	value any
}

// internal returns the functions the rewritten expressions call.
func internal() map[string]fn {
	return map[string]fn{
		"__var":     lookupVar(true),
		"__soft":    lookupVar(false),
		"__get":     getAttr,
		"__softget": softGetAttr,
		"__concat":  func(p ...any) (any, error) { return String(p[0]) + String(p[1]), nil },
		"__add":     add,
		"__kw":      func(p ...any) (any, error) { return kwarg{name: p[0].(string), value: p[1]}, nil },
	}
}

func lookupVar(strict bool) fn {
	return func(p ...any) (any, error) {
		env, _ := p[0].(map[string]any)
		name := p[1].(string)
		if v, ok := env[name]; ok {
			if u, undef := v.(Undefined); undef && strict {
				return nil, &undefinedError{name: u.Name}
			}
			return v, nil
		}
		if strict {
			return nil, &undefinedError{name: name}
		}
		return Undefined{Name: name}, nil
	}
}

func getAttr(p ...any) (any, error) {
	v, ok, err := attr(p[0], p[1])
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &undefinedError{name: fmt.Sprintf("%s.%s", p[2], String(p[1]))}
	}
	return v, nil
}

func softGetAttr(p ...any) (any, error) {
	if u, isU := p[0].(Undefined); isU {
		return u, nil
	}
	v, ok, err := attr(p[0], p[1])
	if err != nil || !ok {
		return Undefined{Name: String(p[1])}, nil
	}
	return v, nil
}

// attr looks key up in obj: a map key, a list index (negative counts from
// the end) or an exported struct field.
func attr(obj, key any) (any, bool, error) {
	switch o := obj.(type) {
	case map[string]any:
		k, ok := key.(string)
		if !ok {
			k = String(key)
		}
		v, found := o[k]
		return v, found, nil
	case []any:
		i, ok := toInt(key)
		if !ok {
			return nil, false, fmt.Errorf("list index must be an integer, not %T", key)
		}
		if i < 0 {
			i += len(o)
		}
		if i < 0 || i >= len(o) {
			return nil, false, nil
		}
		return o[i], true, nil
	case Undefined:
		return nil, false, &undefinedError{name: o.Name}
	case nil:
		return nil, false, nil
	}
	return reflectAttr(obj, key)
}

func reflectAttr(obj, key any) (any, bool, error) {
	rv := reflect.ValueOf(obj)
	for rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			return nil, false, nil
		}
		rv = rv.Elem()
	}
	switch rv.Kind() {
	case reflect.Map:
		kv := reflect.ValueOf(key)
		if !kv.IsValid() || !kv.Type().ConvertibleTo(rv.Type().Key()) {
			return nil, false, nil
		}
		v := rv.MapIndex(kv.Convert(rv.Type().Key()))
		if !v.IsValid() {
			return nil, false, nil
		}
		return v.Interface(), true, nil
	case reflect.Slice, reflect.Array, reflect.String:
		i, ok := toInt(key)
		if !ok {
			return nil, false, fmt.Errorf("index must be an integer, not %T", key)
		}
		if i < 0 {
			i += rv.Len()
		}
		if i < 0 || i >= rv.Len() {
			return nil, false, nil
		}
		return rv.Index(i).Interface(), true, nil
	case reflect.Struct:
		name, _ := key.(string)
		f := rv.FieldByName(name)
		if !f.IsValid() || !f.CanInterface() {
			return nil, false, nil
		}
		return f.Interface(), true, nil
	}
	return nil, false, fmt.Errorf("cannot read %q of a %T", String(key), obj)
}

func toInt(v any) (int, bool) {
	switch x := v.(type) {
	case int:
		return x, true
	case int64:
		return int(x), true
	case float64:
		return int(x), x == float64(int(x))
	case string:
		i, err := strconv.Atoi(x)
		return i, err == nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return int(rv.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return int(rv.Uint()), true
	}
	return 0, false
}

// splitArgs separates positional arguments from keyword arguments.
func splitArgs(p []any) ([]any, map[string]any) {
	var pos []any
	var kw map[string]any
	for _, a := range p {
		if k, ok := a.(kwarg); ok {
			if kw == nil {
				kw = map[string]any{}
			}
			kw[k.name] = k.value
			continue
		}
		pos = append(pos, a)
	}
	return pos, kw
}

// arg returns positional argument i, or keyword name, or def.
func arg(pos []any, kw map[string]any, i int, name string, def any) any {
	if i < len(pos) {
		return pos[i]
	}
	if v, ok := kw[name]; ok {
		return v
	}
	return def
}

// add is Python's +: numbers add, strings and lists concatenate.
func add(p ...any) (any, error) {
	a, b := p[0], p[1]
	if x, ok := a.(int); ok {
		if y, ok := b.(int); ok {
			return x + y, nil
		}
	}
	if x, ok := number(a); ok {
		if y, ok := number(b); ok {
			return x + y, nil
		}
	}
	if x, ok := a.(string); ok {
		if y, ok := b.(string); ok {
			return x + y, nil
		}
	}
	la, errA := toList(a)
	lb, errB := toList(b)
	_, aStr := a.(string)
	_, bStr := b.(string)
	if errA == nil && errB == nil && !aStr && !bStr && isList(a) && isList(b) {
		out := make([]any, 0, len(la)+len(lb))
		return append(append(out, la...), lb...), nil
	}
	return nil, fmt.Errorf("unsupported operand types for +: %T and %T", a, b)
}

func isList(v any) bool {
	k := reflect.ValueOf(v).Kind()
	return k == reflect.Slice || k == reflect.Array
}
