//go:build jepsen_mutation_localread

package store

// mutationLocalRead is a known bug for integration/jepsen's mutation check: ReadIndex
// answers on every member with its own applied index, so reads come from the local
// replica with no leader involved.
const mutationLocalRead = true
