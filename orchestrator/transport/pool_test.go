package transport

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"orch/orchestrator/transport/sshdtest"
)

func TestForEachBoundsParallelism(t *testing.T) {
	items := make([]int, 50)
	for i := range items {
		items[i] = i
	}
	var cur, peak atomic.Int32
	gate := make(chan struct{})
	var started sync.WaitGroup
	started.Add(5)
	go func() { started.Wait(); close(gate) }()
	errs := ForEach(context.Background(), items, 5, func(ctx context.Context, i int) error {
		n := cur.Add(1)
		defer cur.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		if i < 5 {
			started.Done()
			<-gate // the first five run together
		}
		if i == 7 {
			return errors.New("seven")
		}
		return nil
	})
	if peak.Load() != 5 {
		t.Fatalf("peak parallelism %d, want 5", peak.Load())
	}
	for i, err := range errs {
		if (err != nil) != (i == 7) {
			t.Fatalf("errs[%d] = %v", i, err)
		}
	}
}

func TestForEachStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	errs := ForEach(ctx, []int{1, 2, 3}, 1, func(ctx context.Context, i int) error {
		cancel()
		return nil
	})
	if errs[0] != nil || !errors.Is(errs[2], context.Canceled) {
		t.Fatalf("errs = %v", errs)
	}
}

func TestPoolDialsOncePerHost(t *testing.T) {
	h := startHost(t, sshdtest.Options{})
	p := NewPool(nil)
	t.Cleanup(func() { p.Close() })
	conns := make([]*Conn, 10)
	errs := ForEach(testCtx(t), []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 0, func(ctx context.Context, i int) error {
		var err error
		conns[i], err = p.Get(ctx, h.cfg)
		return err
	})
	for i, err := range errs {
		if err != nil || conns[i] != conns[0] {
			t.Fatalf("Get %d: %v (same conn: %v)", i, err, conns[i] == conns[0])
		}
	}
	if conns[0].Config().Files != p.files {
		t.Fatal("pooled conn does not share the pool's file cache")
	}
	run(t, conns[0], "true", RunOptions{})
	bad := h.cfg
	bad.Name, bad.KeyFiles = "bad", []string{sshdtest.NewUserKey(t).Path}
	if _, err := p.Get(testCtx(t), bad); !errors.Is(err, ErrAuth) {
		t.Fatalf("got %v, want ErrAuth", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := conns[0].Run(testCtx(t), "true", RunOptions{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("after pool close: got %v, want ErrClosed", err)
	}
}
