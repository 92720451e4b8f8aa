package lab

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
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
