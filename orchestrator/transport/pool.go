package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
)

// DefaultForks is ForEach's parallelism when forks <= 0: enough that 50 hosts go at once.
const DefaultForks = 64

// ForEach calls fn for every item, at most forks at a time, and returns fn's errors
// indexed like items (nil entries for successes). It stops starting new items once ctx
// ends; items not started get ctx's error.
func ForEach[T any](ctx context.Context, items []T, forks int, fn func(context.Context, T) error) []error {
	if forks <= 0 {
		forks = DefaultForks
	}
	errs := make([]error, len(items))
	sem := make(chan struct{}, forks)
	var wg sync.WaitGroup
	for i, it := range items {
		if err := ctx.Err(); err != nil {
			errs[i] = err // select below picks at random when a slot is free too
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			errs[i] = ctx.Err()
			continue
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = fn(ctx, it)
		}()
	}
	wg.Wait()
	return errs
}

// Pool keeps one Conn per host for a run: Get dials on first use (concurrent callers for
// one host share a single dial) and returns the same Conn afterwards. All Conns share
// the pool's FileCache, so a pushed file is hashed and compressed once per run.
type Pool struct {
	files *FileCache
	log   *slog.Logger

	mu    sync.Mutex
	conns map[string]*poolEntry
}

// poolEntry is one host's connection, or the dial in progress.
type poolEntry struct {
	ready chan struct{}
	conn  *Conn
	err   error
}

// NewPool returns an empty pool logging to logger (nil: discard).
func NewPool(logger *slog.Logger) *Pool {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Pool{files: NewFileCache(), log: logger, conns: map[string]*poolEntry{}}
}

// Get returns the pool's connection for cfg, dialing it if needed. A failed dial is not
// remembered: the next Get tries again.
func (p *Pool) Get(ctx context.Context, cfg Config) (*Conn, error) {
	if cfg.Files == nil {
		cfg.Files = p.files
	}
	if cfg.Logger == nil {
		cfg.Logger = p.log
	}
	key := poolKey(cfg)
	p.mu.Lock()
	e, ok := p.conns[key]
	if !ok {
		e = &poolEntry{ready: make(chan struct{})}
		p.conns[key] = e
		p.mu.Unlock()
		e.conn, e.err = Dial(ctx, cfg)
		p.finish(key, e)
	} else {
		p.mu.Unlock()
	}
	select {
	case <-e.ready:
		return e.conn, e.err
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: %w", cfg.Name, ctx.Err())
	}
}

// finish publishes a dial's outcome, forgetting failures.
func (p *Pool) finish(key string, e *poolEntry) {
	if e.err != nil {
		p.mu.Lock()
		delete(p.conns, key)
		p.mu.Unlock()
	}
	close(e.ready)
}

// Close closes every connection of the pool.
func (p *Pool) Close() error {
	p.mu.Lock()
	entries := p.conns
	p.conns = map[string]*poolEntry{}
	p.mu.Unlock()
	var errs []error
	for _, e := range entries {
		<-e.ready
		if e.conn != nil {
			errs = append(errs, e.conn.Close())
		}
	}
	return errors.Join(errs...)
}

// poolKey identifies a destination: name, user, address and jump chain.
func poolKey(cfg Config) string {
	k := cfg.Name + "|" + cfg.User + "@" + cfg.Host + ":" + strconv.Itoa(cfg.Port) + "|" + strconv.FormatBool(cfg.Become)
	if cfg.Jump != nil {
		k += ">" + poolKey(*cfg.Jump)
	}
	return k
}
