// Package netmux serves the cluster API and raft on one TLS port. After the TLS handshake a
// connection whose negotiated ALPN protocol is RaftProto goes to raft; every other one goes
// to the HTTP server. One port means one firewall rule and one certificate to pin
// (shared/DESIGN.md).
package netmux

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// RaftProto is the ALPN protocol name of raft connections. Since version 2 a raft
// connection opens with a hello from the dialer and an answer from the acceptor (each a
// 4-byte big-endian length and that many bytes) before raft's own traffic: the Fence of
// each side decides whether the other belongs to its cluster epoch.
const RaftProto = "orch-raft/2"

// LegacyRaftProto is raft without the handshake, spoken by agents before cluster epochs;
// the Fence decides whether such a peer is admitted (only while no recovery happened).
const LegacyRaftProto = "orch-raft/1"

// Fence decides whether a raft peer belongs to this member's cluster epoch, on both ends
// of a connection. hashicorp/raft accepts AppendEntries from any leader, even one outside
// its configuration, so a member fenced off by a recovery must be refused here, before
// raft sees its messages.
type Fence interface {
	// Hello is what this member sends after dialing.
	Hello() []byte
	// Admit checks a dialer's hello: the answer to send back, and whether to keep the
	// connection.
	Admit(hello []byte) (answer []byte, ok bool)
	// Answered handles the acceptor's answer at addr to this member's hello: nil to go on,
	// or the error that refuses the connection.
	Answered(addr string, answer []byte) error
	// Legacy reports whether raft without the handshake (LegacyRaftProto, an older agent
	// during a rolling upgrade) may be spoken.
	Legacy() bool
}

// maxHandshake bounds a hello or an answer.
const maxHandshake = 64 << 10

// ErrClosed is returned by Accept after Close.
var ErrClosed = errors.New("listener closed")

const handshakeTimeout = 10 * time.Second

// Mux accepts TLS connections and splits them between raft and HTTP.
type Mux struct {
	ln        net.Listener
	conf      *tls.Config
	authRaft  func(*x509.Certificate) bool
	log       *slog.Logger
	raftCh    chan net.Conn
	httpCh    chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
	fence     atomic.Pointer[fenceBox]
}

// fenceBox holds the Fence of the current raft layer.
type fenceBox struct{ f Fence }

// Listen starts accepting on addr. conf serves the certificate; authRaft decides whether a
// peer certificate may speak raft (it must be the cluster certificate).
func Listen(addr string, conf *tls.Config, authRaft func(*x509.Certificate) bool, log *slog.Logger) (*Mux, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	conf = conf.Clone()
	conf.NextProtos = []string{RaftProto, LegacyRaftProto, "http/1.1"}
	if conf.ClientAuth == tls.NoClientCert {
		conf.ClientAuth = tls.RequestClientCert
	}
	m := &Mux{ln: ln, conf: conf, authRaft: authRaft, log: log,
		raftCh: make(chan net.Conn), httpCh: make(chan net.Conn), done: make(chan struct{})}
	go m.acceptLoop()
	return m, nil
}

// Addr is the bound address.
func (m *Mux) Addr() net.Addr { return m.ln.Addr() }

// Close stops accepting; connections already handed out stay open.
func (m *Mux) Close() error {
	var err error
	m.closeOnce.Do(func() {
		close(m.done)
		err = m.ln.Close()
	})
	return err
}

func (m *Mux) acceptLoop() {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			m.log.Warn("accept failed", "err", err)
			return
		}
		go m.route(c)
	}
}

func (m *Mux) route(raw net.Conn) {
	tc := tls.Server(raw, m.conf)
	_ = tc.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := tc.Handshake(); err != nil {
		raw.Close()
		return
	}
	_ = tc.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	ch := m.httpCh
	if st.NegotiatedProtocol == RaftProto || st.NegotiatedProtocol == LegacyRaftProto {
		if len(st.PeerCertificates) == 0 || !m.authRaft(st.PeerCertificates[0]) {
			m.log.Warn("refused raft connection without the cluster certificate", "remote", raw.RemoteAddr())
			tc.Close()
			return
		}
		if !m.admit(tc, st.NegotiatedProtocol) {
			tc.Close()
			return
		}
		ch = m.raftCh
	}
	select {
	case ch <- tc:
	case <-m.done:
		tc.Close()
	}
}

// admit runs the acceptor's half of the raft handshake.
func (m *Mux) admit(c net.Conn, proto string) bool {
	box := m.fence.Load()
	if box == nil {
		return false // no raft layer yet: nothing to talk raft with
	}
	if proto == LegacyRaftProto {
		return box.f.Legacy()
	}
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	hello, err := readFrame(c)
	if err != nil {
		m.log.Warn("raft handshake failed", "remote", c.RemoteAddr(), "err", err)
		return false
	}
	answer, ok := box.f.Admit(hello)
	if err := writeFrame(c, answer); err != nil {
		return false
	}
	_ = c.SetDeadline(time.Time{})
	return ok
}

// readFrame reads one length-prefixed handshake message.
func readFrame(r io.Reader) ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > maxHandshake {
		return nil, fmt.Errorf("handshake message of %d bytes", size)
	}
	b := make([]byte, size)
	_, err := io.ReadFull(r, b)
	return b, err
}

// writeFrame writes one length-prefixed handshake message.
func writeFrame(w io.Writer, b []byte) error {
	buf := make([]byte, 4+len(b))
	binary.BigEndian.PutUint32(buf, uint32(len(b)))
	copy(buf[4:], b)
	_, err := w.Write(buf)
	return err
}

// HTTP returns a listener yielding the HTTP connections (already TLS).
func (m *Mux) HTTP() net.Listener { return &chanListener{m: m, ch: m.httpCh} }

type chanListener struct {
	m  *Mux
	ch chan net.Conn
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.m.done:
		return nil, ErrClosed
	}
}

func (l *chanListener) Close() error   { return l.m.Close() }
func (l *chanListener) Addr() net.Addr { return l.m.Addr() }

// RaftLayer returns the raft.StreamLayer of this port. dialConf presents the cluster
// certificate and pins it on the other side; advertise is this member's cluster address;
// fence admits peers on both ends (the newest layer's fence serves incoming connections).
func (m *Mux) RaftLayer(dialConf *tls.Config, advertise string, fence Fence) (raft.StreamLayer, error) {
	adv, err := net.ResolveTCPAddr("tcp", advertise)
	if err != nil {
		return nil, fmt.Errorf("cluster address %q: %w", advertise, err)
	}
	if fence == nil {
		return nil, errors.New("raft layer without a fence")
	}
	dc := dialConf.Clone()
	dc.NextProtos = []string{RaftProto, LegacyRaftProto}
	m.fence.Store(&fenceBox{f: fence})
	return &raftLayer{m: m, dial: dc, adv: adv, fence: fence, done: make(chan struct{})}, nil
}

type raftLayer struct {
	m         *Mux
	dial      *tls.Config
	adv       net.Addr
	fence     Fence
	done      chan struct{}
	closeOnce sync.Once
}

func (l *raftLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.m.raftCh:
		return c, nil
	case <-l.done:
		return nil, ErrClosed
	case <-l.m.done:
		return nil, ErrClosed
	}
}

func (l *raftLayer) Addr() net.Addr { return l.adv }

// Close stops this layer only, not the shared port: raft shuts its transport down before the
// daemon is done with HTTP, and a reopened store gets a new layer on the same port.
func (l *raftLayer) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return nil
}

func (l *raftLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	c, err := tls.DialWithDialer(d, "tcp", string(address), l.dial)
	if err != nil {
		return nil, err
	}
	switch proto := c.ConnectionState().NegotiatedProtocol; {
	case proto == LegacyRaftProto && l.fence.Legacy():
		return c, nil // an older agent (rolling upgrade): no handshake
	case proto != RaftProto:
		c.Close()
		return nil, fmt.Errorf("%s does not speak %s", address, RaftProto)
	}
	if err := l.handshake(c, string(address), timeout); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// handshake runs the dialer's half: send the hello, let the fence judge the answer.
func (l *raftLayer) handshake(c net.Conn, addr string, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = handshakeTimeout
	}
	_ = c.SetDeadline(time.Now().Add(timeout))
	if err := writeFrame(c, l.fence.Hello()); err != nil {
		return fmt.Errorf("raft handshake with %s: %w", addr, err)
	}
	answer, err := readFrame(c)
	if err != nil {
		return fmt.Errorf("raft handshake with %s: %w", addr, err)
	}
	if err := l.fence.Answered(addr, answer); err != nil {
		return err
	}
	return c.SetDeadline(time.Time{})
}
