//go:build !jepsen_mutation_localread

package store

// mutationLocalRead is off in every real build (see mutation_localread.go).
const mutationLocalRead = false
