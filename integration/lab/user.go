package lab

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strings"

	"orch/internal/atomicfile"
)

const (
	// TestUser is the non-root user on every host; it logs in with the lab key and has
	// passwordless sudo.
	TestUser = "orchtest"
	// sudoersFile gives TestUser passwordless sudo.
	sudoersFile = "/etc/sudoers.d/orchtest"
)

// ensureTestUser creates TestUser if missing (with a '*' password, which sshd accepts for
// key logins, unlike a locked '!' one) and its sudoers entry. Idempotent; hosts share the
// machine's /etc, so this is done once per machine.
func ensureTestUser() error {
	err := withMachineLock(func() error {
		if _, err := user.Lookup(TestUser); err != nil {
			if err := run("useradd", "--create-home", "--shell", "/bin/sh", "--password", "*", TestUser); err != nil {
				return err
			}
		} else if locked(TestUser) {
			if err := run("usermod", "--password", "*", TestUser); err != nil {
				return err
			}
		}
		want := []byte(TestUser + " ALL=(ALL) NOPASSWD:ALL\n")
		if got, err := os.ReadFile(sudoersFile); err == nil && bytes.Equal(got, want) {
			return nil
		}
		return atomicfile.Write(sudoersFile, want, 0o440)
	})
	if err != nil {
		return fmt.Errorf("user %s: %w", TestUser, err)
	}
	return nil
}

// locked reports whether name's password field in /etc/shadow starts with '!'.
func locked(name string) bool {
	b, err := os.ReadFile("/etc/shadow")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.SplitN(line, ":", 3); len(f) > 1 && f[0] == name {
			return strings.HasPrefix(f[1], "!")
		}
	}
	return false
}

func run(name string, args ...string) error {
	path, err := tool(name)
	if err != nil {
		return err
	}
	out, err := exec.Command(path, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}
