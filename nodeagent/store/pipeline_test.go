package store

import (
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// newTestTransport is a raft network transport on a loopback port.
func newTestTransport(t *testing.T) *raft.NetworkTransport {
	t.Helper()
	layer, err := NewTCPLayer("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: layer, MaxPool: 3, Timeout: 10 * time.Second, Logger: hclog.NewNullLogger()})
	t.Cleanup(func() { tr.Close() })
	return tr
}

// TestPipelineStallIsBroken: when raft's decoder of pipelined responses has stopped
// reading them (it returns on a refused append or a newer term), sending on the pipeline
// must fail within pipelineStall instead of blocking for ever (hashicorp/raft v1.8.0:
// replication to the follower stopped, and Shutdown hung). The follower here is a real
// transport answering every append; the test plays the stopped decoder by never reading
// the pipeline's responses.
func TestPipelineStallIsBroken(t *testing.T) {
	follower := newTestTransport(t)
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		for {
			select {
			case rpc := <-follower.Consumer():
				rpc.Respond(&raft.AppendEntriesResponse{Success: true}, nil)
			case <-stop:
				return
			}
		}
	}()
	none := func() error { return nil }
	leader := newBallotTransport(newTestTransport(t), none, none, stop)
	p, err := leader.AppendEntriesPipeline("follower", follower.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })

	sent := make(chan error, 1)
	start := time.Now()
	go func() {
		for i := range 10000 {
			req := &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax}, Term: 1, PrevLogEntry: uint64(i)}
			if _, err := p.AppendEntries(req, &raft.AppendEntriesResponse{}); err != nil {
				sent <- err
				return
			}
		}
		sent <- errors.New("10000 appends were sent although nobody read a response")
	}()
	select {
	case err := <-sent:
		if !errors.Is(err, raft.ErrPipelineShutdown) {
			t.Fatalf("sending on a pipeline whose responses nobody reads: %v; want raft.ErrPipelineShutdown", err)
		}
		t.Logf("the stalled pipeline was closed after %v: %v", time.Since(start).Round(time.Millisecond), err)
	case <-time.After(pipelineStall + 20*time.Second):
		p.Close() // releases the blocked sender
		t.Fatalf("sending on a pipeline whose responses nobody reads still blocked after %v", time.Since(start).Round(time.Millisecond))
	}
}
