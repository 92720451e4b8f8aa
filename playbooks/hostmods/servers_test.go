package hostmods_test

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"orch/internal/wait"
)

// server is how a test runs a real server (MariaDB, PostgreSQL, HAProxy) beside the modules.
type server struct {
	name string // for messages ("mariadbd")
	log  string // its log file, shown when it exits before it is ready
	// stop asks it to stop in Cleanup; SIGKILL follows after grace. group signals its
	// process group (cmd started with Setpgid: the server and its children).
	stop  syscall.Signal
	group bool
	grace time.Duration
	// ready is polled for up to within after the start.
	within time.Duration
	ready  func() error
}

// start starts cmd as the server s, stops it in Cleanup (even when the test fails), and
// returns once s.ready passes; a server that exits first fails the test with its log.
func (s server) start(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	signal := func(sig syscall.Signal) {
		if s.group {
			_ = syscall.Kill(-cmd.Process.Pid, sig)
		} else {
			_ = cmd.Process.Signal(sig)
		}
	}
	t.Cleanup(func() {
		signal(s.stop)
		select {
		case <-exited:
		case <-time.After(s.grace):
			signal(syscall.SIGKILL)
			<-exited
		}
	})
	wait.For(t, s.within, s.name+" ready", func() error {
		select {
		case err := <-exited:
			log, _ := os.ReadFile(s.log)
			return wait.Stop(fmt.Errorf("%s exited: %v\n%s", s.name, err, log))
		default:
		}
		return s.ready()
	})
}
