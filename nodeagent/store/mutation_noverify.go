//go:build jepsen_mutation_noverify

package store

// mutationNoVerify is a known bug for integration/jepsen's mutation check: ReadIndex skips
// confirming its leadership, so a deposed leader that still believes it leads serves stale
// reads.
const mutationNoVerify = true
