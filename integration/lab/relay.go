package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
)

// RelayMark is the firewall mark of the relay's own connections to the members, which the
// redirect rules (RedirectThroughRelays) leave alone.
const RelayMark = 0x6f72

// DelayRelay is a TCP relay that holds every chunk of data for a fixed delay in each
// direction: with delay D between every pair of members, their round-trip time is 2·D.
// This kernel has no netem, so the lab adds WAN latency in user space instead: each chunk
// read from one side is written to the other side D after it was read, in order, so a
// request and its answer each take D more, as over a long link; bandwidth is not limited
// and nothing is lost or reordered. One difference with a real long link: the client's
// TCP connect completes at once (with the relay), the first exchange pays the delay.
//
// A member whose process is gone refuses connections, as its host's kernel would over a
// real link: the relay's own connection to it refused, the relay resets the client's
// connection and stops listening (so that the next connect is refused) until the member
// listens again (tried every relayPoll). Over a real link the refusal takes one round
// trip; here it is at once.
type DelayRelay struct {
	nsPath string
	addr   string // where the relay listens (fixed at start, kept when it listens again)
	to     string
	delay  time.Duration
	dial   func(ctx context.Context, addr string) (net.Conn, error)

	mu     sync.Mutex
	ln     net.Listener // nil while the member refuses
	conns  map[net.Conn]bool
	closed bool
	wg     sync.WaitGroup
}

// relayPoll is how often a relay whose member refused tries it again.
const relayPoll = 20 * time.Millisecond

// StartDelayRelay listens on listen and relays every connection to to with delay each way.
// With nsPath ("/proc/PID/ns/net") the relay's sockets live in that network namespace, and
// its connections to to carry RelayMark.
func StartDelayRelay(nsPath, listen, to string, delay time.Duration) (*DelayRelay, error) {
	ln, err := listenIn(nsPath, listen)
	if err != nil {
		return nil, fmt.Errorf("relay %s -> %s: %w", listen, to, err)
	}
	r := &DelayRelay{nsPath: nsPath, addr: ln.Addr().String(), to: to, delay: delay, ln: ln, conns: map[net.Conn]bool{}}
	r.dial = func(ctx context.Context, addr string) (net.Conn, error) {
		var c net.Conn
		err := inNetns(nsPath, func() error {
			d := net.Dialer{Timeout: 5 * time.Second, Control: markSocket}
			var err error
			c, err = d.DialContext(ctx, "tcp", addr)
			return err
		})
		return c, err
	}
	r.wg.Add(1)
	go r.serve(ln)
	return r, nil
}

// listenIn listens on addr in the network namespace at nsPath ("" for this one).
func listenIn(nsPath, addr string) (net.Listener, error) {
	var ln net.Listener
	err := inNetns(nsPath, func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	return ln, err
}

// Addr is where the relay listens.
func (r *DelayRelay) Addr() string { return r.addr }

// Close stops the relay and cuts every relayed connection.
func (r *DelayRelay) Close() error {
	r.mu.Lock()
	r.closed = true
	for c := range r.conns {
		c.Close()
	}
	ln := r.ln
	r.ln = nil
	r.mu.Unlock()
	var err error
	if ln != nil {
		err = ln.Close()
	}
	r.wg.Wait()
	return err
}

func (r *DelayRelay) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		c.Close()
		return false
	}
	r.conns[c] = true
	return true
}

func (r *DelayRelay) untrack(c net.Conn) {
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
	c.Close()
}

// serve accepts on ln until it is closed (the relay closed, or its member refusing).
func (r *DelayRelay) serve(ln net.Listener) {
	defer r.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		if !r.track(c) {
			return
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer r.untrack(c)
			r.relay(c)
		}()
	}
}

// relay connects to the member after the delay (the SYN crossing the link) and copies
// both ways with the delay.
func (r *DelayRelay) relay(client net.Conn) {
	time.Sleep(r.delay) // the connection request crossing the link
	up, err := r.dial(context.Background(), r.to)
	if errors.Is(err, syscall.ECONNREFUSED) {
		r.refuse(client)
		return
	}
	if err != nil {
		return
	}
	if !r.track(up) {
		return
	}
	defer r.untrack(up)
	done := make(chan struct{}, 2)
	go func() { delayedCopy(up, client, r.delay); done <- struct{}{} }()
	go func() { delayedCopy(client, up, r.delay); done <- struct{}{} }()
	<-done
}

// refuse passes a member's refusal on: client's connection is reset, and the relay stops
// listening until the member accepts again.
func (r *DelayRelay) refuse(client net.Conn) {
	if tc, ok := client.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // closed with a reset
	}
	r.mu.Lock()
	ln := r.ln
	r.ln = nil
	if ln != nil && !r.closed {
		r.wg.Add(1)
		go r.awaitMember()
	}
	r.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
}

// awaitMember tries the member every relayPoll until it accepts, then listens again.
func (r *DelayRelay) awaitMember() {
	defer r.wg.Done()
	for {
		time.Sleep(relayPoll)
		if r.isClosed() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := r.dial(ctx, r.to)
		cancel()
		if err != nil {
			continue
		}
		c.Close()
		ln, err := listenIn(r.nsPath, r.addr)
		if err != nil {
			continue // the address is not free yet: try again
		}
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			ln.Close()
			return
		}
		r.ln = ln
		r.wg.Add(1)
		go r.serve(ln)
		r.mu.Unlock()
		return
	}
}

func (r *DelayRelay) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// chunk is data read at one time.
type chunk struct {
	data []byte
	at   time.Time
}

// delayedCopy copies src to dst, each chunk written delay after it was read, in order; it
// closes dst's write side when src ends.
func delayedCopy(dst, src net.Conn, delay time.Duration) {
	q := make(chan chunk, 1024)
	go func() {
		defer close(q)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				q <- chunk{buf[:n], time.Now()}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range q {
		time.Sleep(time.Until(c.at.Add(delay)))
		if _, err := dst.Write(c.data); err != nil {
			src.Close()
			for range q {
			}
			return
		}
	}
	if tc, ok := dst.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	} else {
		dst.Close()
	}
}

// markSocket sets RelayMark on a socket before it connects.
func markSocket(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_MARK, RelayMark)
	})
	return errors.Join(err, serr)
}

// inNetns runs fn on a thread switched into the network namespace at path ("" runs it
// here); sockets fn creates stay in that namespace.
func inNetns(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := netns.GetFromPath(path)
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			errc <- err
			return
		}
		ferr := fn()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		errc <- ferr
	}()
	return <-errc
}

// RedirectThroughRelays makes every TCP connection in the network namespace at nsPath (its
// processes run `nsenter --net=nsPath`) to a key of relays go to its value instead, unless it
// carries RelayMark: the members keep listening on and advertising their own addresses,
// and their traffic to each other crosses the relays.
func RedirectThroughRelays(nsPath string, relays map[string]string) error {
	script := "table ip orchrelay {\n chain output {\n  type nat hook output priority -100;\n"
	for from, to := range relays {
		fh, fp, err := net.SplitHostPort(from)
		if err != nil {
			return err
		}
		th, tp, err := net.SplitHostPort(to)
		if err != nil {
			return err
		}
		script += fmt.Sprintf("  meta mark != %#x ip daddr %s tcp dport %s dnat to %s:%s\n", RelayMark, fh, fp, th, tp)
	}
	script += " }\n}\n"
	cmd := exec.Command("nsenter", "--net="+nsPath, "--", "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft in %s: %w: %s", nsPath, err, out)
	}
	return nil
}
