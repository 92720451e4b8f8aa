package shell

import (
	"os/exec"
	"strings"
	"testing"
)

var quoteCases = []struct{ in, want string }{
	{"", `''`},
	{"plain", "plain"},
	{"/usr/local/bin/nodeagent", "/usr/local/bin/nodeagent"},
	{"--dir=/var/lib/nodeagent", "--dir=/var/lib/nodeagent"},
	{"user@host:1,2+3%", "user@host:1,2+3%"},
	{"two words", `'two words'`},
	{"it's", `'it'"'"'s'`},
	{"'", `''"'"''`},
	{`"$HOME"`, `'"$HOME"'`},
	{"`id`", "'`id`'"},
	{"a\nb", "'a\nb'"},
	{"tab\there", "'tab\there'"},
	{"héllo", "'héllo'"},
	{"日本", "'日本'"},
	{"*", "'*'"},
	{"~root", "'~root'"},
	{"a;b&c|d", "'a;b&c|d'"},
	{`back\slash`, `'back\slash'`},
}

func TestQuote(t *testing.T) {
	for _, c := range quoteCases {
		if got := Quote(c.in); got != c.want {
			t.Errorf("Quote(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestJoin(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{"ls", "-l", "a b"}, `ls -l 'a b'`},
		{[]string{"FOO=bar", "x=y"}, `'FOO=bar' x=y`},
		{[]string{"", "it's"}, `'' 'it'"'"'s'`},
	} {
		if got := Join(c.in...); got != c.want {
			t.Errorf("Join(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestQuoteThroughShell feeds every case through a real sh and checks it reads back the
// very bytes quoted, one word each.
func TestQuoteThroughShell(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	words := make([]string, len(quoteCases))
	var want strings.Builder
	for i, c := range quoteCases {
		words[i] = c.in
		want.WriteString("[" + c.in + "]")
	}
	out, err := exec.Command(sh, "-c", "printf '[%s]' "+Join(words...)).Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != want.String() {
		t.Fatalf("sh read back %q, want %q", out, want.String())
	}
	out, err = exec.Command(sh, "-c", Join("printf", "%s", "FOO=bar")).Output()
	if err != nil || string(out) != "FOO=bar" {
		t.Fatalf("Join with an assignment-like argument: %q, %v", out, err)
	}
}
