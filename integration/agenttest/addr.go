package agenttest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"testing"
)

// nextHost hands out the last octet of each agent's loopback address; it starts at a random
// point so that test binaries running side by side rarely pick the same addresses.
var nextHost atomic.Int32

func init() { nextHost.Store(rand.Int32N(253)) }

// NewAddr returns a free TCP address on a loopback IP of its own, 127.0.0.N with N cycling
// through 2..254, so members of tests running in parallel never share an IP.
func NewAddr(tb testing.TB) string {
	tb.Helper()
	n := 2 + (nextHost.Add(1)-1)%253
	return FreePort(tb, fmt.Sprintf("127.0.0.%d", n))
}

// FreePort returns ip:port with a port that was free a moment ago.
func FreePort(tb testing.TB, ip string) string {
	tb.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		tb.Fatalf("finding a free port on %s: %v", ip, err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
