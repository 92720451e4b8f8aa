package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// lxdShaped serves LXD's envelopes on a unix socket: a sync answer, an error, and an async
// answer whose operation's /wait first says Running, then Cancelling (not an end either),
// then Failure with an err.
// (The real daemon answers `nodeagent query` in integration/orchup's TestLXDModules.)
func lxdShaped(t *testing.T) (socket string, bodies chan string) {
	t.Helper()
	socket = filepath.Join(t.TempDir(), "unix.socket")
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	bodies = make(chan string, 4)
	waits := 0
	mux := http.NewServeMux()
	mux.HandleFunc("GET /1.0/instances/c1", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `{"type":"sync","status":"Success","status_code":200,"metadata":{"name":"c1","status":"Running"}}`)
	})
	mux.HandleFunc("GET /1.0/instances/gone", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"type":"error","error":"Instance not found","error_code":404}`)
	})
	mux.HandleFunc("PUT /1.0/instances/c1/state", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- string(b)
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"type":"async","status":"Operation created","status_code":100,"operation":"/1.0/operations/op1","metadata":{"id":"op1","status":"Running"}}`)
	})
	mux.HandleFunc("GET /1.0/operations/op1/wait", func(w http.ResponseWriter, _ *http.Request) {
		waits++
		status, code, errText := "Running", 103, ""
		switch waits {
		case 2:
			status, code = "Cancelling", 104
		case 3:
			status, code, errText = "Failure", 400, "lxc-start: no init"
		}
		json.NewEncoder(w).Encode(map[string]any{"type": "sync", "status": "Success", "status_code": 200,
			"metadata": map[string]any{"id": "op1", "status": status, "status_code": code, "err": errText}})
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return socket, bodies
}

func runQuery(stdin string, args ...string) answer {
	var out, errb bytes.Buffer
	code := Main(append([]string{"query"}, args...), strings.NewReader(stdin), &out, &errb)
	return answer{code: code, out: out.String(), errOut: errb.String()}
}

// TestQueryPrintsAnswers: metadata by default, the whole envelope with --raw (exit 0 for an
// error answer too), the server's message and exit 1 for an error without --raw, a body from
// stdin, and --wait following an operation until it ends, its err failing the command.
func TestQueryPrintsAnswers(t *testing.T) {
	socket, bodies := lxdShaped(t)
	url := "--url=unix:" + socket

	a := runQuery("", url, "/1.0/instances/c1")
	var meta map[string]any
	if a.code != 0 || json.Unmarshal([]byte(a.out), &meta) != nil || meta["status"] != "Running" {
		t.Fatalf("GET c1: %+v", a)
	}
	if a := runQuery("", url, "/1.0/instances/gone"); a.code != 1 || !strings.Contains(a.errOut, "Instance not found") {
		t.Fatalf("GET gone without --raw: %+v", a)
	}
	a = runQuery("", url, "--raw", "/1.0/instances/gone")
	var env map[string]any
	if a.code != 0 || json.Unmarshal([]byte(a.out), &env) != nil || env["error_code"] != 404.0 || env["type"] != "error" {
		t.Fatalf("GET gone --raw: %+v", a)
	}

	a = runQuery(`{"action":"start"}`, url, "-X", "put", "-d", "-", "--raw", "/1.0/instances/c1/state")
	if a.code != 0 || !strings.Contains(a.out, `"async"`) || <-bodies != `{"action":"start"}` {
		t.Fatalf("PUT state without --wait: %+v", a)
	}
	a = runQuery("", url, "-X", "PUT", "-d", `{"action":"start"}`, "--wait", "/1.0/instances/c1/state")
	if a.code != 1 || !strings.Contains(a.errOut, "lxc-start: no init") {
		t.Fatalf("PUT state --wait (a failing operation): %+v", a)
	}
	<-bodies
	if a := runQuery("", "--url=http://x", "/1.0"); a.code != 1 || !strings.Contains(a.errOut, "unix:/path/to/socket") {
		t.Fatalf("--url http: %+v", a)
	}
}
