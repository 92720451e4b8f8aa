package api

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestParseGuidePreseeds(t *testing.T) {
	for _, f := range []string{"guide-bootstrap.yaml", "guide-join.yaml", "guide-separate.yaml"} {
		data, err := os.ReadFile("testdata/" + f)
		if err != nil {
			t.Fatal(err)
		}
		p, err := ParsePreseed(f, data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if p.Cluster == nil || !p.Cluster.Enabled || p.Cluster.ServerName == "" {
			t.Fatalf("%s: cluster section not decoded: %+v", f, p.Cluster)
		}
	}
}

func TestParseBootstrapPreseedFields(t *testing.T) {
	data, _ := os.ReadFile("testdata/guide-bootstrap.yaml")
	p, err := ParsePreseed("b.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Config["images.auto_update_interval"]; got != "15" {
		t.Errorf("integer config value = %q, want \"15\"", got)
	}
	if p.StoragePools[0].Driver != "dir" || p.Networks[0].Config["ipv4.address"] != "192.168.100.14/24" {
		t.Errorf("pools/networks not decoded: %+v %+v", p.StoragePools, p.Networks)
	}
	if p.Profiles[0].Devices["eth0"]["parent"] != "lxdbr0" {
		t.Errorf("profile devices not decoded: %+v", p.Profiles[0].Devices)
	}
}

func TestJoinPreseedCertificateRecipe(t *testing.T) {
	data, _ := os.ReadFile("testdata/guide-join.yaml")
	p, err := ParsePreseed("j.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	pem := CertificatePEM(p.Cluster.ClusterCertificate)
	lines := strings.Split(strings.TrimSpace(pem), "\n")
	if len(lines) != 4 || lines[0] != "-----BEGIN CERTIFICATE-----" || lines[3] != "-----END CERTIFICATE-----" {
		t.Fatalf("the guide's doubled-newline PEM was not restored: %q", pem)
	}
	if p.Cluster.MemberConfig[0].Key != "source" {
		t.Fatalf("member_config not decoded: %+v", p.Cluster.MemberConfig)
	}
}

func TestMalformedPreseedPositions(t *testing.T) {
	cases := []struct {
		name, doc, want string
	}{
		{"unknown top key", "config: {}\nclustr:\n  enabled: true\n", "p.yaml:2:1: clustr: unknown key"},
		{"unknown nested key", "cluster:\n  enabled: true\n  server_nme: x\n", "p.yaml:3:3: cluster.server_nme: unknown key"},
		{"wrong type", "cluster:\n  enabled: maybe\n", "p.yaml:2:12: cluster.enabled:"},
		{"list expected", "storage_pools:\n  name: x\n", "p.yaml:2:3: storage_pools: expected a list"},
		{"bad yaml", "cluster:\n  enabled: true\n   bad: [\n", "p.yaml:3:"},
		{"duplicate", "cluster:\n  enabled: true\n  enabled: false\n", "p.yaml:3:"},
		{"pool key typo", "storage_pools:\n- name: d\n  drivr: dir\n", "p.yaml:3:3: storage_pools[0].drivr: unknown key"},
	}
	for _, c := range cases {
		_, err := ParsePreseed("p.yaml", []byte(c.doc))
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s: error %v, want prefix %q", c.name, err, c.want)
		}
		if err != nil && !errors.Is(err, ErrSyntax) {
			t.Errorf("%s: error does not wrap ErrSyntax", c.name)
		}
	}
}

func TestPreseedSemanticErrors(t *testing.T) {
	_, err := ParsePreseed("p.yaml", []byte("storage_pools:\n- name: a\n  driver: dir\n- name: a\n  driver: dir\n"))
	if err == nil || !strings.Contains(err.Error(), `duplicate pool "a"`) {
		t.Fatalf("duplicate pool not refused: %v", err)
	}
	_, err = ParsePreseed("p.yaml", []byte("storage_pools:\n- name: a\n"))
	if err == nil || !strings.Contains(err.Error(), "driver is required") {
		t.Fatalf("missing driver not refused: %v", err)
	}
}

func TestJoinTokenRoundTrip(t *testing.T) {
	tok := JoinToken{ServerName: "n2", Secret: "s3cr3t", Fingerprint: "ab", Addresses: []string{"127.0.0.1:8443"}}
	got, err := DecodeJoinToken(tok.Encode())
	if err != nil || got.ServerName != "n2" || got.Secret != "s3cr3t" {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	for _, bad := range []string{"", "!!!", "e30=" /* {} */} {
		_, err := DecodeJoinToken(bad)
		if !errors.Is(err, ErrBadToken) {
			t.Errorf("%q: %v, want ErrBadToken", bad, err)
		}
	}
}

func TestDiffConfigIgnoresNodeSpecific(t *testing.T) {
	a := GlobalConfig("storage-pool", map[string]string{"source": "/a", "size": "1G", "volume.size": "2G"})
	b := GlobalConfig("storage-pool", map[string]string{"source": "/b", "volume.size": "2G"})
	if k := DiffConfig(a, b); k != "" {
		t.Fatalf("node-specific keys compared: %q", k)
	}
	b["volume.size"] = "3G"
	if k := DiffConfig(a, b); k != "volume.size" {
		t.Fatalf("diff = %q, want volume.size", k)
	}
}

func FuzzParsePreseed(f *testing.F) {
	for _, name := range []string{"guide-bootstrap.yaml", "guide-join.yaml", "guide-separate.yaml"} {
		data, _ := os.ReadFile("testdata/" + name)
		f.Add(data)
	}
	f.Add([]byte("cluster: [\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := ParsePreseed("f.yaml", data)
		if err != nil && !strings.HasPrefix(err.Error(), "f.yaml") {
			t.Fatalf("error without file name: %v", err)
		}
	})
}

func FuzzDecodeJoinToken(f *testing.F) {
	f.Add(JoinToken{ServerName: "n", Secret: "s", Fingerprint: "f", Addresses: []string{"a:1"}}.Encode())
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := DecodeJoinToken(s)
		if err == nil && (tok.Secret == "" || tok.ServerName == "") {
			t.Fatalf("accepted an incomplete token: %+v", tok)
		}
		if err != nil && strings.Contains(err.Error(), s) && len(s) > 8 {
			t.Fatalf("error repeats the token: %v", err)
		}
	})
}
