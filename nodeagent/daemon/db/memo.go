package db

import (
	"sync/atomic"

	"orch/nodeagent/store"
)

// Replica is the state of this member's replica when a linearizable read may start: the
// open store and the index of the last entry applied to it. A read of the replica that
// starts after Replica was taken sees that state or a later one; while the store's
// applied index has not moved, every read sees exactly it. The zero Replica means the
// member reads nothing locally (its reads are forwarded to the leader).
type Replica struct {
	st      *store.Store
	applied uint64
}

// ReplicaOf is st's state now.
func ReplicaOf(st *store.Store) Replica { return Replica{st: st, applied: st.AppliedIndex()} }

// Local reports whether the read is served by this member's replica.
func (r Replica) Local() bool { return r.st != nil }

// Memo remembers one value computed from the database, with the key it was computed at
// (typically a Replica, with whatever else the value depends on): a value that only a
// write can change is then computed once per write instead of once per request. The
// value is shared by every caller that gets it: it must not be modified.
type Memo[K comparable, V any] struct {
	p atomic.Pointer[memoEntry[K, V]]
}

type memoEntry[K comparable, V any] struct {
	key K
	v   V
}

// Get returns the value remembered at key, ok false when there is none.
func (m *Memo[K, V]) Get(key K) (v V, ok bool) {
	if e := m.p.Load(); e != nil && e.key == key {
		return e.v, true
	}
	return v, false
}

// Put remembers v as the value at key, replacing any other.
func (m *Memo[K, V]) Put(key K, v V) { m.p.Store(&memoEntry[K, V]{key: key, v: v}) }
