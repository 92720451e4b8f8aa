package playbooks

// This file exports to modules outside the engine (playbooks/hostmods, orch's modules) the
// argument check the built-in modules use, so that there is one.

// AllowArgs returns an error wrapping ErrArgs naming the arguments in args that module does
// not take, and the ones it does, as Ansible's "Unsupported parameters" does.
func AllowArgs(module string, args Args, allowed ...string) error {
	return allowArgs(module, args, allowed...)
}
