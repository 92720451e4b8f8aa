package transport

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
	"golang.org/x/sys/unix"
)

// hostKeys checks one host's key against a known_hosts file and, with AcceptNew, records
// a new host's key. It remembers the verdict so Dial can report it instead of the
// handshake's generic wrapping.
type hostKeys struct {
	name      string // host name for errors
	file      string
	acceptNew bool
	log       func(msg string, args ...any)

	mu  sync.Mutex
	err error // the verdict of the last check, if it failed
}

// callback is the ssh.HostKeyCallback.
func (h *hostKeys) callback(hostname string, remote net.Addr, key ssh.PublicKey) error {
	err := h.check(hostname, remote, key)
	h.mu.Lock()
	h.err = err
	h.mu.Unlock()
	return err
}

// verdict returns the error of the last failed check, if any.
func (h *hostKeys) verdict() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// check verifies key, recording it under a file lock when the host is new and AcceptNew.
func (h *hostKeys) check(hostname string, remote net.Addr, key ssh.PublicKey) error {
	err := h.lookup(hostname, remote, key)
	if !errors.Is(err, ErrUnknownHost) || !h.acceptNew {
		return err
	}
	return h.acceptKey(hostname, remote, key)
}

// lookup checks key against the file as it is now.
func (h *hostKeys) lookup(hostname string, remote net.Addr, key ssh.PublicKey) error {
	cb, err := h.load()
	if err != nil {
		return err
	}
	if cb == nil { // no file yet: every host is unknown
		return h.unknown(hostname, key)
	}
	return h.classify(cb(hostname, remote, key), hostname, key)
}

// load parses the known_hosts file; a missing file yields a nil callback.
func (h *hostKeys) load() (ssh.HostKeyCallback, error) {
	cb, err := knownhosts.New(h.file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: reading known hosts: %w", h.name, err)
	}
	return cb, nil
}

// classify turns a knownhosts error into one of our sentinel errors.
func (h *hostKeys) classify(err error, hostname string, key ssh.PublicKey) error {
	var keyErr *knownhosts.KeyError
	var revoked *knownhosts.RevokedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &revoked):
		return fmt.Errorf("%s: %w: the server's %s key is marked @revoked at %s:%d",
			h.name, ErrHostKeyMismatch, key.Type(), revoked.Revoked.Filename, revoked.Revoked.Line)
	case errors.As(err, &keyErr) && len(keyErr.Want) == 0:
		return h.unknown(hostname, key)
	case errors.As(err, &keyErr):
		w := keyErr.Want[0]
		return fmt.Errorf("%s: %w: the server presented %s key %s but %s:%d records %s key %s for %s; "+
			"if the host was really reinstalled, remove that line (ssh-keygen -R '%s' -f %s)",
			h.name, ErrHostKeyMismatch, key.Type(), ssh.FingerprintSHA256(key), w.Filename, w.Line,
			w.Key.Type(), ssh.FingerprintSHA256(w.Key), knownhosts.Normalize(hostname),
			knownhosts.Normalize(hostname), w.Filename)
	default:
		return fmt.Errorf("%s: checking host key: %w", h.name, err)
	}
}

// unknown is the error for a host absent from the file.
func (h *hostKeys) unknown(hostname string, key ssh.PublicKey) error {
	host, port, _ := net.SplitHostPort(hostname)
	return fmt.Errorf("%s: %w: %s has no entry in %s (server's %s key %s); run with --accept-new "+
		"to trust it on first use, or add it after checking the fingerprint: ssh-keyscan -p %s %s >> %s",
		h.name, ErrUnknownHost, knownhosts.Normalize(hostname), h.file, key.Type(),
		ssh.FingerprintSHA256(key), port, host, h.file)
}

// acceptKey appends the host's key under an exclusive flock, after checking again under
// the lock so that concurrent connections to one host append it once.
func (h *hostKeys) acceptKey(hostname string, remote net.Addr, key ssh.PublicKey) error {
	if err := os.MkdirAll(filepath.Dir(h.file), 0o700); err != nil {
		return fmt.Errorf("%s: recording host key: %w", h.name, err)
	}
	f, err := os.OpenFile(h.file, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("%s: recording host key: %w", h.name, err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("%s: locking %s: %w", h.name, h.file, err)
	}
	defer unix.Flock(int(f.Fd()), unix.LOCK_UN)
	if err := h.lookup(hostname, remote, key); !errors.Is(err, ErrUnknownHost) {
		return err // recorded meanwhile (nil), or a conflicting key
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(hostname)}, key) + "\n"
	if !endsWithNewline(f) {
		line = "\n" + line
	}
	if _, err := f.WriteString(line); err != nil {
		return fmt.Errorf("%s: recording host key in %s: %w", h.name, h.file, err)
	}
	h.log("recorded new host key", "file", h.file, "type", key.Type(), "fingerprint", ssh.FingerprintSHA256(key))
	return nil
}

// endsWithNewline reports whether f is empty or ends with '\n'.
func endsWithNewline(f *os.File) bool {
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return true
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, st.Size()-1); err != nil && err != io.EOF {
		return true
	}
	return b[0] == '\n'
}

// algorithms lists the host key algorithms for the keys the file holds for hostname, in
// file order, so the server presents a key we can verify. Nil (library default) when the
// file knows no key for the host.
func (h *hostKeys) algorithms(hostname string) []string {
	cb, err := h.load()
	if err != nil || cb == nil {
		return nil
	}
	probe, _ := ssh.NewPublicKey(ed25519.PublicKey(make([]byte, ed25519.PublicKeySize)))
	var keyErr *knownhosts.KeyError
	if !errors.As(cb(hostname, addrOf(hostname), probe), &keyErr) {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	for _, k := range keyErr.Want {
		for _, a := range algorithmsForKeyType(k.Key.Type()) {
			if !seen[a] {
				seen[a] = true
				algos = append(algos, a)
			}
		}
	}
	return algos
}

// algorithmsForKeyType maps a key type to the signature algorithms that prove it.
func algorithmsForKeyType(t string) []string {
	if t == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{t}
}

// addrOf builds a net.Addr for "host:port" (used only for its String method).
func addrOf(hostport string) net.Addr {
	host, port, _ := net.SplitHostPort(hostport)
	p, _ := strconv.Atoi(port)
	return &net.TCPAddr{IP: net.ParseIP(host), Port: p}
}
