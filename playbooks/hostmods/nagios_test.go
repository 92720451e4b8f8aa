package hostmods_test

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"orch/playbooks"
)

// TestNagiosCommandFIFO sends lamp_haproxy's nagios commands into a real FIFO, read here as
// Nagios reads its command file; a command file that is not a FIFO is refused.
func TestNagiosCommandFIFO(t *testing.T) {
	h := newHarness(t)
	fifo := filepath.Join(h.dir, "nagios.cmd")
	if err := syscall.Mkfifo(fifo, 0o660); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 16)
	done := make(chan struct{})
	go func() {
		for {
			f, err := os.Open(fifo) // blocks until a writer opens it, as Nagios's reader
			select {
			case <-done:
				if err == nil {
					f.Close()
				}
				return
			default:
			}
			if err != nil {
				return
			}
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				got <- sc.Text()
			}
			f.Close()
		}
	}()
	t.Cleanup(func() {
		close(done)
		if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil { // wakes the reader up
			w.Close()
		}
		os.Remove(fifo)
	})
	next := func() string {
		select {
		case l := <-got:
			return l
		case <-time.After(30 * time.Second):
			t.Fatal("nothing read from the FIFO")
			return ""
		}
	}
	o := h.run("nagios: 'action=disable_alerts host=web1 services=webserver cmdfile="+fifo+"'", false, false)
	if o.status != playbooks.StatusChanged {
		t.Fatalf("disable_alerts: %s\n%s", o.status, o.out)
	}
	if l := next(); !strings.HasSuffix(l, "] DISABLE_SVC_NOTIFICATIONS;web1;webserver") {
		t.Fatalf("read %q", l)
	}
	h.run("nagios: action=downtime host=web1 services=host minutes=10 cmdfile="+fifo, false, false)
	if l := next(); !strings.Contains(l, "] SCHEDULE_HOST_DOWNTIME;web1;") || !strings.HasSuffix(l, ";1;0;600;Ansible;Scheduling downtime") {
		t.Fatalf("read %q", l)
	}
	if o := h.run("nagios: action=enable_alerts host=web1 services=webserver cmdfile="+fifo, true, false); o.status != playbooks.StatusSkipped {
		t.Fatalf("--check: %s, want skipped (the module does not support check mode)", o.status)
	}
	plain := h.write("plain.cmd", "")
	if o := h.run("nagios: action=enable_alerts host=web1 services=webserver cmdfile="+plain, false, false); o.status != playbooks.StatusFailed || !strings.Contains(o.res.Msg, "not a fifo") {
		t.Fatalf("a plain file: %s %q", o.status, o.res.Msg)
	}
}
