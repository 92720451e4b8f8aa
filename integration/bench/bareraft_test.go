package bench

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"

	"orch/nodeagent/store"
)

// bareRaft is three hashicorp/raft nodes on raft-wal with a no-op FSM, one Apply per
// write: the floor the store's coalescing has to beat, measured in the same run.
type bareRaft struct{ nodes []*raft.Raft }

func newBareRaft(b testing.TB) *bareRaft {
	b.Helper()
	var conf raft.Configuration
	streams := make([]raft.StreamLayer, 3)
	for i := range streams {
		s, err := store.NewTCPLayer("127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		streams[i] = s
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter,
			ID: raft.ServerID(fmt.Sprint(i)), Address: raft.ServerAddress(s.Addr().String())})
	}
	br := &bareRaft{}
	for i, s := range streams {
		r, err := openBareNode(b, i, s)
		if err != nil {
			b.Fatal(err)
		}
		if err := r.BootstrapCluster(conf).Error(); err != nil {
			b.Fatal(err)
		}
		br.nodes = append(br.nodes, r)
	}
	return br
}

func openBareNode(b testing.TB, i int, s raft.StreamLayer) (*raft.Raft, error) {
	dir := b.TempDir()
	meta := &metadb.BoltMetaDB{}
	w, err := wal.Open(filepath.Join(dir), wal.WithMetaStore(meta))
	if err != nil {
		return nil, err
	}
	trans := raft.NewNetworkTransport(s, 3, 10*time.Second, io.Discard)
	cfg := raft.DefaultConfig()
	cfg.LocalID = raft.ServerID(fmt.Sprint(i))
	cfg.Logger = hclog.NewNullLogger()
	r, err := raft.NewRaft(cfg, nopFSM{}, w, w, raft.NewInmemSnapshotStore(), trans)
	if err != nil {
		return nil, errors.Join(err, w.Close(), meta.Close())
	}
	b.Cleanup(func() {
		_ = r.Shutdown().Error()
		_ = trans.Close()
		_ = w.Close()
		_ = meta.Close()
	})
	return r, nil
}

// leader waits for a leader.
func (br *bareRaft) leader() (*raft.Raft, error) {
	var l *raft.Raft
	_, err := waitFor(20*time.Second, "a bare raft leader", func() error {
		for _, r := range br.nodes {
			if r.State() == raft.Leader {
				l = r
				return nil
			}
		}
		return errCondition
	})
	return l, err
}

type nopFSM struct{}

func (nopFSM) Apply(*raft.Log) any                 { return nil }
func (nopFSM) Snapshot() (raft.FSMSnapshot, error) { return nopSnapshot{}, nil }
func (nopFSM) Restore(rc io.ReadCloser) error      { return rc.Close() }

type nopSnapshot struct{}

func (nopSnapshot) Persist(s raft.SnapshotSink) error { return s.Close() }
func (nopSnapshot) Release()                          {}
