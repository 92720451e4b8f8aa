package template

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
)

// testTable maps Jinja/Ansible test names (`x is name`) to their
// implementation; the first parameter is the value tested. Never modified.
var testTable = map[string]fn{
	"defined":   func(p ...any) (any, error) { _, u := p[0].(Undefined); return !u, nil },
	"undefined": func(p ...any) (any, error) { _, u := p[0].(Undefined); return u, nil },
	"none":      func(p ...any) (any, error) { return p[0] == nil, nil },
	"string":    func(p ...any) (any, error) { _, ok := p[0].(string); return ok, nil },
	"number":    func(p ...any) (any, error) { _, ok := number(p[0]); return ok, nil },
	"integer":   func(p ...any) (any, error) { _, ok := p[0].(int); return ok, nil },
	"float":     func(p ...any) (any, error) { _, ok := p[0].(float64); return ok, nil },
	"boolean":   func(p ...any) (any, error) { _, ok := p[0].(bool); return ok, nil },
	"true":      func(p ...any) (any, error) { return p[0] == true, nil },
	"false":     func(p ...any) (any, error) { return p[0] == false, nil },
	"mapping":   kindTest(reflect.Map),
	"sequence":  kindTest(reflect.Slice, reflect.Array, reflect.String),
	"iterable":  kindTest(reflect.Slice, reflect.Array, reflect.String, reflect.Map),
	"failed":    resultTest("failed", true), "failure": resultTest("failed", true),
	"succeeded": resultTest("failed", false), "success": resultTest("failed", false),
	"successful": resultTest("failed", false),
	"changed":    resultTest("changed", true), "change": resultTest("changed", true),
	"skipped": resultTest("skipped", true), "skip": resultTest("skipped", true),
	"match": regexTest(true), "regex": regexTest(false), "search": regexTest(false),
	"equalto": func(p ...any) (any, error) { return len(p) > 1 && equal(p[0], p[1]), nil },
	"eq":      func(p ...any) (any, error) { return len(p) > 1 && equal(p[0], p[1]), nil },
	"sameas":  func(p ...any) (any, error) { return len(p) > 1 && p[0] == p[1], nil },
	"divisibleby": func(p ...any) (any, error) {
		a, ok1 := toInt(p[0])
		b, ok2 := toInt(arg(p, nil, 1, "", 0))
		return ok1 && ok2 && b != 0 && a%b == 0, nil
	},
	"even":     func(p ...any) (any, error) { i, ok := toInt(p[0]); return ok && i%2 == 0, nil },
	"odd":      func(p ...any) (any, error) { i, ok := toInt(p[0]); return ok && i%2 != 0, nil },
	"in":       func(p ...any) (any, error) { return inTest(p[0], arg(p, nil, 1, "", nil)) },
	"contains": func(p ...any) (any, error) { return inTest(arg(p, nil, 1, "", nil), p[0]) },
	"subset":   subsetTest(false),
	"superset": subsetTest(true),
	"version":  versionTest,
}

func kindTest(kinds ...reflect.Kind) fn {
	return func(p ...any) (any, error) {
		k := reflect.ValueOf(p[0]).Kind()
		for _, want := range kinds {
			if k == want {
				return true, nil
			}
		}
		return false, nil
	}
}

// resultTest reads a registered task result: failed/changed/skipped.
func resultTest(key string, want bool) fn {
	return func(p ...any) (any, error) {
		m, ok := p[0].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("the %q test expects a registered task result, got %T", key, p[0])
		}
		v, _ := m[key].(bool)
		return v == want, nil
	}
}

func regexTest(anchored bool) fn {
	return func(p ...any) (any, error) {
		re, err := compileRegex(p, 1)
		if err != nil {
			return nil, err
		}
		s := String(p[0])
		if anchored {
			loc := re.FindStringIndex(s)
			return loc != nil && loc[0] == 0, nil
		}
		return re.MatchString(s), nil
	}
}

func inTest(needle, haystack any) (any, error) {
	switch h := haystack.(type) {
	case string:
		return strings.Contains(h, String(needle)), nil
	case map[string]any:
		_, ok := h[String(needle)]
		return ok, nil
	}
	l, err := toList(haystack)
	if err != nil {
		return nil, err
	}
	return containsValue(l, needle), nil
}

func subsetTest(super bool) fn {
	return func(p ...any) (any, error) {
		a, err := toList(p[0])
		if err != nil || len(p) < 2 {
			return nil, fmt.Errorf("subset/superset needs two lists: %v", err)
		}
		b, err := toList(p[1])
		if err != nil {
			return nil, err
		}
		if super {
			a, b = b, a
		}
		for _, v := range a {
			if !containsValue(b, v) {
				return false, nil
			}
		}
		return true, nil
	}
}

var (
	loosePart     = regexp.MustCompile(`\d+|[a-z]+|\.|[^\da-z.]+`) // LooseVersion keeps other runs too
	strictVersion = regexp.MustCompile(`^(\d+)\.(\d+)(?:\.(\d+))?(?:([ab])(\d+))?$`)
	semVersion    = regexp.MustCompile(`^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$`)
)

// versionTest compares versions as Ansible's version test (and the
// version_compare filter): `v is version('1.2', '>=', strict, version_type)`
// with LooseVersion's rules by default, StrictVersion's with strict=true or
// version_type='strict', and semantic versioning with 'semver'/'semantic'.
func versionTest(p ...any) (any, error) {
	pos, kw := splitArgs(p)
	if len(pos) < 2 {
		return nil, fmt.Errorf("version test needs a version to compare with")
	}
	op := String(arg(pos, kw, 2, "operator", "eq"))
	kind := "loose"
	if toBool(arg(pos, kw, 3, "strict", false)) {
		kind = "strict"
	}
	if vt := arg(pos, kw, 4, "version_type", nil); vt != nil {
		kind = String(vt)
	}
	c, err := compareVersionsAs(kind, String(pos[0]), String(pos[1]))
	if err != nil {
		return nil, err
	}
	switch op {
	case "<", "lt":
		return c < 0, nil
	case "<=", "le":
		return c <= 0, nil
	case ">", "gt":
		return c > 0, nil
	case ">=", "ge":
		return c >= 0, nil
	case "==", "=", "eq":
		return c == 0, nil
	case "!=", "<>", "ne":
		return c != 0, nil
	}
	return nil, fmt.Errorf("version test: unknown operator %q", op)
}

func compareVersionsAs(kind, a, b string) (int, error) {
	switch kind {
	case "loose", "":
		return compareLoose(a, b)
	case "strict":
		return compareStrict(a, b)
	case "semver", "semantic":
		return compareSemver(a, b)
	}
	return 0, fmt.Errorf("version test: unknown version_type %q (loose, strict, semver)", kind)
}

// compareLoose is LooseVersion: numbers and letter runs, compared in
// order; a longer version with an equal prefix is greater.
func compareLoose(a, b string) (int, error) {
	pa, pb := looseParts(a), looseParts(b)
	for i := 0; i < min(len(pa), len(pb)); i++ {
		x, y := pa[i], pb[i]
		nx, ex := strconv.Atoi(x)
		ny, ey := strconv.Atoi(y)
		switch {
		case ex == nil && ey == nil:
			if nx != ny {
				return cmpInt(nx, ny), nil
			}
		case ex != nil && ey != nil:
			if x != y {
				return strings.Compare(x, y), nil
			}
		default:
			return 0, fmt.Errorf("version comparison failed: %q and %q mix a number and a string in the same position", a, b)
		}
	}
	return cmpInt(len(pa), len(pb)), nil
}

func looseParts(v string) []string {
	var out []string
	for _, p := range loosePart.FindAllString(v, -1) {
		if p != "." {
			out = append(out, p)
		}
	}
	return out
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// compareStrict is StrictVersion: N.N[.N][(a|b)N]; a pre-release is older.
func compareStrict(a, b string) (int, error) {
	ma, mb, err := versionParts(strictVersion, a, b, "version number")
	if err != nil {
		return 0, err
	}
	if c, done := compareRelease(ma, mb); done {
		return c, nil
	}
	if ma[4] != mb[4] {
		return strings.Compare(ma[4], mb[4]), nil
	}
	x, _ := strconv.Atoi(ma[5])
	y, _ := strconv.Atoi(mb[5])
	return cmpInt(x, y), nil
}

// versionParts matches a and b against re (groups 1-3 the numbers, 4 the pre-release); the
// error names the one that is not a what.
func versionParts(re *regexp.Regexp, a, b, what string) (ma, mb []string, err error) {
	if ma = re.FindStringSubmatch(a); ma == nil {
		return nil, nil, fmt.Errorf("invalid %s %q", what, a)
	}
	if mb = re.FindStringSubmatch(b); mb == nil {
		return nil, nil, fmt.Errorf("invalid %s %q", what, b)
	}
	return ma, mb, nil
}

// compareRelease compares the numbers, then puts a release above a pre-release of the same
// numbers; done is false when both are pre-releases of the same numbers.
func compareRelease(ma, mb []string) (c int, done bool) {
	for i := 1; i <= 3; i++ {
		x, _ := strconv.Atoi(ma[i])
		y, _ := strconv.Atoi(mb[i])
		if x != y {
			return cmpInt(x, y), true
		}
	}
	switch {
	case ma[4] == "" && mb[4] == "":
		return 0, true
	case ma[4] == "":
		return 1, true
	case mb[4] == "":
		return -1, true
	}
	return 0, false
}

// compareSemver follows semver.org's precedence (build metadata ignored).
func compareSemver(a, b string) (int, error) {
	ma, mb, err := versionParts(semVersion, a, b, "semantic version")
	if err != nil {
		return 0, err
	}
	if c, done := compareRelease(ma, mb); done {
		return c, nil
	}
	pa, pb := strings.Split(ma[4], "."), strings.Split(mb[4], ".")
	for i := 0; i < min(len(pa), len(pb)); i++ {
		nx, ex := strconv.Atoi(pa[i])
		ny, ey := strconv.Atoi(pb[i])
		switch {
		case ex == nil && ey == nil && nx != ny:
			return cmpInt(nx, ny), nil
		case ex == nil && ey != nil:
			return -1, nil
		case ex != nil && ey == nil:
			return 1, nil
		case ex != nil && pa[i] != pb[i]:
			return strings.Compare(pa[i], pb[i]), nil
		}
	}
	return cmpInt(len(pa), len(pb)), nil
}
