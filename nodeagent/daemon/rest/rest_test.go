package rest

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
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
