package store

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// The leader's appends are made durable beside their replication (raft thesis §10.2.1:
// the leader may write to its disk in parallel with sending to its followers). hashicorp
// raft stores the leader's entries — raft-wal's write and fdatasync — before it hands them
// to the replicators, so every write waited for two fdatasyncs in a row, the leader's and
// then a follower's (the PATCH rows' cycle: 0.28 ms of the leader's fdatasync, then the
// send, then 0.39 ms until the follower's answer). Here, on the leader, raft-wal's write
// goes to the file at once and its fdatasync is deferred to a round run beside the
// replication (deferredSyncs). raft then counts the leader's copy in the quorum before it
// is durable, so the store keeps a quorum of durable copies true for everything seen
// outside this member, by two rules:
//
//   - the FSM applies an entry only once the leader's copy is durable (waitDurable): no
//     write is answered, and no read on this member sees it, before it is durable here
//     and on a follower (whose answer came after its own fdatasync);
//   - no AppendEntries tells a follower a commit index beyond the leader's durable index
//     (ballotTransport.limitCommit): no follower applies an entry the leader could still
//     lose with its power.
//
// A power loss of the leader can then lose only entries that nobody applied or was
// answered for: as if they had never been committed. Only command entries stored while
// this member leads are deferred; configuration, barrier and no-op entries, a follower's
// appends and every other change of the log first finish the rounds pending and then sync
// as raft-wal does (a follower must not acknowledge what it could lose). A failed
// deferred fdatasync breaks the member (the entries' writers get ErrOutcomeUnknown).
type deferredSyncs struct {
	// leading reports whether this member leads (raft's state): StoreLogs is called
	// from raft's main goroutine, which also changes that state.
	leading atomic.Pointer[func() bool]
	// deferring is set while an append's syncs are being deferred (walStore.wmu held).
	deferring atomic.Bool

	mu      sync.Mutex
	files   []*datasyncFile // appended to with their sync deferred
	written uint64          // the last index stored with its sync deferred
	err     error           // the first failed sync: every later one fails too

	round   sync.Mutex    // one round of syncs at a time; held across a sync-mode change
	durable atomic.Uint64 // every entry at or below it is durable in the log
	kick    chan struct{} // starts a round (capacity 1)
	stop    chan struct{}
	done    chan struct{}

	closeOnce sync.Once

	// beforeRound, when set (tests), runs before each round's fdatasyncs; an error fails
	// the round as a failed fdatasync would.
	beforeRound func() error
	// deferredCount counts the appends whose sync was deferred (tests).
	deferredCount atomic.Int64
}

func newDeferredSyncs() *deferredSyncs {
	d := &deferredSyncs{kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go d.run()
	return d
}

// setLeading sets how the member knows it leads; until then every append syncs.
func (d *deferredSyncs) setLeading(fn func() bool) { d.leading.Store(&fn) }

// mayDefer reports whether an append of logs may have its sync deferred: the member leads
// and every entry is a command.
func (d *deferredSyncs) mayDefer(logs []*raft.Log) bool {
	fn := d.leading.Load()
	if fn == nil || len(logs) == 0 || !(*fn)() {
		return false
	}
	for _, l := range logs {
		if l.Type != raft.LogCommand {
			return false
		}
	}
	return true
}

// add records f as appended to with its sync deferred (datasyncFile.Sync).
func (d *deferredSyncs) add(f *datasyncFile) {
	f.dirty.Store(true)
	d.mu.Lock()
	defer d.mu.Unlock()
	if !slices.Contains(d.files, f) {
		d.files = append(d.files, f)
	}
}

// stored records that the entries up to last were written with their syncs deferred, and
// starts a round.
func (d *deferredSyncs) stored(last uint64) {
	d.deferredCount.Add(1)
	d.mu.Lock()
	d.written = last
	d.mu.Unlock()
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// failure is the error of a failed round, nil if none failed.
func (d *deferredSyncs) failure() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// run makes deferred appends durable as they come.
func (d *deferredSyncs) run() {
	defer close(d.done)
	for {
		select {
		case <-d.kick:
			// The replicators were woken after this goroutine: let them hand the entries
			// to the followers before the fdatasync holds this member's processor (the
			// daemon runs Go code on one, procs.go; sysmon takes it back only late).
			runtime.Gosched()
			_ = d.flush()
		case <-d.stop:
			return
		}
	}
}

// flush runs a round: every file appended to so far is synced, and the index written so
// far becomes durable.
func (d *deferredSyncs) flush() error {
	d.round.Lock()
	defer d.round.Unlock()
	return d.flushLocked()
}

// flushLocked is flush with d.round held.
func (d *deferredSyncs) flushLocked() error {
	d.mu.Lock()
	files, written, err := d.files, d.written, d.err
	d.files = nil
	d.mu.Unlock()
	if err != nil {
		return err
	}
	if len(files) == 0 && written <= d.durable.Load() {
		return nil
	}
	if d.beforeRound != nil {
		if err := d.beforeRound(); err != nil {
			return d.fail(err)
		}
	}
	if err := d.syncAll(files); err != nil {
		return err
	}
	if written > d.durable.Load() {
		d.durable.Store(written)
	}
	return nil
}

// syncFiles syncs the files appended to with their syncs deferred, without a round (the
// index they hold becomes durable with the next round): raft-wal's meta database, before
// it commits, while raft-wal's write lock may be held by a change of the log waiting for
// this member's round lock.
func (d *deferredSyncs) syncFiles() error {
	d.mu.Lock()
	files, err := slices.Clone(d.files), d.err
	d.mu.Unlock()
	if err != nil {
		return err
	}
	return d.syncAll(files)
}

// syncAll runs the deferred syncs of files still pending; a failure is recorded (fail).
func (d *deferredSyncs) syncAll(files []*datasyncFile) error {
	for _, f := range files {
		if err := f.syncDeferred(); err != nil {
			return d.fail(err)
		}
	}
	return nil
}

// fail records a failed sync: every later round and append fails with it.
func (d *deferredSyncs) fail(err error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err == nil {
		d.err = fmt.Errorf("making the leader's raft log appends durable: %w", err)
	}
	return d.err
}

// changeLog runs a change of the log that syncs as raft-wal does (a follower's append, a
// configuration entry, a truncation): the rounds pending first, then the change; the log
// is durable up to its last index after it (last, called once the change is done).
func (d *deferredSyncs) changeLog(change func() error, last func() (uint64, error)) error {
	d.round.Lock()
	defer d.round.Unlock()
	if err := d.flushLocked(); err != nil {
		return err
	}
	if err := change(); err != nil {
		return err
	}
	i, err := last()
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.written = i
	d.mu.Unlock()
	d.durable.Store(i)
	return nil
}

// waitDurable returns once the entry at index is durable in the log, running a round
// itself when it is not yet (the FSM, before it applies the entry).
func (d *deferredSyncs) waitDurable(index uint64) error {
	if d.durable.Load() >= index {
		return nil
	}
	if err := d.flush(); err != nil {
		return err
	}
	if got := d.durable.Load(); got < index {
		return fmt.Errorf("raft log entry %d is not durable (the log is durable up to %d)", index, got)
	}
	return nil
}

// close ends the rounds, after a last one.
func (d *deferredSyncs) close() error {
	d.closeOnce.Do(func() { close(d.stop) })
	<-d.done
	return d.flush()
}
