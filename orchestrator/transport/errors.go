package transport

import "errors"

// Sentinel errors. Errors returned by Dial, Run and Push wrap at most one of them.
var (
	// ErrHostKeyMismatch means the server presented a host key that differs from the
	// one recorded in known_hosts (or a revoked one): possibly a man in the middle.
	ErrHostKeyMismatch = errors.New("host key mismatch")
	// ErrUnknownHost means known_hosts has no key for the host and AcceptNew is off.
	ErrUnknownHost = errors.New("host key unknown")
	// ErrAuth means the server refused every credential offered (wrong user, key not
	// authorised) or no usable credential was found locally. The recap shows the host as
	// unreachable.
	ErrAuth = errors.New("authentication failed")
	// ErrUnreachable means the host could not be reached: dial failure, timeout, or the
	// connection dropped.
	ErrUnreachable = errors.New("unreachable")
	// ErrBecome means privilege escalation with `sudo -n` failed: sudo needs a password,
	// the user may not use sudo, or sudo is missing.
	ErrBecome = errors.New("become failed")
	// ErrClosed is returned by operations on a Conn after Close.
	ErrClosed = errors.New("connection closed")
)
