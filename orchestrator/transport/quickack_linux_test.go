package transport

import (
	"bufio"
	"net"
	"syscall"
	"testing"
)

// A connection dialNet opens acks what it read at once, even after the request-answer
// exchanges that make Linux delay ACKs (the kernel's "pingpong" mode; getsockopt
// TCP_QUICKACK reports 0 in it): sshd's next packet then does not wait up to 40 ms under
// Nagle for that ACK.
func TestDialedConnAcksAtOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() { // answers each line, as sshd answers requests
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			c.Write([]byte("answer to " + line))
		}
	}()
	nc, err := dialNet(testCtx(t), ln.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	tc, ok := nc.(interface {
		SyscallConn() (syscall.RawConn, error)
	})
	if !ok {
		t.Fatalf("dialNet returned %T: no socket", nc)
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	for i := range 20 {
		if _, err := nc.Write([]byte("request\n")); err != nil {
			t.Fatal(err)
		}
		if _, err := nc.Read(buf); err != nil {
			t.Fatal(err)
		}
		var quick int
		var serr error
		raw.Control(func(fd uintptr) {
			quick, serr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK)
		})
		if serr != nil {
			t.Fatal(serr)
		}
		if quick != 1 {
			t.Fatalf("after answer %d: the connection delays its ACKs (TCP_QUICKACK %d)", i+1, quick)
		}
	}
}
