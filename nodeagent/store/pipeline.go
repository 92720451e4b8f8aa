package store

import (
	"time"

	"github.com/hashicorp/raft"
)

// pipelineStall is how long sending one AppendEntries on a replication pipeline may
// block before the pipeline is closed. A healthy follower answers in milliseconds; the
// write itself has the transport's 10 s deadline.
const pipelineStall = 2 * time.Second

// stallGuardedPipeline closes its pipeline when an AppendEntries blocks for longer than
// pipelineStall. hashicorp/raft (v1.8.0) deadlocks otherwise: its decoder of pipelined
// responses (pipelineDecode) returns on the first refused append (a follower whose log
// differs or could not store the entries) or newer term, and stops reading responses;
// the transport's reader then blocks handing over the next response, the in-flight
// queue fills, and the sender (pipelineReplicate) blocks in AppendEntries for ever — it
// alone would close the pipeline. Replication to that follower stopped for the rest of
// the leadership while heartbeats went on (so the follower never stood for election: its
// replica stayed behind), and Shutdown hung waiting for the sender
// (TestLinearizableHistory). Closing the pipeline makes AppendEntries fail; raft then
// replicates without a pipeline and starts a new one.
type stallGuardedPipeline struct {
	raft.AppendPipeline
	stall time.Duration
}

// AppendEntries implements raft.AppendPipeline.
func (p stallGuardedPipeline) AppendEntries(args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) (raft.AppendFuture, error) {
	guard := time.AfterFunc(p.stall, func() { _ = p.AppendPipeline.Close() })
	defer guard.Stop()
	return p.AppendPipeline.AppendEntries(args, resp)
}

// AppendEntriesPipeline implements raft.Transport with a stall-guarded pipeline whose
// answers record the follower's progress.
func (t *ballotTransport) AppendEntriesPipeline(id raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	p, err := t.NetworkTransport.AppendEntriesPipeline(id, target)
	if err != nil {
		return nil, err
	}
	guarded := stallGuardedPipeline{AppendPipeline: p, stall: pipelineStall}
	return newProgressPipeline(commitLimitedPipeline{AppendPipeline: guarded, t: t}, id, t.progress, t.contacts), nil
}

// commitLimitedPipeline tells followers no commit index beyond the leader's durable one
// (ballotTransport.limitCommit).
type commitLimitedPipeline struct {
	raft.AppendPipeline
	t *ballotTransport
}

// AppendEntries implements raft.AppendPipeline.
func (p commitLimitedPipeline) AppendEntries(args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) (raft.AppendFuture, error) {
	p.t.limitCommit(args)
	return p.AppendPipeline.AppendEntries(args, resp)
}
