package transport

import (
	"bytes"
	"context"
	"path"
)

// stream uploads the cached gzip of the file on stdin of one remote script that
// decompresses into a temporary file, verifies its SHA-256, chmods and renames it.
func (p *pusher) stream(ctx context.Context) error {
	gz, err := p.c.cfg.Files.Gzip(p.local)
	if err != nil {
		return err
	}
	return p.sh(ctx, p.streamScript(tempName(p.remote)), &RunOptions{Stdin: bytes.NewReader(gz)})
}

// streamScript is the remote half of stream. Exit 65 means the digest did not match.
func (p *pusher) streamScript(tmp string) string {
	return `set -e
f=` + Quote(p.remote) + `; t=` + Quote(tmp) + `
mkdir -p -- ` + Quote(path.Dir(p.remote)) + `
trap 'rm -f -- "$t"' EXIT
` + p.tools.gzip + ` -dc > "$t"
s=$(` + p.tools.sha256 + ` < "$t"); s=${s%% *}
if [ "$s" != ` + p.sum + ` ]; then echo "sha256 of uploaded $t is $s, want ` + p.sum + `" >&2; exit 65; fi
chmod ` + modeArg(p.mode) + ` -- "$t"
mv -f -- "$t" "$f"
trap - EXIT
`
}
