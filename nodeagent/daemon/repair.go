package daemon

import (
	"context"
	"sync"
	"time"

	"orch/nodeagent/store"
)

// A member whose database breaks (SQLite cannot commit an applied batch: disk full, I/O
// error; the raft log cannot store entries; a corrupt file) hands leadership over and
// stops following the log (store, "A broken member"). It used to stay so until someone
// restarted the daemon. The store watcher mends it in-process: it stops the member's
// loops, closes the store and opens it again, which replays the log after the database's
// last position (or restores the newest snapshot first when the file is behind it or
// corrupt); raft then catches it up from the leader. While the disk is still full the
// reopening fails or the store breaks again: it is retried with a growing pause. An entry
// of a newer codec version is not mended by reopening: that needs a newer binary.

// The watcher wakes when the store says it broke (store.Breaks); storeCheck is how often
// it looks anyway, for a store swapped under it (it polled every 250 ms before: four
// wake-ups a second on an idle member, whose CPU is mostly wake-ups). repairPause bounds
// its pause between attempts.
const (
	storeCheck     = 5 * time.Second
	repairPauseMin = 500 * time.Millisecond
	repairPauseMax = 10 * time.Second
)

// storeWatch is the watcher's lifecycle: startLoops starts it, stopMember stops it before
// touching the store, so a repair never reopens a store behind a shutdown.
type storeWatch struct {
	cancel context.CancelFunc
	done   sync.WaitGroup
}

// startWatch starts the store watcher unless it runs.
func (d *Daemon) startWatch() {
	if d.watch.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.watch.cancel = cancel
	d.watch.done.Add(1)
	go func() { defer d.watch.done.Done(); d.watchStore(ctx) }()
}

// stopWatch stops the store watcher and waits for a repair under way to give up.
func (d *Daemon) stopWatch() {
	if d.watch.cancel == nil {
		return
	}
	d.watch.cancel()
	d.watch.done.Wait()
	d.watch.cancel = nil
}

// watchStore reopens the store whenever it breaks, until ctx ends.
func (d *Daemon) watchStore(ctx context.Context) {
	pause := repairPauseMin
	var waiting *store.Store // a store broken by an entry only a newer binary reads
	for {
		if !d.awaitBreak(ctx, waiting) {
			return
		}
		st := d.store()
		if st == nil {
			continue
		}
		cause := st.Broken()
		if cause == nil {
			continue
		}
		if store.NeedsUpgrade(cause) {
			waiting = st
			continue
		}
		repaired := time.Now()
		if !d.reopenStore(ctx, st, cause, &pause) {
			return
		}
		if time.Since(repaired) > time.Minute {
			pause = repairPauseMin
		}
	}
}

// awaitBreak waits until the current store breaks (unless it is ignored) or storeCheck
// passes; false when ctx ended.
func (d *Daemon) awaitBreak(ctx context.Context, ignored *store.Store) bool {
	var breaks <-chan struct{}
	if st := d.store(); st != nil && st != ignored {
		breaks = st.Breaks()
	}
	t := time.NewTimer(storeCheck)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-breaks:
	case <-t.C:
	}
	return true
}

// reopenStore closes the broken store st and opens it again, retrying while that fails;
// it reports false when ctx ended first (the daemon stops the member). It gives up when
// someone else took the store away meanwhile (cut off by a recovery: retire).
func (d *Daemon) reopenStore(ctx context.Context, st *store.Store, cause error, pause *time.Duration) bool {
	d.log.Error("this member's database is broken: reopening it in-process from the raft snapshot and log", "member", d.memberName(), "cause", cause)
	d.repairing.Store(true)
	defer d.repairing.Store(false)
	d.loopMu.Lock()
	d.stopMemberLoopsLocked()
	took := d.st.CompareAndSwap(st, nil)
	d.loopMu.Unlock()
	if !took {
		return true
	}
	if err := st.Close(); err != nil {
		d.log.Warn("closing the broken database", "err", err)
	}
	for attempt := 1; ; attempt++ {
		if !sleepCtx(ctx, *pause) {
			return false
		}
		*pause = min(2**pause, repairPauseMax)
		done, err := d.reopenOnce()
		if done {
			return true
		}
		d.log.Warn("reopening the database failed; retrying", "member", d.memberName(), "attempt", attempt, "next in", *pause, "err", err)
	}
}

// reopenOnce opens the store and starts the member's loops over it; done is false when
// opening failed (err says why).
func (d *Daemon) reopenOnce() (done bool, err error) {
	d.loopMu.Lock()
	defer d.loopMu.Unlock()
	if d.cutOffState() != nil || d.store() != nil {
		return true, nil
	}
	if err := d.openStore(); err != nil {
		return false, err
	}
	d.startMemberLoopsLocked()
	st := d.store()
	last, _ := st.LastIndexTerm()
	d.log.Info("database reopened: replaying the log and catching up from the leader", "member", d.memberName(),
		"applied", st.AppliedIndex(), "last log index", last)
	return true, nil
}

// sleepCtx waits for d or ctx; it reports false when ctx ended.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
