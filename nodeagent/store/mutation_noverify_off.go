//go:build !jepsen_mutation_noverify

package store

// mutationNoVerify is off in every real build (see mutation_noverify.go).
const mutationNoVerify = false
