package template

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jmespath/go-jmespath"
	"gopkg.in/yaml.v3"
)

// moreFilters are Ansible's filters added with the gonja engine.
func moreFilters() map[string]fn {
	return map[string]fn{
		"hash":                 fHash,
		"checksum":             func(p ...any) (any, error) { return hashHex("sha1", String(p[0])) },
		"md5":                  func(p ...any) (any, error) { return hashHex("md5", String(p[0])) },
		"sha1":                 func(p ...any) (any, error) { return hashHex("sha1", String(p[0])) },
		"json_query":           fJSONQuery,
		"product":              fProduct,
		"realpath":             strFn(realpath),
		"expanduser":           strFn(expandUser),
		"splitext":             fSplitext,
		"symmetric_difference": fSymmetricDifference,
		"zip_longest":          fZipLongest,
		"to_nice_yaml":         fToNiceYAML,
		"version_compare":      versionTest,
		"version":              versionTest,
		"subelements":          fSubelements,
		"dict":                 fItems2DictPairs,
		"bool":                 func(p ...any) (any, error) { return toBool(p[0]), nil },
		"extract":              fExtract,
		"strftime": func(p ...any) (any, error) {
			t := time.Now()
			if len(p) > 1 {
				if s, ok := number(p[1]); ok {
					t = time.Unix(int64(s), 0)
				}
			}
			return strftime(t, String(p[0])), nil
		},
	}
}

func init() {
	for name, f := range moreFilters() {
		filterTable[name] = f
	}
	testTable["version_compare"] = versionTest
}

func hashHex(algo, s string) (string, error) {
	var h hash.Hash
	switch strings.ToLower(algo) {
	case "md5":
		h = md5.New()
	case "sha1":
		h = sha1.New()
	case "sha224":
		h = sha256.New224()
	case "sha256":
		h = sha256.New()
	case "sha384":
		h = sha512.New384()
	case "sha512":
		h = sha512.New()
	default:
		return "", fmt.Errorf("hash: unsupported algorithm %q (md5, sha1, sha224, sha256, sha384, sha512)", algo)
	}
	h.Write([]byte(s))
	return hex.EncodeToString(h.Sum(nil)), nil
}

func fHash(p ...any) (any, error) {
	pos, kw := splitArgs(p)
	return hashHex(String(arg(pos, kw, 1, "hashtype", "sha1")), String(pos[0]))
}

// fJSONQuery is json_query: a JMESPath expression over the value.
func fJSONQuery(p ...any) (any, error) {
	if len(p) < 2 {
		return nil, fmt.Errorf("json_query needs an expression")
	}
	out, err := jmespath.Search(String(p[1]), p[0])
	if err != nil {
		return nil, fmt.Errorf("json_query %q: %w", String(p[1]), err)
	}
	return normalizeJSON(out), nil
}

// fProduct is the cartesian product of the lists (itertools.product).
func fProduct(p ...any) (any, error) {
	pos, _ := splitArgs(p)
	out := []any{[]any{}}
	for _, v := range pos {
		l, err := toList(v)
		if err != nil {
			return nil, err
		}
		next := make([]any, 0, len(out)*len(l))
		for _, prefix := range out {
			for _, e := range l {
				row := append(append([]any{}, prefix.([]any)...), e)
				next = append(next, row)
			}
		}
		if len(next) > maxRepeat {
			return nil, fmt.Errorf("product too large")
		}
		out = next
	}
	return out, nil
}

func realpath(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		if a, err := filepath.Abs(r); err == nil {
			return a
		}
	}
	a, _ := filepath.Abs(p)
	return a
}

func expandUser(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return home + p[1:]
		}
	}
	return p
}

func fSplitext(p ...any) (any, error) {
	s := String(p[0])
	ext := filepath.Ext(s)
	if ext == s || strings.HasSuffix(strings.TrimSuffix(s, ext), "/") {
		ext = "" // a dot file has no extension in Python
	}
	return []any{strings.TrimSuffix(s, ext), ext}, nil
}

func fSymmetricDifference(p ...any) (any, error) {
	if len(p) < 2 {
		return nil, fmt.Errorf("symmetric_difference needs two lists")
	}
	a, err := toList(p[0])
	if err != nil {
		return nil, err
	}
	b, err := toList(p[1])
	if err != nil {
		return nil, err
	}
	out := []any{}
	for _, v := range append(append([]any{}, a...), b...) {
		if containsValue(a, v) != containsValue(b, v) && !containsValue(out, v) {
			out = append(out, v)
		}
	}
	return out, nil
}

func fZipLongest(p ...any) (any, error) {
	pos, kw := splitArgs(p)
	fill := kw["fillvalue"]
	lists := make([][]any, len(pos))
	n := 0
	for i, v := range pos {
		l, err := toList(v)
		if err != nil {
			return nil, err
		}
		lists[i] = l
		n = max(n, len(l))
	}
	out := make([]any, n)
	for i := range out {
		row := make([]any, len(lists))
		for j := range lists {
			row[j] = fill
			if i < len(lists[j]) {
				row[j] = lists[j][i]
			}
		}
		out[i] = row
	}
	return out, nil
}

// fToNiceYAML indents by 2 (or indent=) as Ansible's to_nice_yaml does.
func fToNiceYAML(p ...any) (any, error) {
	pos, kw := splitArgs(p)
	indent, ok := toInt(arg(pos, kw, 1, "indent", 2))
	if !ok || indent < 1 {
		indent = 2
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(indent)
	if err := enc.Encode(pos[0]); err != nil {
		return nil, err
	}
	return b.String(), nil
}

// fSubelements: list | subelements('key') → [[item, sub], ...].
func fSubelements(p ...any) (any, error) {
	pos, kw := splitArgs(p)
	l, err := toList(pos[0])
	if err != nil || len(pos) < 2 {
		return nil, fmt.Errorf("subelements needs a list and a key")
	}
	key := String(pos[1])
	skip := Truthy(arg(pos, kw, 2, "skip_missing", false))
	if m, ok := arg(pos, kw, 2, "", nil).(map[string]any); ok {
		skip = Truthy(m["skip_missing"])
	}
	out := []any{}
	for _, item := range l {
		v, found, _ := attr(item, key)
		if !found {
			if skip {
				continue
			}
			return nil, &undefinedError{name: key}
		}
		subs, err := toList(v)
		if err != nil {
			return nil, err
		}
		for _, s := range subs {
			out = append(out, []any{item, s})
		}
	}
	return out, nil
}

// fItems2DictPairs turns [[k, v], ...] into a dict (Python's dict()).
func fItems2DictPairs(p ...any) (any, error) {
	l, err := toList(p[0])
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	for _, e := range l {
		kv, err := toList(e)
		if err != nil || len(kv) != 2 {
			return nil, fmt.Errorf("dict needs pairs, got %s", String(e))
		}
		out[String(kv[0])] = kv[1]
	}
	return out, nil
}

// fExtract is `key | extract(container, morekeys)`: container[key][morekeys...].
func fExtract(p ...any) (any, error) {
	pos, kw := splitArgs(p)
	if len(pos) < 2 {
		return nil, fmt.Errorf("extract needs a container")
	}
	v, found, err := attr(pos[1], pos[0])
	if err != nil {
		return nil, err
	}
	if !found {
		return Undefined{Name: String(pos[0])}, nil
	}
	more := arg(pos, kw, 2, "morekeys", nil)
	keys, ok := more.([]any)
	if more != nil && !ok {
		keys = []any{more}
	}
	for _, k := range keys {
		if v, found, err = attr(v, k); err != nil {
			return nil, err
		}
		if !found {
			return Undefined{Name: String(k)}, nil
		}
	}
	return v, nil
}
