package serverconfig

import (
	"net/http"
	"unicode/utf8"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/rest"
)

// decodePut reads the body of PUT or PATCH /1.0. The body clients send, {"config": {...}}
// with plain strings, is read by plainPut without encoding/json's reflection and its
// second pass over the bytes (a twelfth of the leader's CPU under 16 clients PATCHing);
// any other body, and every malformed one, goes through rest.DecodeJSON, whose strict
// decoding and messages stay the rule. plainPut accepts only what encoding/json reads into
// the same ServerPut (TestPlainPutAgreesWithEncodingJSON).
func decodePut(r *http.Request) (api.ServerPut, error) {
	var put api.ServerPut
	data, err := rest.ReadBody(r)
	if err != nil {
		return put, err
	}
	if cfg, ok := plainPut(data); ok {
		return api.ServerPut{Config: cfg}, nil
	}
	return put, rest.DecodeJSON(data, &put)
}

// plainPut parses data when it is exactly {"config": {"key": "value", ...}} (JSON
// whitespace anywhere between tokens) with strings that have no escapes, no control
// characters and valid UTF-8; ok is false for anything else, left to encoding/json.
// A repeated key keeps its last value, as encoding/json does.
func plainPut(data []byte) (map[string]string, bool) {
	p := plainParser{data: data}
	if !p.byte('{') || !p.literal(`"config"`) || !p.byte(':') || !p.byte('{') {
		return nil, false
	}
	cfg := map[string]string{}
	if !p.byte('}') {
		for {
			k, ok := p.str()
			if !ok || !p.byte(':') {
				return nil, false
			}
			v, ok := p.str()
			if !ok {
				return nil, false
			}
			cfg[k] = v
			if p.byte('}') {
				break
			}
			if !p.byte(',') {
				return nil, false
			}
		}
	}
	if !p.byte('}') {
		return nil, false
	}
	p.space()
	return cfg, p.i == len(p.data)
}

// plainParser walks a body for plainPut.
type plainParser struct {
	data []byte
	i    int
}

// space skips JSON whitespace.
func (p *plainParser) space() {
	for p.i < len(p.data) {
		switch p.data[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// byte consumes c after whitespace, if it is next.
func (p *plainParser) byte(c byte) bool {
	p.space()
	if p.i < len(p.data) && p.data[p.i] == c {
		p.i++
		return true
	}
	return false
}

// literal consumes s after whitespace, if it is next.
func (p *plainParser) literal(s string) bool {
	p.space()
	if len(p.data)-p.i >= len(s) && string(p.data[p.i:p.i+len(s)]) == s {
		p.i += len(s)
		return true
	}
	return false
}

// str consumes a string without escapes or control characters, in valid UTF-8.
func (p *plainParser) str() (string, bool) {
	if !p.byte('"') {
		return "", false
	}
	start := p.i
	for ; p.i < len(p.data); p.i++ {
		switch c := p.data[p.i]; {
		case c == '"':
			s := p.data[start:p.i]
			p.i++
			return string(s), utf8.Valid(s)
		case c == '\\' || c < 0x20:
			return "", false
		}
	}
	return "", false
}
