package transport

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"orch/internal/shell"
	"orch/orchestrator/transport/sshdtest"
)

func TestRunOutputAndExitCode(t *testing.T) {
	h := startHost(t, sshdtest.Options{})
	c := dial(t, h.cfg)
	res := run(t, c, "echo out; echo err >&2; exit 3", RunOptions{})
	if string(res.Stdout) != "out\n" || string(res.Stderr) != "err\n" || res.ExitCode != 3 {
		t.Fatalf("got stdout %q stderr %q exit %d", res.Stdout, res.Stderr, res.ExitCode)
	}
	res = run(t, c, "tr a-z A-Z", RunOptions{Stdin: strings.NewReader("hello")})
	if string(res.Stdout) != "HELLO" || res.ExitCode != 0 {
		t.Fatalf("stdin: got %q exit %d", res.Stdout, res.ExitCode)
	}
	res = run(t, c, "kill -9 $$", RunOptions{})
	if res.ExitCode != 128+9 {
		t.Fatalf("killed by signal: exit %d, want 137", res.ExitCode)
	}
}

func TestParallelSessionsOnOneConnection(t *testing.T) {
	h := startHost(t, sshdtest.Options{}) // sshd's default MaxSessions 10
	c := dial(t, h.cfg)
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := c.Run(testCtx(t), fmt.Sprintf("sleep 0.1; echo %d", i), RunOptions{})
			if err == nil && string(res.Stdout) != fmt.Sprintf("%d\n", i) {
				err = fmt.Errorf("session %d: got %q", i, res.Stdout)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestRunCancelKillsCommand(t *testing.T) {
	h := startHost(t, sshdtest.Options{})
	c := dial(t, h.cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Run(ctx, "sleep 60", RunOptions{})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), c.Name()+": ") {
		t.Fatalf("got %v, want a deadline error starting with the host", err)
	}
	if time.Since(start) > 20*time.Second {
		t.Fatalf("Run returned only after %v", time.Since(start))
	}
	// The remote command is gone and the connection still usable.
	sshdtest.WaitFor(t, 10*time.Second, "sleep killed", func() error {
		res := run(t, c, "pgrep -x -f 'sleep 60' || true", RunOptions{})
		if len(res.Stdout) > 0 {
			return fmt.Errorf("still running: pids %q", res.Stdout)
		}
		return nil
	})
}

func TestUnknownHostRefused(t *testing.T) {
	h := startHost(t, sshdtest.Options{})
	cfg := h.cfg
	cfg.KnownHostsFile = filepath.Join(t.TempDir(), "absent", "known_hosts")
	_, err := Dial(testCtx(t), cfg)
	if !errors.Is(err, ErrUnknownHost) || !strings.Contains(err.Error(), "--accept-new") ||
		!strings.HasPrefix(err.Error(), cfg.Name+": ") {
		t.Fatalf("got %v, want ErrUnknownHost mentioning --accept-new", err)
	}
	if _, statErr := os.Stat(cfg.KnownHostsFile); statErr == nil {
		t.Fatal("strict mode wrote the known_hosts file")
	}
}

func TestAcceptNewAppendsOnceUnderConcurrency(t *testing.T) {
	hosts := []*testHost{startHost(t, sshdtest.Options{}), startHost(t, sshdtest.Options{})}
	kh := filepath.Join(t.TempDir(), "ssh", "known_hosts")
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg := hosts[i%2].cfg
			cfg.KnownHostsFile, cfg.AcceptNew = kh, true
			c, err := Dial(testCtx(t), cfg)
			if err == nil {
				c.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(kh)
	if err != nil {
		t.Fatal(err)
	}
	want := hosts[0].srv.KnownHostsLine("ed25519") + "\n" + hosts[1].srv.KnownHostsLine("ed25519") + "\n"
	want2 := hosts[1].srv.KnownHostsLine("ed25519") + "\n" + hosts[0].srv.KnownHostsLine("ed25519") + "\n"
	if got := string(data); got != want && got != want2 {
		t.Fatalf("known_hosts:\n%s\nwant each host's line once", got)
	}
	// Strict mode now accepts both hosts from the recorded file.
	cfg := hosts[0].cfg
	cfg.KnownHostsFile = kh
	dial(t, cfg)
}

func TestHostKeyMismatchNamesFileAndLine(t *testing.T) {
	h := startHost(t, sshdtest.Options{})
	other := sshdtest.Start(t, sshdtest.Options{IP: h.srv.IP})
	wrong := strings.Replace(other.KnownHostsLine("ed25519"), other.Addr(), h.srv.Addr(), 1)
	wrong = strings.Replace(wrong, fmt.Sprintf("[%s]:%d", other.IP, other.Port), fmt.Sprintf("[%s]:%d", h.srv.IP, h.srv.Port), 1)
	sshdtest.WriteKnownHosts(t, h.cfg.KnownHostsFile, "# first", "", wrong)
	for _, acceptNew := range []bool{false, true} {
		cfg := h.cfg
		cfg.AcceptNew = acceptNew
		_, err := Dial(testCtx(t), cfg)
		if !errors.Is(err, ErrHostKeyMismatch) || !strings.Contains(err.Error(), cfg.KnownHostsFile+":3") {
			t.Fatalf("accept-new=%v: got %v, want ErrHostKeyMismatch naming %s:3", acceptNew, err, cfg.KnownHostsFile)
		}
	}
}

// The server offers ecdsa first by default; known_hosts holds only its ed25519 key. A
// client that does not order HostKeyAlgorithms by the file sees a false mismatch.
func TestHostKeyAlgorithmsFollowKnownHosts(t *testing.T) {
	h := startHost(t, sshdtest.Options{HostKeyTypes: []string{"ed25519", "ecdsa", "rsa"}})
	dial(t, h.cfg)
	sshdtest.WriteKnownHosts(t, h.cfg.KnownHostsFile, h.srv.KnownHostsLine("rsa"))
	dial(t, h.cfg)
	sshdtest.WriteKnownHosts(t, h.cfg.KnownHostsFile, h.srv.KnownHostsLine("ecdsa"))
	dial(t, h.cfg)
}

func TestWrongUserKeyIsErrAuth(t *testing.T) {
	h := startHost(t, sshdtest.Options{})
	cfg := h.cfg
	cfg.KeyFiles = []string{sshdtest.NewUserKey(t).Path}
	_, err := Dial(testCtx(t), cfg)
	if !errors.Is(err, ErrAuth) || !strings.HasPrefix(err.Error(), cfg.Name+": ") {
		t.Fatalf("got %v, want ErrAuth", err)
	}
}

func TestEncryptedKeyWithoutAgentNamesFile(t *testing.T) {
	h := startHost(t, sshdtest.Options{})
	cfg := h.cfg
	key := sshdtest.NewEncryptedUserKey(t, "s3cret-passphrase")
	cfg.KeyFiles = []string{key.Path}
	_, err := Dial(testCtx(t), cfg)
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), key.Path) || !strings.Contains(err.Error(), "encrypted") {
		t.Fatalf("got %v, want ErrAuth naming %s as encrypted", err, key.Path)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatal("error leaks the passphrase")
	}
}

func TestUnreachable(t *testing.T) {
	h := startHost(t, sshdtest.Options{})
	h.srv.Stop()
	cfg := h.cfg
	cfg.Timeout = 3 * time.Second
	sshdtest.WaitFor(t, 10*time.Second, "sshd stopped", func() error {
		_, err := Dial(testCtx(t), cfg)
		if !errors.Is(err, ErrUnreachable) {
			return fmt.Errorf("got %v, want ErrUnreachable", err)
		}
		return nil
	})
}

func TestConnectionLossFailsRunWithUnreachable(t *testing.T) {
	h := startHost(t, sshdtest.Options{})
	c := dial(t, h.cfg)
	run(t, c, "true", RunOptions{})
	h.srv.Stop() // kills the connection's sshd process too
	_, err := c.Run(testCtx(t), "sleep 5", RunOptions{})
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("got %v, want ErrUnreachable", err)
	}
}

func TestKeepAliveDetectsHungHost(t *testing.T) {
	h := startHost(t, sshdtest.Options{})
	cfg := h.cfg
	cfg.KeepAlive = 200 * time.Millisecond
	c := dial(t, cfg)
	run(t, c, "true", RunOptions{})
	done := make(chan error, 1)
	go func() {
		_, err := c.Run(context.Background(), "sleep 600", RunOptions{})
		done <- err
	}()
	sshdtest.WaitFor(t, 10*time.Second, "sleep started", func() error {
		if out, _ := exec.Command("pgrep", "-x", "-f", "sleep 600").Output(); len(out) == 0 {
			return errors.New("not yet")
		}
		return nil
	})
	h.srv.Pause(t)
	select {
	case err := <-done:
		if !errors.Is(err, ErrUnreachable) {
			t.Fatalf("got %v, want ErrUnreachable", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run on a hung host did not fail within 20s")
	}
}

func TestProxyJump(t *testing.T) {
	bastion := startHost(t, sshdtest.Options{})
	target := startHost(t, sshdtest.Options{Config: []string{"AllowTcpForwarding no"}})
	cfg := target.cfg
	jump := bastion.cfg
	cfg.Jump = &jump
	c := dial(t, cfg)
	res := run(t, c, "echo via jump", RunOptions{})
	if string(res.Stdout) != "via jump\n" {
		t.Fatalf("got %q", res.Stdout)
	}
	// The bastion's host key is checked too.
	bad := cfg
	badJump := jump
	badJump.KnownHostsFile = filepath.Join(t.TempDir(), "empty")
	bad.Jump = &badJump
	if _, err := Dial(testCtx(t), bad); !errors.Is(err, ErrUnknownHost) {
		t.Fatalf("unknown bastion: got %v", err)
	}
}

func TestParseJump(t *testing.T) {
	base := Config{User: "ops", KeyFiles: []string{"/k"}, Host: "target"}
	j, err := ParseJump("admin@bastion.example:2222", base)
	if err != nil || j.User != "admin" || j.Host != "bastion.example" || j.Port != 2222 || j.KeyFiles[0] != "/k" {
		t.Fatalf("got %+v, %v", j, err)
	}
	j, err = ParseJump("bastion", base)
	if err != nil || j.User != "ops" || j.Port != 0 {
		t.Fatalf("got %+v, %v", j, err)
	}
}

func TestBecome(t *testing.T) {
	sshdtest.EnsureUser(t, "orchtest", true)
	h := startHost(t, sshdtest.Options{})
	cfg := h.cfg
	cfg.User = "orchtest"
	c := dial(t, cfg)
	if res := run(t, c, "id -un", RunOptions{}); string(res.Stdout) != "orchtest\n" {
		t.Fatalf("without become: %q", res.Stdout)
	}
	res := run(t, c, `id -un; printf '%s\n' "it's quoted"`, RunOptions{Become: true})
	if string(res.Stdout) != "root\nit's quoted\n" {
		t.Fatalf("with become: %q (stderr %q)", res.Stdout, res.Stderr)
	}
	res = run(t, c, "cat; exit 4", RunOptions{Become: true, Stdin: strings.NewReader("in")})
	if string(res.Stdout) != "in" || res.ExitCode != 4 {
		t.Fatalf("with become and stdin: %q exit %d", res.Stdout, res.ExitCode)
	}
}

func TestBecomeNeedsPassword(t *testing.T) {
	sshdtest.EnsureUser(t, "orchtestpw", false)
	h := startHost(t, sshdtest.Options{})
	cfg := h.cfg
	cfg.User = "orchtestpw"
	c := dial(t, cfg)
	_, err := c.Run(testCtx(t), "id -un", RunOptions{Become: true})
	if !errors.Is(err, ErrBecome) || !strings.Contains(err.Error(), "password") {
		t.Fatalf("got %v, want ErrBecome about a password", err)
	}
}

func TestQuote(t *testing.T) {
	h := startHost(t, sshdtest.Options{})
	c := dial(t, h.cfg)
	args := []string{"plain", "", "two words", "it's", `"$HOME"`, "`id`", "a\nb", "--dir=/x", "*"}
	res := run(t, c, "printf '[%s]' "+shell.Join(args...), RunOptions{})
	var want strings.Builder
	for _, a := range args {
		want.WriteString("[" + a + "]")
	}
	if string(res.Stdout) != want.String() {
		t.Fatalf("got %q, want %q", res.Stdout, want.String())
	}
}

func TestCipherPrefersAESGCM(t *testing.T) {
	if preferredCiphers[0] != ssh.CipherAES128GCM {
		t.Fatalf("first cipher %s", preferredCiphers[0])
	}
	h := startHost(t, sshdtest.Options{Config: []string{"LogLevel DEBUG1"}})
	dial(t, h.cfg)
	sshdtest.WaitFor(t, 5*time.Second, "cipher in sshd log", func() error {
		if !strings.Contains(h.srv.Log(), "cipher: aes128-gcm@openssh.com") {
			return errors.New("sshd log does not show aes128-gcm@openssh.com")
		}
		return nil
	})
}

func TestParseAddress(t *testing.T) {
	for _, tc := range []struct {
		in, user, host string
		port           int
		bad            bool
	}{
		{in: "h", host: "h"},
		{in: "u@h:2222", user: "u", host: "h", port: 2222},
		{in: "[::1]:22", host: "::1", port: 22},
		{in: "[fe80::1]", host: "fe80::1"},
		{in: "u@h:x", bad: true},
		{in: "u@", bad: true},
	} {
		u, h, p, err := ParseAddress(tc.in)
		if (err != nil) != tc.bad || u != tc.user || h != tc.host || p != tc.port {
			t.Errorf("ParseAddress(%q) = %q %q %d %v", tc.in, u, h, p, err)
		}
	}
}
