// Package transport is orch's SSH layer: one SSH connection per host per run (optionally
// through a ProxyJump bastion), one session per command, become through `sudo -n`, and
// atomic, checksum-verified file pushes over SFTP or a compressed stream.
//
// Host keys are checked against an OpenSSH known_hosts file, strictly by default; AcceptNew
// behaves like OpenSSH's StrictHostKeyChecking=accept-new. Every error returned by this
// package starts with the host's name and wraps one of the sentinel errors below when it
// belongs to one of their classes, so callers can sort failures with errors.Is.
//
// Parallelism across hosts is offered by ForEach and Pool; a single Conn is safe for
// concurrent use and limits itself to Config.MaxSessions sessions at once (OpenSSH's
// MaxSessions defaults to 10).
package transport
