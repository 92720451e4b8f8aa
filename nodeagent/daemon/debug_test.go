package daemon

import (
	"net"
	"net/http"
	"testing"
)

// TestDebugServer: core.debug_address serves pprof while set, and nothing once unset.
func TestDebugServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var s debugServer
	if err := s.reconcile(addr); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatalf("pprof on %s: %v", addr, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("pprof on %s: %s", addr, resp.Status)
	}
	if err := s.reconcile(""); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.Get("http://" + addr + "/debug/pprof/cmdline"); err == nil {
		resp.Body.Close()
		t.Fatalf("pprof still served on %s after core.debug_address was unset", addr)
	}
}
