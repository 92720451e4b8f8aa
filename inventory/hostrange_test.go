package inventory

import (
	"errors"
	"reflect"
	"testing"
)

func TestExpandHostPattern(t *testing.T) {
	cases := []struct {
		in   string
		want []string
		port int
	}{
		{"web", []string{"web"}, 0},
		{"web:2222", []string{"web"}, 2222},
		{"node[01:03]", []string{"node01", "node02", "node03"}, 0},
		{"node[1:3]", []string{"node1", "node2", "node3"}, 0},
		{"node[8:10]", []string{"node8", "node9", "node10"}, 0},
		{"node[01:10:4]", []string{"node01", "node05", "node09"}, 0},
		{"node[:2]", []string{"node0", "node1", "node2"}, 0},
		{"db-[a:c].example.com", []string{"db-a.example.com", "db-b.example.com", "db-c.example.com"}, 0},
		{"[a:f:2]x", []string{"ax", "cx", "ex"}, 0},
		{"r[1:2]c[a:b]", []string{"r1ca", "r1cb", "r2ca", "r2cb"}, 0},
		{"node[1:2]:2200", []string{"node1", "node2"}, 2200},
		{"10.0.0.[1:2]", []string{"10.0.0.1", "10.0.0.2"}, 0},
		{"[2001:db8::1]:22", []string{"2001:db8::1"}, 22},
		{"2001:db8::1", []string{"2001:db8::1"}, 0},
	}
	for _, c := range cases {
		got, port, err := expandHostPattern(c.in, Pos{File: "f", Line: 1, Col: 1})
		if err != nil || !reflect.DeepEqual(got, c.want) || port != c.port {
			t.Errorf("expandHostPattern(%q) = %v, %d, %v; want %v, %d", c.in, got, port, err, c.want, c.port)
		}
	}
}

func TestExpandHostPatternErrors(t *testing.T) {
	for _, in := range []string{"n[1:x]", "n[1]", "n[1:2:0]", "n[1:2:x]", "n[1:]", "n[01:100]", "n[z:a]", "n[1:2", "n]1:2["} {
		_, _, err := expandHostPattern(in, Pos{File: "f", Line: 3, Col: 1})
		if !errors.Is(err, ErrBadRange) {
			t.Errorf("expandHostPattern(%q) error = %v, want ErrBadRange", in, err)
		}
	}
}
