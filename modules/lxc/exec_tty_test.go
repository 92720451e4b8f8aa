package lxc

import (
	"bytes"
	"testing"
)

// TestONLCRUndo: what the host terminal's ONLCR did ("\n" → "\r\n") is undone exactly,
// whatever the chunking: the container's "\r\n" stays, a raw program's bare "\n" stays, a
// lone "\r" stays.
func TestONLCRUndo(t *testing.T) {
	for in, want := range map[string]string{
		"/dev/pts/1\r\r\n":  "/dev/pts/1\r\n",
		"raw\r\nlines\r\n":  "raw\nlines\n",
		"50%\r60%\r\r\n":    "50%\r60%\r\n",
		"a\r":               "a\r",
		"\r\r\r\n\r":        "\r\r\n\r",
		"no newline at all": "no newline at all",
	} {
		for size := 1; size <= len(in); size++ {
			var out bytes.Buffer
			u := &onlcrUndo{w: &out}
			for i := 0; i < len(in); i += size {
				if _, err := u.Write([]byte(in[i:min(i+size, len(in))])); err != nil {
					t.Fatal(err)
				}
			}
			u.Flush()
			if out.String() != want {
				t.Errorf("%q in chunks of %d: %q, want %q", in, size, out.String(), want)
			}
		}
	}
}
