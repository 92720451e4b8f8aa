package lab

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	for in, want := range map[string]float64{"100mbit": 100e6, "1gbit": 1e9, "12.5mbps": 100e6, "800kbit": 800e3, " 2Mbit ": 2e6} {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "100", "mbit", "100 mbit", "-5mbit", "0mbit", "100mb", "fast"} {
		if _, err := ParseRate(bad); !errors.Is(err, ErrBadRate) {
			t.Errorf("ParseRate(%q) = %v, want ErrBadRate", bad, err)
		}
	}
}

// TestUplinkShapesControlToHostOnly copies the same bytes from this machine to a host and
// from one host to another: only the first crosses the shaped root side of the bridge. The
// bound checked on the shaped copy is a floor (the rate makes it at least that slow, however
// idle the machine), and the unshaped copy only has to beat the time the rate would impose.
func TestUplinkShapesControlToHostOnly(t *testing.T) {
	const rate, size = "32mbit", 12_000_000 // 96 Mbit: at least 3 s through the bucket
	l := New(t, 2, WithUplink(rate))
	out, err := exec.Command("tc", "qdisc", "show", "dev", l.st.Bridge).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "tbf") || !strings.Contains(string(out), "rate 32Mbit") {
		t.Fatalf("bridge %s qdisc: %v: %s", l.st.Bridge, err, out)
	}
	floor := time.Duration(float64(size*8) / 32e6 * 0.75 * float64(time.Second))

	before, err := l.UplinkSent()
	if err != nil {
		t.Fatal(err)
	}
	shaped := timeSSHCopy(t, l, nil, "host1", size)
	if after, err := l.UplinkSent(); err != nil || after-before < size {
		t.Errorf("uplink counter went from %d to %d (%v) over a %d-byte copy", before, after, err, size)
	}
	if shaped < floor {
		t.Errorf("control -> host1: %d bytes in %v, faster than %s allows (%v)", size, shaped, rate, floor)
	}
	// SSH's own start inside a host costs about a second on a loaded machine: take it out.
	setup := timeSSHCopy(t, l, l.Host("host1"), "host2", 1)
	across := timeSSHCopy(t, l, l.Host("host1"), "host2", size) - setup
	if across >= shaped/2 {
		t.Errorf("host1 -> host2: %d bytes in %v beyond SSH's start: host-to-host traffic looks shaped too (control -> host took %v)", size, across, shaped)
	}

	t.Logf("%d bytes: control -> host1 %v (shaped to %s), host1 -> host2 %v", size, shaped, rate, across)
	if err := l.SetUplink(""); err != nil {
		t.Fatal(err)
	}
	if out, _ := exec.Command("tc", "qdisc", "show", "dev", l.st.Bridge).CombinedOutput(); strings.Contains(string(out), "tbf") {
		t.Errorf("SetUplink(\"\") left the bucket: %s", out)
	}
	if l.Uplink() != "" {
		t.Errorf("Uplink() = %q after unshaping", l.Uplink())
	}
}

func TestUplinkRefusesBadRate(t *testing.T) {
	_, err := Create(t.Context(), t.TempDir(), 1, WithUplink("100 megabit"))
	if !errors.Is(err, ErrBadRate) || !strings.Contains(err.Error(), `"100 megabit"`) {
		t.Fatalf("Create with a bad uplink rate: %v", err)
	}
}

// timeSSHCopy sends size zero bytes over SSH to host `to`, from this machine (from nil) or
// from inside host from, and returns how long the copy took.
func timeSSHCopy(t *testing.T, l *Lab, from *Host, to string, size int) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	script := fmt.Sprintf("head -c %d /dev/zero | ssh -F %s %s 'cat > /dev/null'", size, l.SSHConfigFile(), to)
	start := time.Now()
	var err error
	var out []byte
	if from == nil {
		out, err = exec.CommandContext(ctx, "sh", "-c", script).CombinedOutput()
	} else {
		out, err = from.Exec(ctx, "sh", "-c", script)
	}
	if err != nil {
		t.Fatalf("copy to %s: %v: %s", to, err, out)
	}
	return time.Since(start)
}
