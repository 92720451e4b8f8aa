package daemon

import (
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"
)

// debugServer is LXD's core.debug_address: Go's pprof endpoints (/debug/pprof/...) over
// plain HTTP on this member, only while the key is set. It is how the scale figures of
// issue 19 were profiled (CPU and allocations of the leader and a follower).
type debugServer struct {
	mu   sync.Mutex
	addr string
	srv  *http.Server
}

// reconcile makes the debug listener match addr ("" stops it).
func (s *debugServer) reconcile(addr string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if addr == s.addr {
		return nil
	}
	s.closeLocked()
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.addr = addr
	go s.srv.Serve(ln)
	return nil
}

func (s *debugServer) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeLocked()
}

func (s *debugServer) closeLocked() {
	if s.srv != nil {
		s.srv.Close()
	}
	s.srv, s.addr = nil, ""
}

// reconcileDebug starts, moves or stops the debug listener after core.debug_address.
func (d *Daemon) reconcileDebug() error {
	addr, err := d.local.Get("core.debug_address")
	if err != nil {
		return err
	}
	return d.debug.reconcile(addr)
}
