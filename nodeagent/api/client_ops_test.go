package api

import (
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func answer(code int, body string) *http.Response {
	return &http.Response{StatusCode: code, Body: io.NopCloser(strings.NewReader(body))}
}

// A sync answer is decoded in one pass (decodeSync) to what the general path decodes; an
// async answer, an error answer and a body that is not an orch daemon's sync answer take
// the general path.
func TestDecodeEnvelope(t *testing.T) {
	sync := `{"type":"sync","status":"Success","status_code":200,"metadata":{"api_status":"stable","config":{"k":"v"},"environment":{"server_name":"n1","addresses":["a"]}}}` + "\n"
	var one, two Server
	if async, err := decodeEnvelope(answer(200, sync), &one, &Operation{}); async || err != nil {
		t.Fatalf("sync answer: async %v, %v", async, err)
	}
	if !decodeSync([]byte(sync), &Server{}) {
		t.Error("an orch sync answer did not take the one-pass path")
	}
	reordered := `{"status":"Success","metadata":{"api_status":"stable","config":{"k":"v"},"environment":{"server_name":"n1","addresses":["a"]}},"type":"sync"}`
	if decodeSync([]byte(reordered), &two) {
		t.Error("an answer of another shape took the one-pass path")
	}
	if _, err := decodeEnvelope(answer(200, reordered), &two, &Operation{}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(one, two) || one.Config["k"] != "v" || one.Environment.ServerName != "n1" {
		t.Errorf("one pass %+v, general path %+v", one, two)
	}

	var op Operation
	async, err := decodeEnvelope(answer(202, `{"type":"async","status":"Operation created","status_code":100,"metadata":{"id":"x1","class":"task"}}`), &Server{}, &op)
	if !async || err != nil || op.ID != "x1" {
		t.Errorf("async answer: async %v, op %+v, %v", async, op, err)
	}
	_, err = decodeEnvelope(answer(404, `{"type":"error","error":"not found","error_code":404}`), &Server{}, &op)
	if e, ok := err.(*Error); !ok || e.Code != 404 || e.Message != "not found" {
		t.Errorf("error answer: %v", err)
	}
	_, err = decodeEnvelope(answer(200, `{"type":"sync","metadata":{"config":"not a map"}}`), &Server{}, &op)
	if err == nil {
		t.Error("a sync answer whose metadata does not fit: no error")
	}
}

// TestOperationFinal: an operation ends at Success, Failure or Cancelled, by its code or,
// from a server that sent none, by its status's name; Cancelling is not an end.
func TestOperationFinal(t *testing.T) {
	for _, c := range []struct {
		op    Operation
		final bool
	}{
		{Operation{StatusCode: Running, Status: "Running"}, false},
		{Operation{StatusCode: Cancelling, Status: "Cancelling"}, false},
		{Operation{Status: "Cancelling"}, false},
		{Operation{Status: "Pending"}, false},
		{Operation{StatusCode: Cancelled, Status: "Cancelled"}, true},
		{Operation{Status: "Failure"}, true},
		{Operation{StatusCode: Success}, true},
	} {
		if got := c.op.Final(); got != c.final {
			t.Errorf("%+v: Final() = %v, want %v", c.op, got, c.final)
		}
	}
}
