package serverconfig

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/rest"
)

// plainPutCases are bodies at the edges of what plainPut reads, and bodies it must leave
// to encoding/json (escapes, invalid UTF-8 that encoding/json replaces, other spellings of
// the field, anything but strings, trailing data).
var plainPutCases = []string{
	`{"config":{"user.a":"1"}}`,
	` { "config" : { "user.a" : "1" , "user.b" : "" } } ` + "\n",
	"{\"config\":{\r\n\t\"user.a\":\"2026-12-07 02:48:04.123 +0000 UTC m=+1.2\"}}",
	`{"config":{}}`,
	`{"config":{"user.a":"1","user.a":"2"}}`,
	`{"config":{"user.é":"ünïcode ✓"}}`,
	`{"config":{"user.a":"a\"b"}}`,
	`{"config":{"user.a":"\u00e9"}}`,
	`{"config":{"user.a":"\/"}}`,
	"{\"config\":{\"user.a\":\"\xff\"}}",
	"{\"config\":{\"user.\xc3\":\"1\"}}",
	"{\"config\":{\"user.a\":\"tab\there\"}}",
	`{"Config":{"user.a":"1"}}`,
	`{"CONFIG":{"user.a":"1"}}`,
	`{"config":{"user.a":1}}`,
	`{"config":{"user.a":null}}`,
	`{"config":null}`,
	`{"config":{"user.a":"1"},"config":{"user.b":"2"}}`,
	`{"config":{"user.a":"1"},"other":1}`,
	`{}`,
	`{"config":{"user.a":"1"}}{}`,
	`{"config":{"user.a":"1"}} x`,
	`{"config":{"user.a":"1",}}`,
	`{"config":{"user.a" "1"}}`,
	`{"config":{"user.a":"1"}`,
	`{"config":{"user.a":"1`,
	`["config"]`,
	``,
}

// TestPlainPutAgreesWithEncodingJSON: whatever plainPut accepts, encoding/json (through
// rest.DecodeJSON, strict) accepts too and reads into the same configuration. Without its
// checks plainPut would keep escapes and invalid UTF-8 that encoding/json rewrites, and
// accept trailing data that the strict decoder refuses.
func TestPlainPutAgreesWithEncodingJSON(t *testing.T) {
	accepted := 0
	check := func(body string) {
		t.Helper()
		cfg, ok := plainPut([]byte(body))
		if !ok {
			return
		}
		accepted++
		var put api.ServerPut
		if err := rest.DecodeJSON([]byte(body), &put); err != nil {
			t.Fatalf("plainPut accepted %q, encoding/json refuses it: %v", body, err)
		}
		if !reflect.DeepEqual(cfg, put.Config) {
			t.Fatalf("body %q: plainPut read %q, encoding/json %q", body, cfg, put.Config)
		}
	}
	for _, body := range plainPutCases {
		check(body)
	}
	if accepted < 6 {
		t.Fatalf("plainPut accepted %d of the plain bodies, want at least 6", accepted)
	}
	rng := rand.New(rand.NewPCG(19, 2))
	for range 20000 {
		check(mutate(rng, plainPutCases[rng.IntN(len(plainPutCases))]))
	}
}

// mutate changes one to three bytes of body: replaced by, or inserted from, bytes JSON
// gives a meaning to (and a few it does not), or deleted.
func mutate(rng *rand.Rand, body string) string {
	const alphabet = "{}[]:,\"\\ \t\nu0aA\xff\xc3\x01"
	b := []byte(body)
	for range 1 + rng.IntN(3) {
		c := alphabet[rng.IntN(len(alphabet))]
		i := 0
		if len(b) > 0 {
			i = rng.IntN(len(b))
		}
		switch rng.IntN(3) {
		case 0:
			if len(b) > 0 {
				b[i] = c
			}
		case 1:
			b = append(b[:i], append([]byte{c}, b[i:]...)...)
		default:
			if len(b) > 0 {
				b = append(b[:i], b[i+1:]...)
			}
		}
	}
	return string(b)
}

// The bodies clients send take the plain path (else it would save nothing).
func TestPlainPutReadsClientBodies(t *testing.T) {
	for _, body := range []string{`{"config":{"user.bench3":"2026-12-07 02:48:04 +0000 UTC"}}`, `{"config":{}}`,
		`{"config":{"core.https_address":"127.0.0.1:8443","images.auto_update_interval":"0"}}`} {
		if _, ok := plainPut([]byte(body)); !ok {
			t.Errorf("plainPut left %q to encoding/json", body)
		}
	}
	if _, ok := plainPut([]byte(strings.Repeat(" ", 3) + `{"config":{"a":"b"}}`)); !ok {
		t.Error("plainPut refused leading whitespace")
	}
}
