package operations

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"

	"github.com/gorilla/websocket"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/rest"
)

// upgrader upgrades operation websockets; the client is authenticated by the route's
// access level and the secret, not by its origin.
var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// connectSocket is GET /1.0/operations/ID/websocket?secret=S: the websocket the secret
// names, handed to the operation's work.
func (m *Manager) connectSocket(w http.ResponseWriter, r *http.Request, op *operation) error {
	secret := r.URL.Query().Get("secret")
	op.mu.Lock()
	fd, ok := op.secrets[secret]
	if ok {
		delete(op.secrets, secret) // one connection per secret
	}
	op.mu.Unlock()
	if !ok || secret == "" {
		return api.Errorf(http.StatusForbidden, "operation %s: %v", op.view.ID, ErrBadSecret)
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return nil // the upgrader answered the client already
	}
	op.sockets[fd] <- &socket{Conn: conn}
	return nil
}

// socket is a websocket whose writes may come from several goroutines.
type socket struct {
	*websocket.Conn
	mu sync.Mutex
}

// WriteMessage writes one message, one writer at a time.
func (s *socket) WriteMessage(t int, p []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Conn.WriteMessage(t, p)
}

// proxiedHeaders are the request and answer headers a forward passes on.
var proxiedHeaders = []string{"Content-Type", "ETag", "Location"}

// upgradeHeaders are the request headers of a websocket handshake.
var upgradeHeaders = []string{"Connection", "Upgrade", "Sec-Websocket-Key", "Sec-Websocket-Version", "Sec-Websocket-Extensions", "Sec-Websocket-Protocol"}

// forward sends the request to the member at addr, marked local there, and copies the
// answer back; a websocket handshake is passed through and the connection then spliced
// both ways until either side closes.
func (m *Manager) forward(w http.ResponseWriter, r *http.Request, addr string) error {
	c, err := m.Peers.Client(addr)
	if err != nil {
		return err
	}
	hdr := http.Header{localHeader: {"1"}}
	for _, k := range append(proxiedHeaders, upgradeHeaders...) {
		if v := r.Header.Values(k); len(v) > 0 {
			hdr[k] = v
		}
	}
	resp, err := c.Raw(context.WithoutCancel(r.Context()), r.Method, r.URL.RequestURI(), nil, hdr)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its URL may hold a websocket's secret: never in an answer or a log
		}
		return api.Errorf(http.StatusBadGateway, "member %s did not answer %s %s: %v", addr, r.Method, r.URL.Path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return splice(w, resp)
	}
	for _, k := range proxiedHeaders {
		if v := resp.Header.Get(k); v != "" {
			w.Header().Set(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
	return nil
}

// splice finishes the client's handshake with the member's answer and copies bytes both
// ways between the client's connection and the member's.
func splice(w http.ResponseWriter, resp *http.Response) error {
	upstream, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		return fmt.Errorf("websocket answer of %s is not a connection", resp.Request.URL.Host)
	}
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := writeHandshake(buf.Writer, resp); err != nil {
		return nil
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(upstream, buf.Reader); closeWrite(upstream); done <- struct{}{} }()
	go func() { _, _ = io.Copy(conn, upstream); closeWrite(conn); done <- struct{}{} }()
	<-done
	upstream.Close()
	conn.Close()
	<-done
	return nil
}

// writeHandshake writes the 101 answer to the client.
func writeHandshake(w *bufio.Writer, resp *http.Response) error {
	fmt.Fprintf(w, "HTTP/1.1 101 Switching Protocols\r\n")
	for _, k := range []string{"Upgrade", "Connection", "Sec-Websocket-Accept", "Sec-Websocket-Extensions", "Sec-Websocket-Protocol"} {
		for _, v := range resp.Header.Values(k) {
			fmt.Fprintf(w, "%s: %s\r\n", k, v)
		}
	}
	fmt.Fprintf(w, "\r\n")
	return w.Flush()
}

// closeWrite half-closes c when it can.
func closeWrite(c any) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

var _ rest.Socket = (*socket)(nil)
