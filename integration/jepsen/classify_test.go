package jepsen

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"

	"orch/nodeagent/api"
)

// TestClassify: the errors that leave a write out of the history are those that prove it
// was not applied; every other error keeps it open (ambiguous).
func TestClassify(t *testing.T) {
	write, cas := opInput{Kind: opWrite, Key: "user.r0", Value: "a"}, opInput{Kind: opCAS, Key: "user.r0", Value: "a", ETag: `"1-x"`}
	dial := &net.OpError{Op: "dial", Err: errors.New("connection refused")}
	cases := []struct {
		name string
		in   opInput
		err  error
		want outcome
	}{
		{"acknowledged", write, nil, outOK},
		{"CAS refused (412)", cas, &api.Error{Code: http.StatusPreconditionFailed, Message: "etag mismatch"}, outFail},
		{"never dialled", write, fmt.Errorf("patch: %w", dial), 0},
		{"503 not applied", write, &api.Error{Code: http.StatusServiceUnavailable, Message: "no leader reachable"}, 0},
		{"503 may or may not", write, &api.Error{Code: http.StatusServiceUnavailable, Message: "the write may or may not have been applied"}, outUnknown},
		{"403 refused at the door (a member starting up)", write, &api.Error{Code: http.StatusForbidden, Message: "not authorized: client certificate not trusted"}, 0},
		{"EOF after sending", write, errors.New(`Patch "https://10.0.0.1:8443/1.0": EOF`), outUnknown},
		{"500", write, &api.Error{Code: http.StatusInternalServerError, Message: "outcome unknown: the write may have been committed"}, outUnknown},
	}
	for _, c := range cases {
		if got := classify(c.in, c.err); got != c.want {
			t.Errorf("%s: classify = %d, want %d", c.name, got, c.want)
		}
	}
}
