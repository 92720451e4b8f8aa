package playbooks

// This file exports to modules outside the engine (playbooks/hostmods, orch's modules)
// the helpers the built-in modules use, so that there is one quoting and one argument check.

// ShellQuote quotes s as one word for a POSIX shell (the engine's own quoting; a leaf
// package may take it over).
func ShellQuote(s string) string { return shellQuote(s) }

// AllowArgs returns an error wrapping ErrArgs naming the arguments in args that module does
// not take, and the ones it does, as Ansible's "Unsupported parameters" does.
func AllowArgs(module string, args Args, allowed ...string) error {
	return allowArgs(module, args, allowed...)
}
