package lab

import (
	"fmt"
	"os"
	"testing"

	"github.com/vishvananda/netlink"
)

// TestListLinksWhileLinksChange: listing the links while links come and go (other labs on
// the machine) must give a complete list, not fail: the kernel marks such a dump
// interrupted, and Sweep failed with "listing links: results may be incomplete or
// inconsistent" (TestSweep, under load).
func TestListLinksWhileLinksChange(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to add links")
	}
	// Enough links that a dump takes several messages (a dump of one message is never
	// interrupted).
	base := fmt.Sprintf("orlc%d-", os.Getpid()%100000)
	for i := range 100 {
		n := fmt.Sprintf("%s%d", base, i)
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: n}}); err != nil {
			t.Fatalf("adding %s: %v", n, err)
		}
		t.Cleanup(func() { _ = deleteLink(n) })
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	name := base + "churn"
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}})
			_ = deleteLink(name)
		}
	}()
	t.Cleanup(func() { close(stop); <-done; _ = deleteLink(name) })
	for i := range 200 {
		if _, err := listLinks(); err != nil {
			t.Fatalf("listing links (try %d) while %s comes and goes: %v", i, name, err)
		}
	}
}
