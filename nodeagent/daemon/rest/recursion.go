package rest

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Recursion levels of a collection GET, as LXD's ?recursion=.
const (
	// RecursionURLs (the default) lists the objects' URLs.
	RecursionURLs = 0
	// RecursionObjects lists the objects.
	RecursionObjects = 1
	// RecursionFull lists the objects with their state (instances: InstanceFull).
	RecursionFull = 2
)

// Recursion reads ?recursion= (0 when absent): 0 lists URLs, 1 objects, 2 objects with
// their state. Other values are refused, naming the parameter.
func Recursion(r *http.Request) (int, error) {
	v := r.URL.Query().Get("recursion")
	if v == "" {
		return RecursionURLs, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < RecursionURLs || n > RecursionFull {
		return 0, BadRequest("recursion=%q: want 0, 1 or 2", v)
	}
	return n, nil
}

// URLs are the URLs of objects named names under prefix (e.g. "/1.0/profiles"): what a
// collection answers at recursion 0. A name may hold several path segments
// ("custom/vol1"), each escaped. Never nil.
func URLs(prefix string, names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		segs := strings.Split(n, "/")
		for i, s := range segs {
			segs[i] = url.PathEscape(s)
		}
		out = append(out, prefix+"/"+strings.Join(segs, "/"))
	}
	return out
}

// WriteList answers a collection GET as LXD does: at recursion 0 the URLs of the items
// (prefix + "/" + name(item)), otherwise the items themselves (never null).
func WriteList[T any](w http.ResponseWriter, r *http.Request, prefix string, items []T, name func(T) string) error {
	level, err := Recursion(r)
	if err != nil {
		return err
	}
	if level == RecursionURLs {
		names := make([]string, 0, len(items))
		for _, it := range items {
			names = append(names, name(it))
		}
		return WriteOK(w, URLs(prefix, names), "")
	}
	if items == nil {
		items = []T{}
	}
	return WriteOK(w, items, "")
}
