package inventory

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// golden compares got with testdata/golden/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestOutputsGolden(t *testing.T) {
	cases := []struct{ name, path, host string }{
		{"basic", "testdata/basic/hosts.ini", "one.example.com"},
		{"cluster", "testdata/cluster/hosts.yml", "node4"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			inv := mustLoad(t, c.path)
			list, err := inv.ListJSON()
			if err != nil {
				t.Fatal(err)
			}
			golden(t, c.name+".list.json", list)
			graph, err := inv.Graph("")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, c.name+".graph.txt", []byte(graph))
			host, err := inv.HostJSON(c.host)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, c.name+".host.json", host)
		})
	}
}

func TestGraphSubtree(t *testing.T) {
	inv := mustLoad(t, "testdata/basic/hosts.ini")
	got, err := inv.Graph("datacenter")
	if err != nil {
		t.Fatal(err)
	}
	want := "@datacenter:\n  |--@webservers:\n  |  |--foo.example.com\n  |  |--bar.example.com\n" +
		"  |--@dbservers:\n  |  |--db01.example.com\n  |  |--db02.example.com\n  |  |--db03.example.com\n  |  |--one.example.com\n"
	if got != want {
		t.Errorf("graph:\n%s\nwant:\n%s", got, want)
	}
	if _, err := inv.Graph("nope"); !errors.Is(err, ErrUnknownGroup) || err.Error() != `group "nope": unknown group` {
		t.Errorf("Graph(nope) error = %v", err)
	}
	if _, err := inv.HostVars("nope"); !errors.Is(err, ErrUnknownHost) || err.Error() != `host "nope": unknown host` {
		t.Errorf("HostVars(nope) error = %v", err)
	}
}

// An empty inventory lists like `ansible-inventory --list` on an empty file.
func TestListJSONEmpty(t *testing.T) {
	inv := mustParse(t, "empty", "")
	got, err := inv.ListJSON()
	if err != nil {
		t.Fatal(err)
	}
	want := "{\n    \"_meta\": {\n        \"hostvars\": {}\n    },\n    \"all\": {\n        \"children\": [\n            \"ungrouped\"\n        ]\n    }\n}\n"
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestClusterFixtureHosts(t *testing.T) {
	inv := mustLoad(t, "testdata/cluster/hosts.yml")
	c, err := inv.Host("spare1").Connection()
	if err != nil {
		t.Fatal(err)
	}
	want := Connection{Host: "10.0.0.99", Port: 2201, User: "ubuntu", Become: true, BecomeUser: "root",
		ProxyJump: []Endpoint{{User: "ops", Host: "bastion.example.com", Port: 2222}}}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("spare1 connection:\n got %+v\nwant %+v", c, want)
	}
	a, err := inv.Host("node4").Agent()
	if err != nil {
		t.Fatal(err)
	}
	if a.ClusterAddress != "10.0.0.14:8443" || len(a.MemberConfig) != 1 || a.MemberConfig[0].Value != "/dev/vdb" {
		t.Errorf("node4 agent settings = %+v", a)
	}
}
