package images

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"testing"

	"orch/modules/image"
	"orch/nodeagent/api"
)

// The images domain's end-to-end path (import, launch from a remote, replication, delete)
// is exercised by integration/instances TestInstances on real members; these pin the
// pieces that decide numbers and status codes.

func TestReplicaTarget(t *testing.T) {
	cases := []struct {
		v       string
		members int
		want    int
	}{
		{"", 3, 1}, {"0", 3, 1}, {"2", 3, 2}, {"5", 3, 3}, {"-1", 4, 4}, {"3", 3, 3},
	}
	for _, c := range cases {
		if got := replicaTarget(map[string]string{"cluster.images_minimal_replica": c.v}, c.members); got != c.want {
			t.Errorf("images_minimal_replica=%q with %d members: %d, want %d", c.v, c.members, got, c.want)
		}
	}
}

func TestDriverErrorCodes(t *testing.T) {
	cases := []struct {
		err  error
		want int
	}{
		{fmt.Errorf("show: %w", image.ErrNotFound), http.StatusNotFound},
		{fs.ErrNotExist, http.StatusNotFound},
		{fmt.Errorf("import: %w", image.ErrInvalid), http.StatusBadRequest},
		{errors.New("rootfs: not a regular file"), http.StatusBadRequest},
		{api.Errorf(http.StatusTeapot, "kept"), http.StatusTeapot},
		{errors.New("disk full"), 0},
	}
	for _, c := range cases {
		got := driverError(c.err)
		var ae *api.Error
		code := 0
		if errors.As(got, &ae) {
			code = ae.Code
		}
		if code != c.want || got.Error() != c.err.Error() {
			t.Errorf("driverError(%v) = %v (code %d), want code %d and the same message", c.err, got, code, c.want)
		}
	}
	if driverError(nil) != nil {
		t.Error("driverError(nil) is not nil")
	}
}
