package playbooks

// This file exports to modules outside the engine (playbooks/hostmods, orch's modules) the
// argument check the built-in modules use, so that there is one.

// AllowArgs returns an error wrapping ErrArgs naming the arguments in args that module does
// not take, and the ones it does, as Ansible's "Unsupported parameters" does.
func AllowArgs(module string, args Args, allowed ...string) error {
	return allowArgs(module, args, allowed...)
}

// LocalFile finds a controller-side file as the copy module does: in the task's role
// (subdir, e.g. "files", then tasks/ and the role's directory), then relative to the
// playbook, then in the playbook's subdir.
func LocalFile(t *TaskContext, src, subdir string) string { return localFile(t, src, subdir) }
