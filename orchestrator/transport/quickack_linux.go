package transport

import (
	"net"
	"syscall"
)

// withQuickAck returns nc acking at once whatever each Read returned (TCP_QUICKACK after
// every read that got bytes), when nc is a TCP connection.
//
// OpenSSH's sshd leaves Nagle's algorithm on for sessions without a terminal, and Linux
// delays an ACK up to 40 ms on a connection it finds interactive. Right after the login
// sshd sends two small packets (the second, its host keys announcement, waits under Nagle
// for the first one's ACK), and the confirmation of the client's first session channel
// then waits for the ACK of the announcement, which the client delayed: every connection's
// first command took ~45 ms where the next took 2-4 ms (the command runner's start, on
// every host of `orch up`). Acking at once costs one setsockopt per read; orch reads
// little (answers, window adjustments), its bulk data goes the other way.
func withQuickAck(nc net.Conn) net.Conn {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nc
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return nc
	}
	return &quickAckConn{TCPConn: tc, raw: raw}
}

// quickAckConn is a TCP connection that acks what each Read returned at once.
type quickAckConn struct {
	*net.TCPConn
	raw syscall.RawConn
}

// Read reads, then has the kernel ack the bytes read now rather than after its
// delayed-ACK timer.
func (c *quickAckConn) Read(b []byte) (int, error) {
	n, err := c.TCPConn.Read(b)
	if n > 0 {
		c.raw.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
		})
	}
	return n, err
}
