package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"orch/internal/wait"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// regInput is one register operation: a write of value, or a read.
type regInput struct {
	write bool
	value int64
}

// registerModel is a single integer register starting at 0.
var registerModel = porcupine.Model{
	Init: func() any { return int64(0) },
	Step: func(state, input, output any) (bool, any) {
		in := input.(regInput)
		if in.write {
			return true, in.value
		}
		return output.(int64) == state.(int64), state
	},
}

// TestLinearizableHistory checks with porcupine that writes on the leader and
// reads served by followers (ReadIndex on the leader, WaitApplied on the
// follower) form a linearizable register history, across leadership transfers.
func TestLinearizableHistory(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.exec(Request{{SQL: "CREATE TABLE IF NOT EXISTS reg (id INTEGER PRIMARY KEY, v INTEGER)"}, {SQL: "INSERT OR REPLACE INTO reg VALUES (1, 0)"}})
	c.waitConverged()
	start := time.Now()
	var (
		mu      sync.Mutex
		history []porcupine.Operation
		nextVal atomic.Int64
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	record := func(op porcupine.Operation) {
		mu.Lock()
		defer mu.Unlock()
		history = append(history, op)
	}
	now := func() int64 { return int64(time.Since(start)) }
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if op, ok := linWrite(c, w, nextVal.Add(1), now); ok {
					record(op)
				}
			}
		}()
	}
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if op, ok := linRead(c, 10+r, now); ok {
					record(op)
				}
			}
		}()
	}
	ops := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(history)
	}
	waitOps := func(more int) {
		target := ops() + more
		wait.For(t, 30*time.Second, "operations", func() error {
			if n := ops(); n < target {
				return fmt.Errorf("%d operations, want %d", n, target)
			}
			return nil
		})
	}
	for range 2 {
		waitOps(1000)
		if err := c.leader().store.TransferLeadership(testContext(t, 10*time.Second)); err != nil {
			t.Logf("transfer: %v", err)
		}
	}
	waitOps(1000)
	close(stop)
	wg.Wait()
	reads := 0
	for _, op := range history {
		if !op.Input.(regInput).write {
			reads++
		}
	}
	t.Logf("%d operations, %d reads", len(history), reads)
	if reads < 50 {
		t.Fatalf("only %d reads completed", reads)
	}
	if res := porcupine.CheckOperationsTimeout(registerModel, history, 60*time.Second); res != porcupine.Ok {
		t.Fatalf("history is not linearizable: %v", res)
	}
}

// linWrite writes v through the current leader. A write with an unknown
// outcome is recorded as never returning, so it may or may not take effect.
func linWrite(c *cluster, client int, v int64, now func() int64) (porcupine.Operation, bool) {
	for _, s := range c.stores() {
		if !s.IsLeader() {
			continue
		}
		call := now()
		_, err := s.Exec(context.Background(), stmt("UPDATE reg SET v = ? WHERE id = 1", v))
		op := porcupine.Operation{ClientId: client, Input: regInput{write: true, value: v}, Call: call, Return: now()}
		switch {
		case err == nil:
			return op, true
		case errors.Is(err, ErrNotLeader):
			return op, false
		default:
			op.Return = math.MaxInt64
			return op, true
		}
	}
	return porcupine.Operation{}, false
}

// linRead reads the register on a follower after ReadIndex on the leader.
func linRead(c *cluster, client int, now func() int64) (porcupine.Operation, bool) {
	stores := c.stores()
	call := now()
	var leader *Store
	for _, s := range stores {
		if s.IsLeader() {
			leader = s
		}
	}
	if leader == nil {
		return porcupine.Operation{}, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	idx, err := leader.ReadIndex(ctx)
	if err != nil {
		return porcupine.Operation{}, false
	}
	reader := stores[client%len(stores)]
	if reader == leader {
		reader = stores[(client+1)%len(stores)]
	}
	if err := reader.WaitApplied(ctx, idx); err != nil {
		return porcupine.Operation{}, false
	}
	var v int64
	if err := reader.DB().QueryRowContext(ctx, "SELECT v FROM reg WHERE id = 1").Scan(&v); err != nil {
		return porcupine.Operation{}, false
	}
	return porcupine.Operation{ClientId: client, Input: regInput{}, Output: v, Call: call, Return: now()}, true
}
