package store

import (
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// tcpLayer is a plain-TCP raft.StreamLayer for tests and benchmarks; the
// daemon passes its TLS multiplexed layer instead.
type tcpLayer struct{ net.Listener }

// NewTCPLayer listens on addr (host:port, port 0 picks a free one) and returns
// a raft stream layer whose Addr is the bound address.
func NewTCPLayer(addr string) (raft.StreamLayer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("raft layer on %s: %w", addr, err)
	}
	return tcpLayer{ln}, nil
}

// Dial implements raft.StreamLayer.
func (tcpLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", string(address), timeout)
}

// advertisedLayer reports the advertised address as its Addr, so that raft
// (which takes its own address from the transport) names this server the way
// the configuration does, even when the listener is bound to 0.0.0.0.
type advertisedLayer struct {
	raft.StreamLayer
	addr advertisedAddr
}

// Addr implements net.Listener.
func (l advertisedLayer) Addr() net.Addr { return l.addr }

// advertisedAddr is a host:port as a net.Addr.
type advertisedAddr string

// Network implements net.Addr.
func (advertisedAddr) Network() string { return "tcp" }

// String implements net.Addr.
func (a advertisedAddr) String() string { return string(a) }
