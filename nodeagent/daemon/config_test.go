package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
)

// patchConfig sends PATCH /1.0 through the routes from the local socket.
func patchConfig(d *Daemon, h http.Handler, cfg map[string]string, ifMatch string) (int, string) {
	body, _ := json.Marshal(map[string]any{"config": cfg})
	hdr := http.Header{}
	if ifMatch != "" {
		hdr.Set("If-Match", ifMatch)
	}
	code, resp := serveAs(d, h, fuzzCaller{}, http.MethodPatch, "/1.0", body, hdr)
	return code, resp.Error
}

// Concurrent PATCHes of different keys must not queue behind one another: they share raft
// log entries. Under a daemon-wide lock every PATCH took an entry of its own.
func TestConcurrentPatchesShareLogEntries(t *testing.T) {
	d := newFuzzDaemon(t)
	h := d.srv.Handler()
	const clients = 32
	before, _ := d.store().LastIndexTerm()
	var wg sync.WaitGroup
	start := make(chan struct{})
	codes := make([]int, clients)
	msgs := make([]string, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			codes[i], msgs[i] = patchConfig(d, h, map[string]string{fmt.Sprintf("user.c%d", i): "v"}, "")
		}()
	}
	close(start)
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Fatalf("PATCH %d: %d %s", i, c, msgs[i])
		}
	}
	after, _ := d.store().LastIndexTerm()
	if entries := after - before; entries >= clients {
		t.Errorf("%d concurrent PATCHes took %d log entries; want them to share entries", clients, entries)
	} else {
		t.Logf("%d concurrent PATCHes in %d log entries", clients, entries)
	}
	cs, err := d.conf.Full(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i := range clients {
		if v := cs.Config[fmt.Sprintf("user.c%d", i)]; v != "v" {
			t.Errorf("user.c%d = %q", i, v)
		}
	}
}

// If-Match stays a compare-and-set: of many PATCHes sent concurrently with the same fresh
// ETag exactly one succeeds, every other one gets 412 and changes nothing; a stale or
// malformed ETag gets 412; an ETag-guarded PATCH that changes no replicated key still
// checks the version.
func TestPatchIfMatchIsCompareAndSet(t *testing.T) {
	d := newFuzzDaemon(t)
	h := d.srv.Handler()
	cs, err := d.conf.Full(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	const clients = 16
	var wg sync.WaitGroup
	start := make(chan struct{})
	codes := make([]int, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			codes[i], _ = patchConfig(d, h, map[string]string{"user.cas": fmt.Sprint(i), fmt.Sprintf("user.by%d", i): "x"}, cs.ETag)
		}()
	}
	close(start)
	wg.Wait()
	won := -1
	for i, c := range codes {
		switch {
		case c == http.StatusOK && won >= 0:
			t.Fatalf("PATCHes %d and %d both succeeded with the same ETag", won, i)
		case c == http.StatusOK:
			won = i
		case c != http.StatusPreconditionFailed:
			t.Fatalf("PATCH %d: status %d, want 200 or 412", i, c)
		}
	}
	if won < 0 {
		t.Fatal("no PATCH succeeded with a fresh ETag")
	}
	after, err := d.conf.Full(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if after.Config["user.cas"] != fmt.Sprint(won) {
		t.Errorf("user.cas = %q, want %d (the winner)", after.Config["user.cas"], won)
	}
	for i := range clients {
		if _, ok := after.Config[fmt.Sprintf("user.by%d", i)]; ok != (i == won) {
			t.Errorf("user.by%d present = %v; only the winner's keys may be written", i, ok)
		}
	}
	for name, etag := range map[string]string{"stale": cs.ETag, "garbage": `"not-an-etag"`, "star": "*", "unquoted": after.ETag[1 : len(after.ETag)-1]} {
		if code, msg := patchConfig(d, h, map[string]string{"user.cas": "late"}, etag); code != http.StatusPreconditionFailed {
			t.Errorf("%s ETag: %d %s, want 412", name, code, msg)
		}
		if code, _ := patchConfig(d, h, map[string]string{}, etag); code != http.StatusPreconditionFailed {
			t.Errorf("%s ETag on an empty PATCH: %d, want 412", name, code)
		}
	}
	if code, msg := patchConfig(d, h, map[string]string{}, after.ETag); code != http.StatusOK {
		t.Errorf("empty PATCH with the fresh ETag: %d %s", code, msg)
	}
	if code, msg := patchConfig(d, h, map[string]string{"user.cas": "fresh"}, after.ETag); code != http.StatusOK {
		t.Errorf("PATCH with the fresh ETag: %d %s", code, msg)
	}
}
