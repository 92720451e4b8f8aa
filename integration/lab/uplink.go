package lab

import (
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// ErrBadRate is returned for an uplink rate tc would not read as a rate.
var ErrBadRate = errors.New("not a rate (want e.g. 100mbit, 1gbit, 12.5mbps)")

// rateSyntax is tc's rate syntax: a number and a unit of bits or bytes per second.
var rateSyntax = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)(bit|kbit|mbit|gbit|tbit|bps|kbps|mbps|gbps|tbps)$`)

// rateUnits maps each unit to bits per second (tc's units: k = 1000, bps = bytes).
var rateUnits = map[string]float64{
	"bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "tbit": 1e12,
	"bps": 8, "kbps": 8e3, "mbps": 8e6, "gbps": 8e9, "tbps": 8e12,
}

// ParseRate reads a rate in tc's syntax ("100mbit", "12.5mbps") and returns bits per second.
func ParseRate(s string) (float64, error) {
	m := rateSyntax.FindStringSubmatch(strings.ToLower(strings.TrimSpace(s)))
	if m == nil {
		return 0, fmt.Errorf("uplink rate %q: %w", s, ErrBadRate)
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("uplink rate %q: %w", s, ErrBadRate)
	}
	return n * rateUnits[m[2]], nil
}

// WithUplink shapes the link between this machine (the control node) and the lab's hosts to
// rate (tc syntax, e.g. "100mbit"): a token bucket on the root side of the lab bridge, which
// every packet the control node sends to a host crosses and host-to-host traffic does not.
// The kernel here has no netem, so the link gets a rate and no added delay.
func WithUplink(rate string) Option { return func(c *config) { c.uplink = rate } }

// Uplink is the rate the control-to-host link is shaped to, "" when unshaped.
func (l *Lab) Uplink() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.st.Uplink
}

// SetUplink shapes the control-to-host link to rate (see WithUplink), or removes the shaping
// when rate is "". A bench measures the same hosts with and without it.
func (l *Lab) SetUplink(rate string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := shapeBridge(l.st.Bridge, rate); err != nil {
		return err
	}
	l.st.Uplink = rate
	return l.saveLocked()
}

// shapeBridge replaces the bridge's root qdisc by a token bucket filter of rate, or deletes
// it (back to the default) when rate is "".
func shapeBridge(bridge, rate string) error {
	if rate == "" {
		out, err := exec.Command("tc", "qdisc", "del", "dev", bridge, "root").CombinedOutput()
		if err != nil && !strings.Contains(string(out), "No such file") && !strings.Contains(string(out), "Cannot delete qdisc with handle of zero") {
			return fmt.Errorf("uplink of bridge %s: tc qdisc del: %w: %s", bridge, err, bytesTrim(out))
		}
		return nil
	}
	bits, err := ParseRate(rate)
	if err != nil {
		return err
	}
	args := []string{"qdisc", "replace", "dev", bridge, "root", "tbf",
		"rate", rate, "burst", strconv.Itoa(burstBytes(bits)), "latency", "200ms"}
	if out, err := exec.Command("tc", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("uplink of bridge %s: tc %s: %w: %s", bridge, strings.Join(args, " "), err, bytesTrim(out))
	}
	return nil
}

// burstBytes is the bucket size for bits per second: 4 ms of traffic, at least 64 KiB so that
// one GSO packet fits (tbf would otherwise split or drop it), at most 4 MiB.
func burstBytes(bits float64) int {
	b := int(bits / 8 * 0.004)
	return min(max(b, 64<<10), 4<<20)
}

func bytesTrim(b []byte) string { return strings.TrimSpace(string(b)) }

// sentSyntax finds the byte counter in `tc -s qdisc show`.
var sentSyntax = regexp.MustCompile(`Sent (\d+) bytes`)

// UplinkSent is how many bytes this machine has sent to the lab's hosts through the shaped
// uplink since it was shaped (the bucket's own counter): what a benchmark charges to the
// control node's link.
func (l *Lab) UplinkSent() (int64, error) {
	l.mu.Lock()
	bridge, rate := l.st.Bridge, l.st.Uplink
	l.mu.Unlock()
	if rate == "" {
		return 0, fmt.Errorf("lab %s: uplink not shaped: no counter", l.st.ID)
	}
	out, err := exec.Command("tc", "-s", "qdisc", "show", "dev", bridge, "root").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("uplink of bridge %s: tc -s qdisc show: %w: %s", bridge, err, bytesTrim(out))
	}
	m := sentSyntax.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("uplink of bridge %s: no byte counter in %q", bridge, bytesTrim(out))
	}
	return strconv.ParseInt(string(m[1]), 10, 64)
}
