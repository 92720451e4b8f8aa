//go:build !schemav2

package schema

// testUpdates is empty in production builds.
var testUpdates []string
