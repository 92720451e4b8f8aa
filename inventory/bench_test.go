package inventory

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeLargeInventory writes an INI inventory of racks*perRack hosts in
// rack groups under two parents, with group_vars and host_vars files.
func writeLargeInventory(b *testing.B, racks, perRack int) string {
	dir := b.TempDir()
	var sb strings.Builder
	for r := range racks {
		fmt.Fprintf(&sb, "[rack%03d]\nr%03dn[0001:%04d] ansible_user=ops rack=%d\n", r, r, perRack, r)
		fmt.Fprintf(&sb, "[rack%03d:vars]\nrow=%d\n", r, r/10)
	}
	sb.WriteString("[even:children]\n")
	for r := 0; r < racks; r += 2 {
		fmt.Fprintf(&sb, "rack%03d\n", r)
	}
	sb.WriteString("[all:vars]\nansible_become=yes\n")
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "hosts"), []byte(sb.String()), 0o644))
	must(os.MkdirAll(filepath.Join(dir, "group_vars"), 0o755))
	must(os.MkdirAll(filepath.Join(dir, "host_vars"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "group_vars", "even.yml"), []byte("parity: even\nconfig: {a: 1}\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "host_vars", "r000n0001.yml"), []byte("special: true\n"), 0o644))
	return filepath.Join(dir, "hosts")
}

// BenchmarkLoad10k loads 10,000 hosts in 100 groups, with vars directories.
func BenchmarkLoad10k(b *testing.B) {
	path := writeLargeInventory(b, 100, 100)
	b.ResetTimer()
	for b.Loop() {
		inv, err := Load(path)
		if err != nil || len(inv.Hosts()) != 10000 {
			b.Fatalf("%v %d", err, len(inv.Hosts()))
		}
	}
}

// BenchmarkSelect10k evaluates a mixed pattern over 10,000 hosts.
func BenchmarkSelect10k(b *testing.B) {
	inv, err := Load(writeLargeInventory(b, 100, 100))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		hosts, _, err := inv.Select("rack0*:even:&~r0[0-4]\\d:!r001n000[1-5]")
		if err != nil || len(hosts) == 0 {
			b.Fatalf("%v %d", err, len(hosts))
		}
	}
}
