package clientstore

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"orch/nodeagent/api/pki"
)

// TestPinClusterConcurrently: orch commands run side by side (two terminals, a script)
// pin the same cluster at once; every pin succeeds and leaves the whole certificate,
// mode 0600, and nothing else. With a shared name.crt.tmp one writer's rename took the
// other's temporary file away (rename: no such file).
func TestPinClusterConcurrently(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := pki.Generate("cluster", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8*50)
	for range 8 {
		wg.Go(func() {
			for range 50 {
				_, err := s.PinCluster(kp.CertPEM)
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	fp, err := pki.FingerprintPEM(kp.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Pinned(fp) {
		t.Fatalf("%s not pinned", fp)
	}
	path := filepath.Join(dir, "clusters", fp+".crt")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, kp.CertPEM) {
		t.Errorf("%s holds %d bytes, want the %d of the certificate", path, len(b), len(kp.CertPEM))
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, st.Mode())
	}
	if des, _ := os.ReadDir(filepath.Dir(path)); len(des) != 1 {
		t.Errorf("%s holds %d entries, want the certificate only", filepath.Dir(path), len(des))
	}
}
