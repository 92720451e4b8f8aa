package rest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// Filter is a parsed ?filter= expression of LXD's API filtering (the "api_filtering"
// extension): comparisons FIELD eq|ne VALUE, combined with and/or and negated with not,
// evaluated left to right as LXD does. FIELD is the object's JSON field, dotted into
// nested objects (state.status) or maps (config.boot.autostart). A nil Filter matches
// everything.
type Filter struct {
	terms []filterTerm
}

// filterTerm is one comparison and the operator joining it to what comes before.
type filterTerm struct {
	join  string // "" for the first term, "and" or "or"
	not   bool
	field string
	op    string
	value string
}

// ParseFilter reads ?filter= (nil when absent or empty); a malformed expression is a 400
// naming the word that did not fit.
func ParseFilter(r *http.Request) (*Filter, error) {
	expr := strings.TrimSpace(r.URL.Query().Get("filter"))
	if expr == "" {
		return nil, nil
	}
	words := strings.Fields(expr)
	f := &Filter{}
	for i := 0; i < len(words); {
		var t filterTerm
		if len(f.terms) > 0 {
			if w := strings.ToLower(words[i]); w != "and" && w != "or" {
				return nil, BadRequest("filter %q: want and/or before %q", expr, words[i])
			}
			t.join = strings.ToLower(words[i])
			i++
		}
		if i < len(words) && strings.ToLower(words[i]) == "not" {
			t.not = true
			i++
		}
		if i+3 > len(words) {
			return nil, BadRequest("filter %q: incomplete comparison at the end", expr)
		}
		t.field, t.op, t.value = words[i], strings.ToLower(words[i+1]), strings.Trim(words[i+2], `"'`)
		if t.op != "eq" && t.op != "ne" {
			return nil, BadRequest("filter %q: operator %q: only eq and ne are supported", expr, words[i+1])
		}
		f.terms = append(f.terms, t)
		i += 3
	}
	return f, nil
}

// Match reports whether obj (anything that marshals to a JSON object) passes the filter.
func (f *Filter) Match(obj any) bool {
	if f == nil {
		return true
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return false
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return false
	}
	result := false
	for i, t := range f.terms {
		v := lookup(m, t.field)
		ok := (v == t.value) == (t.op == "eq")
		if t.not {
			ok = !ok
		}
		switch {
		case i == 0:
			result = ok
		case t.join == "and":
			result = result && ok
		default:
			result = result || ok
		}
	}
	return result
}

// lookup finds a dotted field in a decoded JSON object, trying the longest key at each
// level (config keys hold dots themselves); "" when absent.
func lookup(m map[string]any, field string) string {
	parts := strings.Split(field, ".")
	for n := len(parts); n >= 1; n-- {
		v, ok := m[strings.Join(parts[:n], ".")]
		if !ok {
			continue
		}
		if n == len(parts) {
			return scalar(v)
		}
		if sub, ok := v.(map[string]any); ok {
			return lookup(sub, strings.Join(parts[n:], "."))
		}
	}
	return ""
}

// scalar renders a decoded JSON value as the filter compares it.
func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}
