package epoch

import (
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orch/internal/wait"
	"orch/nodeagent/api"
	"orch/nodeagent/localdb"
)

// The fence on real members (raft handshakes, API headers, a recovered cluster refusing
// the old epoch) is exercised by integration/cluster's epoch tests; this pins Judge's
// decisions on a real node-local database.

func newFence(t *testing.T, e api.Epoch) (*Fence, *localdb.DB, chan struct{}) {
	t.Helper()
	ldb, err := localdb.Open(filepath.Join(t.TempDir(), "local.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ldb.Close() })
	if err := ldb.SetEpoch(e); err != nil {
		t.Fatal(err)
	}
	retired := make(chan struct{}, 2)
	f := New(ldb, func() string { return "m1" }, slog.New(slog.NewTextHandler(io.Discard, nil)), func() { retired <- struct{}{} })
	if err := f.Load(); err != nil {
		t.Fatal(err)
	}
	return f, ldb, retired
}

func TestJudge(t *testing.T) {
	e2 := api.Epoch{Number: 2, Member: "m1", Time: time.UnixMilli(2000).UTC()}
	f, ldb, retired := newFence(t, e2)
	if cut, err := f.Judge("m2", e2); cut != nil || err != nil {
		t.Errorf("same epoch: %v %v", cut, err)
	}
	cut, err := f.Judge("m3", api.Epoch{Number: 1, Member: "m3"})
	if !errors.Is(err, ErrEpoch) || cut == nil || cut.Epoch != e2 || cut.By != "m1" || !strings.Contains(err.Error(), "member m3 belongs to") {
		t.Errorf("older peer: %v %v; want it told it is cut off by m1's epoch", cut, err)
	}
	if _, err := f.Judge("m4", api.Epoch{Number: 2, Member: "m4"}); !errors.Is(err, ErrEpoch) || !strings.Contains(err.Error(), "two recoveries diverged") {
		t.Errorf("diverged epochs: %v", err)
	}
	if f.CutOff() != nil {
		t.Fatal("cut off by an older or diverged peer")
	}

	e3 := api.Epoch{Number: 3, Member: "m5"}
	if _, err := f.Judge("m5", e3); !errors.Is(err, ErrEpoch) {
		t.Errorf("newer peer: %v", err)
	}
	if c := f.CutOff(); c == nil || c.Epoch.Number != 3 || c.By != "m5" {
		t.Fatalf("after a newer peer: cut off %+v", c)
	}
	if c, _ := ldb.CutOff(); c == nil || c.By != "m5" {
		t.Errorf("the cut-off is not persisted: %+v", c)
	}
	wait.For(t, 5*time.Second, "the raft node retired", func() error {
		if len(retired) == 0 {
			return errors.New("retire not called")
		}
		return nil
	})
	f.BecomeCutOff(api.CutOff{Epoch: api.Epoch{Number: 4}, By: "m6"})
	if f.CutOff().By != "m5" || len(retired) != 1 {
		t.Errorf("a second cut-off replaced the first (%+v) or retired again (%d)", f.CutOff(), len(retired))
	}
	if _, err := f.Judge("m2", e2); !errors.Is(err, ErrEpoch) || !strings.Contains(err.Error(), "m1 is cut off") {
		t.Errorf("a cut-off member admitted a peer: %v", err)
	}
	f.Reset()
	if f.CutOff() != nil || f.Current() != (api.Epoch{}) {
		t.Errorf("after Reset: %+v %+v", f.CutOff(), f.Current())
	}
}
