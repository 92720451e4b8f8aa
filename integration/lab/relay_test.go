package lab

import (
	"bytes"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"orch/internal/wait"
)

// TestDelayRelay: data crosses the relay intact both ways, and a request and its answer
// take at least twice the relay's delay (one delay each way).
func TestDelayRelay(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }() // echo
		}
	}()
	const delay = 50 * time.Millisecond
	r, err := StartDelayRelay("", "127.0.0.1:0", ln.Addr().String(), delay)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := net.Dial("tcp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := bytes.Repeat([]byte("orch "), 20000) // 100 kB: several chunks
	for round := range 3 {
		start := time.Now()
		go func() { _, _ = c.Write(msg) }()
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		took := time.Since(start)
		if !bytes.Equal(got, msg) {
			t.Fatalf("round %d: the echo differs from what was sent", round)
		}
		// The first round also pays the connection request crossing the link.
		if took < 2*delay {
			t.Errorf("round %d: the round trip took %v, less than twice the %v delay", round, took, delay)
		}
	}
}

// TestDelayRelayPassesRefusal: a member that stops listening is refused through the relay
// as over a real link (ECONNREFUSED, what the leader-gone watch waits for), and relayed
// again once it listens anew.
func TestDelayRelayPassesRefusal(t *testing.T) {
	echo := func(ln net.Listener) {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	member := ln.Addr().String()
	go echo(ln)
	r, err := StartDelayRelay("", "127.0.0.1:0", member, 5*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	roundTrip := func() error {
		c, err := net.DialTimeout("tcp", r.Addr(), time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("ping")); err != nil {
			return err
		}
		got := make([]byte, 4)
		_, err = io.ReadFull(c, got)
		return err
	}
	if err := roundTrip(); err != nil {
		t.Fatalf("through the relay to a listening member: %v", err)
	}
	ln.Close()
	// The first connection after the member went is reset, the next ones refused.
	if err := roundTrip(); err == nil {
		t.Fatal("a round trip through the relay to a member that no longer listens succeeded")
	}
	err = wait.UntilEvery(5*time.Second, 10*time.Millisecond, func() error {
		c, err := net.DialTimeout("tcp", r.Addr(), time.Second)
		if err == nil {
			c.Close()
			return errors.New("the relay still accepts")
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatalf("connecting through the relay to a gone member is not refused: %v", err)
	}
	ln2, err := net.Listen("tcp", member)
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	go echo(ln2)
	if err := wait.UntilEvery(5*time.Second, 10*time.Millisecond, roundTrip); err != nil {
		t.Fatalf("the relay did not relay again after the member listened anew: %v", err)
	}
}
