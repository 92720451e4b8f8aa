package template

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"path"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"orch/internal/shell"
)

// filterTable maps Jinja filter names to their implementation; the first
// parameter is the value on the left of the pipe. It is never modified.
var filterTable = map[string]fn{
	"default": fDefault, "d": fDefault,
	"mandatory": fMandatory,
	"join":      fJoin,
	"length":    fLength, "count": fLength,
	"int":    fInt,
	"float":  fFloat,
	"bool":   func(p ...any) (any, error) { return toBool(p[0]), nil },
	"string": func(p ...any) (any, error) { return String(p[0]), nil },
	"lower":  strFn(strings.ToLower),
	"upper":  strFn(strings.ToUpper),
	"trim":   strFn(strings.TrimSpace),
	"capitalize": strFn(func(s string) string {
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + strings.ToLower(s[1:])
	}),
	"replace":       fReplace,
	"split":         fSplit,
	"first":         fFirst,
	"last":          fLast,
	"unique":        fUnique,
	"sort":          fSort,
	"reverse":       fReverse,
	"list":          func(p ...any) (any, error) { return toList(p[0]) },
	"flatten":       fFlatten,
	"to_json":       fToJSON,
	"to_nice_json":  fToNiceJSON,
	"from_json":     fFromJSON,
	"to_yaml":       fToYAML,
	"to_nice_yaml":  fToYAML,
	"from_yaml":     fFromYAML,
	"regex_search":  fRegexSearch,
	"regex_replace": fRegexReplace,
	"regex_findall": fRegexFindall,
	"combine":       fCombine,
	"dict2items":    fDict2Items,
	"items2dict":    fItems2Dict,
	"min":           fMinMax(-1),
	"max":           fMinMax(1),
	"sum":           fSum,
	"abs":           fAbs,
	"round":         fRound,
	"select":        selectFn(false),
	"reject":        selectFn(true),
	"selectattr":    selectAttrFn(false),
	"rejectattr":    selectAttrFn(true),
	"basename":      strFn(path.Base),
	"dirname":       strFn(path.Dir),
	"quote":         strFn(shell.Quote),
	"b64encode":     strFn(func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }),
	"b64decode":     fB64Decode,
	"difference":    setOp(func(inB bool) bool { return !inB }),
	"intersect":     setOp(func(inB bool) bool { return inB }),
	"union":         fUnion,
	"ternary":       fTernary,
	"type_debug":    func(p ...any) (any, error) { return fmt.Sprintf("%T", p[0]), nil },
	"range":         fRange,
	"zip":           fZip,
	"keys":          fKeys,
	"values":        fValues,
	"items":         fDict2Items,
	"regex_escape":  strFn(regexp.QuoteMeta),
	"comment":       strFn(func(s string) string { return "#\n# " + strings.ReplaceAll(s, "\n", "\n# ") + "\n#" }),
	"indent":        fIndent,
}

// map looks other filters up by name, so it joins the table after initialisation.
func init() { filterTable["map"] = fMap }

func isFilter(name string) bool { _, ok := filterTable[name]; return ok }

func isTest(name string) bool { _, ok := testTable[name]; return ok }

// functions returns every function given to expr: internals, f_<filter>,
// is_<test>, and a few Jinja globals.
func functions() map[string]fn {
	out := internal()
	for k, v := range filterTable {
		out["f_"+k] = v
	}
	for k, v := range testTable {
		out["is_"+k] = v
	}
	out["range"] = fRange
	return out
}

func strFn(f func(string) string) fn {
	return func(p ...any) (any, error) { return f(String(p[0])), nil }
}

func fDefault(p ...any) (any, error) {
	pos, kw := splitArgs(p)
	def := arg(pos, kw, 1, "default_value", "")
	boolean := toBool(arg(pos, kw, 2, "boolean", false))
	if _, undef := pos[0].(Undefined); undef || boolean && !Truthy(pos[0]) {
		return def, nil
	}
	return pos[0], nil
}

func fMandatory(p ...any) (any, error) {
	if u, undef := p[0].(Undefined); undef {
		msg := fmt.Sprintf("mandatory variable %q not defined", u.Name)
		if len(p) > 1 {
			msg = String(p[1])
		}
		return nil, &undefinedError{name: msg}
	}
	return p[0], nil
}

func fJoin(p ...any) (any, error) {
	pos, kw := splitArgs(p)
	l, err := toList(pos[0])
	if err != nil {
		return nil, err
	}
	parts := make([]string, len(l))
	for i, v := range l {
		parts[i] = String(v)
	}
	return strings.Join(parts, String(arg(pos, kw, 1, "d", ""))), nil
}

func fLength(p ...any) (any, error) {
	rv := reflect.ValueOf(p[0])
	switch rv.Kind() {
	case reflect.String:
		return len([]rune(rv.String())), nil
	case reflect.Map, reflect.Slice, reflect.Array:
		return rv.Len(), nil
	case reflect.Invalid:
		return 0, nil
	}
	return nil, fmt.Errorf("length of a %T", p[0])
}

func fInt(p ...any) (any, error) {
	pos, kw := splitArgs(p)
	def := arg(pos, kw, 1, "default", 0)
	switch x := pos[0].(type) {
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	case float64:
		return int(x), nil
	case string:
		s := strings.TrimSpace(x)
		if i, err := strconv.ParseInt(s, 0, 64); err == nil {
			return int(i), nil
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return int(f), nil
		}
		return def, nil
	}
	if i, ok := toInt(pos[0]); ok {
		return i, nil
	}
	return def, nil
}

func fFloat(p ...any) (any, error) {
	switch x := p[0].(type) {
	case float64:
		return x, nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return 0.0, nil
		}
		return f, nil
	}
	if i, ok := toInt(p[0]); ok {
		return float64(i), nil
	}
	return 0.0, nil
}

// toBool is Ansible's bool filter: yes/on/true/1 (any case) are true.
func toBool(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "yes", "on", "true", "1", "y", "t":
			return true
		}
		return false
	case nil:
		return false
	}
	if i, ok := toInt(v); ok {
		return i == 1
	}
	return Truthy(v)
}

func fReplace(p ...any) (any, error) {
	if len(p) < 3 {
		return nil, fmt.Errorf("replace needs (old, new)")
	}
	n := -1
	if len(p) > 3 {
		n, _ = toInt(p[3])
	}
	return strings.Replace(String(p[0]), String(p[1]), String(p[2]), n), nil
}

func fSplit(p ...any) (any, error) {
	s := String(p[0])
	var parts []string
	if len(p) < 2 || p[1] == nil {
		parts = strings.Fields(s)
	} else {
		parts = strings.Split(s, String(p[1]))
	}
	out := make([]any, len(parts))
	for i, x := range parts {
		out[i] = x
	}
	return out, nil
}

func equal(a, b any) bool {
	if fa, ok := number(a); ok {
		if fb, ok := number(b); ok {
			return fa == fb
		}
	}
	return reflect.DeepEqual(a, b)
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case float64:
		return x, true
	case int64:
		return float64(x), true
	}
	return 0, false
}

func less(a, b any) bool {
	if fa, ok := number(a); ok {
		if fb, ok := number(b); ok {
			return fa < fb
		}
	}
	return String(a) < String(b)
}

// toList converts lists of any element type, and maps (their sorted keys), to []any.
func fToJSON(p ...any) (any, error) {
	b, err := json.Marshal(p[0])
	return string(b), err
}

func fToNiceJSON(p ...any) (any, error) {
	b, err := json.MarshalIndent(p[0], "", "    ")
	return string(b), err
}

func fFromJSON(p ...any) (any, error) {
	var v any
	if err := json.Unmarshal([]byte(String(p[0])), &v); err != nil {
		return nil, fmt.Errorf("from_json: %w", err)
	}
	return normalizeJSON(v), nil
}

// normalizeJSON turns integral float64 numbers into int, as YAML decoding does.
func normalizeJSON(v any) any {
	switch x := v.(type) {
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int(x)
		}
	case map[string]any:
		for k, e := range x {
			x[k] = normalizeJSON(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalizeJSON(e)
		}
	}
	return v
}

func fToYAML(p ...any) (any, error) {
	b, err := yaml.Marshal(p[0])
	return strings.TrimSuffix(string(b), "\n"), err
}

func fFromYAML(p ...any) (any, error) {
	var v any
	if err := yaml.Unmarshal([]byte(String(p[0])), &v); err != nil {
		return nil, fmt.Errorf("from_yaml: %w", err)
	}
	return v, nil
}

func fRegexSearch(p ...any) (any, error) {
	re, err := compileRegex(p, 1)
	if err != nil {
		return nil, err
	}
	m := re.FindStringSubmatch(String(p[0]))
	if m == nil {
		return nil, nil
	}
	if len(p) > 2 {
		out := []any{}
		for _, g := range p[2:] {
			s := String(g)
			if n, err := strconv.Atoi(strings.TrimPrefix(s, "\\")); err == nil && n < len(m) {
				out = append(out, m[n])
			} else if i := re.SubexpIndex(strings.TrimPrefix(s, "\\g")); i >= 0 {
				out = append(out, m[i])
			}
		}
		return out, nil
	}
	return m[0], nil
}

func compileRegex(p []any, i int) (*regexp.Regexp, error) {
	pos, kw := splitArgs(p)
	if i >= len(pos) {
		return nil, fmt.Errorf("regular expression argument missing")
	}
	expr := String(pos[i])
	if toBool(kw["ignorecase"]) {
		expr = "(?i)" + expr
	}
	if toBool(kw["multiline"]) {
		expr = "(?m)" + expr
	}
	return regexp.Compile(expr)
}

var pyGroup = regexp.MustCompile(`\\(\d+)|\\g<(\w+)>`)

func fRegexReplace(p ...any) (any, error) {
	re, err := compileRegex(p, 1)
	if err != nil {
		return nil, err
	}
	repl := ""
	if pos, _ := splitArgs(p); len(pos) > 2 {
		repl = pyGroup.ReplaceAllString(String(pos[2]), "$${$1$2}")
	}
	return re.ReplaceAllString(String(p[0]), repl), nil
}

func fRegexFindall(p ...any) (any, error) {
	re, err := compileRegex(p, 1)
	if err != nil {
		return nil, err
	}
	out := []any{}
	for _, m := range re.FindAllString(String(p[0]), -1) {
		out = append(out, m)
	}
	return out, nil
}

func fAbs(p ...any) (any, error) {
	switch x := p[0].(type) {
	case int:
		if x < 0 {
			return -x, nil
		}
		return x, nil
	case float64:
		return math.Abs(x), nil
	}
	return nil, fmt.Errorf("abs of a %T", p[0])
}

func fRound(p ...any) (any, error) {
	f, ok := number(p[0])
	if !ok {
		return nil, fmt.Errorf("round of a %T", p[0])
	}
	prec := 0
	if len(p) > 1 {
		prec, _ = toInt(p[1])
	}
	scale := math.Pow(10, float64(prec))
	return math.Round(f*scale) / scale, nil
}

func fB64Decode(p ...any) (any, error) {
	b, err := base64.StdEncoding.DecodeString(String(p[0]))
	return string(b), err
}

func fTernary(p ...any) (any, error) {
	if len(p) < 3 {
		return nil, fmt.Errorf("ternary needs (true_value, false_value)")
	}
	if p[0] == nil && len(p) > 3 {
		return p[3], nil
	}
	if Truthy(p[0]) {
		return p[1], nil
	}
	return p[2], nil
}

func fIndent(p ...any) (any, error) {
	pos, kw := splitArgs(p)
	n, _ := toInt(arg(pos, kw, 1, "width", 4))
	first := toBool(arg(pos, kw, 2, "first", false))
	pad := strings.Repeat(" ", n)
	s := strings.ReplaceAll(String(pos[0]), "\n", "\n"+pad)
	if first {
		s = pad + s
	}
	return s, nil
}
