package netmux

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"orch/nodeagent/api"
	"orch/nodeagent/api/pki"
)

// testFence admits a hello equal to its own epoch string; it records answers it got.
type testFence struct {
	epoch   string
	legacy  bool
	refused []string
}

func (f *testFence) Hello() []byte { return []byte(f.epoch) }

func (f *testFence) Admit(hello []byte) ([]byte, bool) {
	if string(hello) == f.epoch {
		return []byte("ok"), true
	}
	return []byte("cut off by " + f.epoch), false
}

func (f *testFence) Answered(addr string, answer []byte) error {
	if string(answer) == "ok" {
		return nil
	}
	f.refused = append(f.refused, string(answer))
	return errors.New(string(answer))
}

func (f *testFence) Legacy() bool { return f.legacy }

// member is one mux with its raft layer, on loopback.
type member struct {
	mux   *Mux
	fence *testFence
	conf  *tls.Config
}

func newMember(t *testing.T, kp pki.KeyPair, epoch string) *member {
	t.Helper()
	cert, err := kp.TLS()
	if err != nil {
		t.Fatal(err)
	}
	der, _ := pki.DER(kp.CertPEM)
	fp, _ := kp.Fingerprint()
	srv := &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequestClientCert}
	auth := func(c *x509.Certificate) bool { return bytes.Equal(c.Raw, der) }
	m, err := Listen("127.0.0.1:0", srv, auth, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return &member{mux: m, fence: &testFence{epoch: epoch}, conf: api.TLSConfig(cert, fp)}
}

// TestRaftHandshakeFences: two members of the same epoch talk raft; a member of another
// epoch is refused on both ends — its Dial fails with the acceptor's answer and the
// acceptor never hands the connection to raft; a legacy (pre-epoch) raft connection is
// admitted only when the fence allows it.
func TestRaftHandshakeFences(t *testing.T) {
	kp, err := pki.Generate("cluster", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	a, b := newMember(t, kp, "epoch-1"), newMember(t, kp, "epoch-1")
	la, err := a.mux.RaftLayer(a.conf, a.mux.Addr().String(), a.fence)
	if err != nil {
		t.Fatal(err)
	}
	lb, err := b.mux.RaftLayer(b.conf, b.mux.Addr().String(), b.fence)
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := la.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	c, err := lb.Dial(raft.ServerAddress(a.mux.Addr().String()), 2*time.Second)
	if err != nil {
		t.Fatalf("same epoch: %v", err)
	}
	if _, err := c.Write([]byte("raft")); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-accepted:
		buf := make([]byte, 4)
		if _, err := got.Read(buf); err != nil || string(buf) != "raft" {
			t.Fatalf("raft bytes after the handshake: %q, %v", buf, err)
		}
		got.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("the accepted connection never reached raft")
	}
	c.Close()

	b.fence.epoch = "epoch-0"
	if _, err := lb.Dial(raft.ServerAddress(a.mux.Addr().String()), 2*time.Second); err == nil || len(b.fence.refused) != 1 || b.fence.refused[0] != "cut off by epoch-1" {
		t.Fatalf("older epoch: dial error %v, answers %v; want a refusal carrying the acceptor's epoch", err, b.fence.refused)
	}
	select {
	case <-accepted:
		t.Fatal("a refused connection reached raft")
	case <-time.After(200 * time.Millisecond): // nothing may arrive: observing an absence
	}

	legacy := a.conf.Clone()
	legacy.NextProtos = []string{LegacyRaftProto}
	for _, allow := range []bool{false, true} {
		a.fence.legacy = allow
		lc, err := tls.Dial("tcp", a.mux.Addr().String(), legacy)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-accepted:
			if !allow {
				t.Fatal("a legacy raft connection reached raft while the fence forbids it")
			}
			got.Close()
		case <-time.After(time.Second):
			if allow {
				t.Fatal("a legacy raft connection allowed by the fence never reached raft")
			}
		}
		lc.Close()
	}
}
