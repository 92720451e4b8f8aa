package rest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"orch/nodeagent/api"
	"orch/nodeagent/store"
)

// The envelope every domain answers with: byte-identical to what the daemon wrote before
// the split (a sync success with the metadata, Content-Type and the optional ETag).
func TestWriteOK(t *testing.T) {
	w := httptest.NewRecorder()
	if err := WriteOK(w, map[string]string{"a": "b"}, `"1-x"`); err != nil {
		t.Fatal(err)
	}
	want := `{"type":"sync","status":"Success","status_code":200,"metadata":{"a":"b"}}` + "\n"
	if got := w.Body.String(); got != want {
		t.Errorf("body %s, want %s", got, want)
	}
	if w.Header().Get("ETag") != `"1-x"` || w.Header().Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", w.Header())
	}
}

func TestDecodeBodyIsStrict(t *testing.T) {
	var v struct {
		Name string `json:"name"`
	}
	for body, ok := range map[string]bool{
		`{"name":"x"}`:           true,
		`{"name":"x","other":1}`: false,
		`{"name":"x"} {}`:        false,
		`not json`:               false,
	} {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		err := DecodeBody(r, &v)
		var ae *api.Error
		if ok != (err == nil) || (err != nil && (!errors.As(err, &ae) || ae.Code != http.StatusBadRequest)) {
			t.Errorf("DecodeBody(%s) = %v; want accepted %v, else a 400", body, err, ok)
		}
	}
}

func TestPathNameAndConflicts(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/1.0/x/a%00b", nil)
	r.SetPathValue("name", "a\x00b")
	if _, err := PathName(r); err == nil {
		t.Error("a name with NUL was accepted")
	}
	if !IsConflict(fmt.Errorf("write: %w", store.ErrConflict)) || IsConflict(errors.New("other")) {
		t.Error("IsConflict")
	}
	if !IsUnique(errors.New("UNIQUE constraint failed: remotes.name")) || IsUnique(nil) {
		t.Error("IsUnique")
	}
	for want, err := range map[int]error{400: BadRequest("x"), 404: NotFound("x"), 409: Conflict("x %d", 1), 503: Unavailable("x")} {
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != want {
			t.Errorf("%v: want an API error %d", err, want)
		}
	}
}

// LXD's API filtering: eq/ne, and/or/not, dotted fields into maps whose keys hold dots.
func TestFilter(t *testing.T) {
	obj := map[string]any{"name": "c1", "status": "Running", "location": "node2",
		"config": map[string]string{"boot.autostart": "true"}, "state": map[string]any{"pid": 42}}
	for expr, want := range map[string]bool{
		"":           true,
		"name eq c1": true,
		"name ne c1": false,
		"location eq node2 and status eq Running": true,
		"location eq node1 or status eq Running":  true,
		"not location eq node2":                   false,
		"config.boot.autostart eq true":           true,
		"state.pid eq 42":                         true,
		"missing eq x":                            false,
	} {
		r := httptest.NewRequest(http.MethodGet, "/1.0/instances?filter="+url.QueryEscape(expr), nil)
		f, err := ParseFilter(r)
		if err != nil {
			t.Fatalf("%q: %v", expr, err)
		}
		if got := f.Match(obj); got != want {
			t.Errorf("%q matches %v, want %v", expr, got, want)
		}
	}
	for _, bad := range []string{"name eq", "name gt 3", "name eq c1 c2 eq x"} {
		r := httptest.NewRequest(http.MethodGet, "/1.0/instances?filter="+url.QueryEscape(bad), nil)
		if _, err := ParseFilter(r); !errors.Is(err, api.ErrBadRequest) {
			t.Errorf("%q: err %v, want a bad request", bad, err)
		}
	}
}

// Collections answer URLs at recursion 0 and objects at 1, and refuse other levels.
func TestWriteList(t *testing.T) {
	type obj struct{ Name string }
	items := []obj{{"a b"}, {"c"}}
	for q, want := range map[string]string{
		"":            `["/1.0/things/a%20b","/1.0/things/c"]`,
		"recursion=1": `[{"Name":"a b"},{"Name":"c"}]`,
	} {
		w := httptest.NewRecorder()
		if err := WriteList(w, httptest.NewRequest(http.MethodGet, "/1.0/things?"+q, nil), "/1.0/things", items, func(o obj) string { return o.Name }); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(w.Body.String(), `"metadata":`+want) {
			t.Errorf("?%s: %s, want metadata %s", q, w.Body.String(), want)
		}
	}
	if err := WriteList(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/1.0/things?recursion=7", nil), "/1.0/things", items, func(o obj) string { return o.Name }); !errors.Is(err, api.ErrBadRequest) {
		t.Errorf("recursion=7: %v", err)
	}
}

// LXD's request bodies decode into the API types with every field LXD's clients send
// (`lxc remote add --password` sends restricted, projects and token), while a field LXD
// does not have is refused naming it.
func TestDecodeLXDBodies(t *testing.T) {
	lxdBody := `{"name":"","type":"client","restricted":false,"projects":null,"certificate":"","password":"pw","token":false}`
	var cp api.CertificatesPost
	if err := DecodeBody(httptest.NewRequest(http.MethodPost, "/1.0/certificates", strings.NewReader(lxdBody)), &cp); err != nil {
		t.Fatalf("LXD's certificate body: %v", err)
	}
	var vp api.StorageVolumesPost
	volBody := `{"name":"v","type":"custom","config":{},"description":"","content_type":"filesystem","source":{"name":"","type":"","pool":""}}`
	if err := DecodeBody(httptest.NewRequest(http.MethodPost, "/1.0/storage-pools/p/volumes", strings.NewReader(volBody)), &vp); err != nil {
		t.Fatalf("LXD's volume body: %v", err)
	}
	err := DecodeBody(httptest.NewRequest(http.MethodPost, "/1.0/certificates", strings.NewReader(`{"name":"x","bogus_field":1}`)), &cp)
	if !errors.Is(err, api.ErrBadRequest) || !strings.Contains(err.Error(), `"bogus_field"`) {
		t.Fatalf("unknown field: %v, want a 400 naming it", err)
	}
}

// TestChangedKey: the first differing key in sorted order, a key on one side only counts,
// and the keys mayChange allows are skipped.
func TestChangedKey(t *testing.T) {
	a := map[string]string{"b": "1", "c": "1", "user.x": "1"}
	for _, c := range []struct {
		b         map[string]string
		mayChange func(string) bool
		want      string
	}{
		{map[string]string{"b": "1", "c": "1", "user.x": "1"}, nil, ""},
		{map[string]string{"b": "1", "c": "2", "user.x": "1"}, nil, "c"},
		{map[string]string{"a": "1", "b": "1", "c": "1", "user.x": "1"}, nil, "a"},
		{map[string]string{"b": "1", "c": "1"}, nil, "user.x"},
		{map[string]string{"b": "1", "c": "1", "user.x": "2"}, func(k string) bool { return strings.HasPrefix(k, "user.") }, ""},
		{map[string]string{"b": "2", "user.x": "2"}, func(k string) bool { return strings.HasPrefix(k, "user.") }, "b"},
	} {
		got, ok := ChangedKey(a, c.b, c.mayChange)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("ChangedKey(%v, %v) = %q, %v; want %q", a, c.b, got, ok, c.want)
		}
	}
}

// SyncBody writes what json.Encoder wrote for the envelope before (the metadata encoded
// once, then compacted into api.Response): byte for byte, HTML escaping included.
func TestSyncBodyMatchesEnvelope(t *testing.T) {
	for _, meta := range []any{
		nil,
		map[string]string{"a": "<b> & \"c\"", "u": "\u2028é"},
		api.Server{APIStatus: "stable", Config: map[string]string{"k": "v"}, Environment: api.Environment{Addresses: []string{}}},
		[]string{},
		json.RawMessage(`{ "spaced" : [1, 2] }`),
	} {
		raw, err := json.Marshal(meta)
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(api.Response{Type: "sync", Status: "Success", StatusCode: http.StatusOK, Metadata: raw}); err != nil {
			t.Fatal(err)
		}
		got, err := SyncBody(meta)
		if err != nil || !bytes.Equal(got, want.Bytes()) {
			t.Errorf("SyncBody(%#v) = %q, %v; want %q", meta, got, err, want.Bytes())
		}
	}
}
