package transport

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"orch/internal/shell"
)

// Relay lets hosts fetch a pushed file from hosts that already hold it, over the network
// between the hosts, instead of each copy crossing the control node's link: a fan-out tree.
// The first host (Direct of them at once) gets the file from the control node, compressed;
// once it holds the file it lends it (its own lender process, started over SSH, see
// RelayOptions.Lend), and the next hosts fetch from lenders, Fanout at a time each, and
// become lenders in turn, up to MaxLenders. Every fetched copy is checked against the SHA-256 the control
// node computed, so a lender cannot slip in other content; a failed fetch falls back to a
// push from the control node. Share one Relay between the Conns of a run (Config.Relay)
// and Close it at the end of the run, which stops every lender.
type Relay struct {
	opts   RelayOptions
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	changed chan struct{}    // closed and replaced whenever a slot frees or a lender appears
	pools   map[string]*pool // by the file's SHA-256
	stats   RelayStats
	lending sync.WaitGroup
}

// RelayOptions configure a Relay.
type RelayOptions struct {
	// Lend returns the shell command that lends the file at remote (a host path) to other
	// hosts, and false for files that cannot be lent (they are pushed as usual). The
	// command reads an access token on its first stdin line, prints "orch-relay listening
	// PORT" and serves until stdin ends: `nodeagent serve-file` does.
	Lend func(remote string) (cmd string, ok bool)
	// Direct is how many hosts may receive the file from the control node at once.
	// Default 1.
	Direct int
	// Fanout is how many hosts fetch from one lender at once. Default 4.
	Fanout int
	// Wait bounds how long a push waits for a lender before it goes to the control node
	// anyway. Default 30s.
	Wait time.Duration
	// MaxLenders bounds how many hosts lend one file version. Default 16: with Fanout 4
	// that serves 64 fetches at once, orch's default forks. Each lender is an SSH session
	// and a process on its host; at 200 hosts, every host lending cost ~2 s of CPU for
	// lenders nobody fetched from (issue 19).
	MaxLenders int
}

// pool is one file version's lenders and the pushes from the control node in flight.
type pool struct {
	direct   int       // pushes from the control node in flight (until their lender settles)
	lenders  []*lender // hosts lending this version
	starting int       // hosts starting to lend it (startLending in flight)
	waiting  int       // pushes waiting in acquire for a slot with a lender
	failures int       // fetches that failed
	degraded bool      // lenders cannot start or be reached: push the rest directly, as without a relay
}

// maxFailures is how many failed fetches make a pool give up on lenders: the hosts cannot
// reach each other (a firewall), or cannot run the lender.
const maxFailures = 2

// lender is a host lending a file version.
type lender struct {
	name  string
	addr  string
	port  int
	token string
	busy  int
	bad   bool
}

// NewRelay returns a Relay; Close stops its lenders.
func NewRelay(opts RelayOptions) *Relay {
	if opts.Direct <= 0 {
		opts.Direct = 1
	}
	if opts.Fanout <= 0 {
		opts.Fanout = 4
	}
	if opts.Wait <= 0 {
		opts.Wait = 30 * time.Second
	}
	if opts.MaxLenders <= 0 {
		opts.MaxLenders = 16
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Relay{opts: opts, ctx: ctx, cancel: cancel, changed: make(chan struct{}), pools: map[string]*pool{}}
}

// Close stops every lender (their SSH sessions end) and waits for them.
func (r *Relay) Close() error {
	r.cancel()
	r.lending.Wait()
	return nil
}

// RelayStats count where a relay's pushes got their bytes.
type RelayStats struct {
	// Direct pushes came from the control node first hand.
	Direct int
	// Fetched copies came from lenders.
	Fetched int
	// Fallbacks are fetches that failed and were pushed from the control node instead.
	Fallbacks int
	// Lenders is how many hosts lent a file.
	Lenders int
}

// Stats returns the relay's counts so far.
func (r *Relay) Stats() RelayStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// source is where one push gets its bytes: a lender, or the control node (nil).
type source struct {
	p      *pool
	lender *lender
}

// acquire picks the source of a push of version sum: a lender with a free slot; else, while
// no lender exists, the control node if fewer than Direct pushes from it are in flight;
// else it waits for a slot. A degraded pool, or a wait past RelayOptions.Wait, goes to the
// control node.
func (r *Relay) acquire(ctx context.Context, sum string) (source, error) {
	deadline := time.NewTimer(r.opts.Wait)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		p := r.pools[sum]
		if p == nil {
			p = &pool{}
			r.pools[sum] = p
		}
		if l := r.freeLender(p); l != nil {
			l.busy++
			r.mu.Unlock()
			return source{p: p, lender: l}, nil
		}
		if p.degraded || (p.direct < r.opts.Direct && !hasGoodLender(p)) {
			p.direct++
			r.mu.Unlock()
			return source{p: p}, nil
		}
		changed := r.changed
		p.waiting++
		r.mu.Unlock()
		select {
		case <-changed:
			r.waited(p, false)
		case <-deadline.C:
			r.waited(p, true)
			return source{p: p}, nil
		case <-ctx.Done():
			r.waited(p, false)
			return source{}, ctx.Err()
		}
	}
}

// waited ends one wait of acquire in p; direct: the push goes to the control node.
func (r *Relay) waited(p *pool, direct bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p.waiting--
	if direct {
		p.direct++
	}
}

// hasGoodLender tells whether p has a lender that has not failed: then a push waits for a
// slot with a lender rather than cross the control link.
func hasGoodLender(p *pool) bool {
	for _, l := range p.lenders {
		if !l.bad {
			return true
		}
	}
	return false
}

// freeLender is the least busy good lender of p with a free slot, or nil.
func (r *Relay) freeLender(p *pool) *lender {
	var best *lender
	for _, l := range p.lenders {
		if !l.bad && l.busy < r.opts.Fanout && (best == nil || l.busy < best.busy) {
			best = l
		}
	}
	return best
}

// release ends a push from src; a lender that failed a fetch lends no more.
func (r *Relay) release(src source, failed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case src.lender == nil:
		src.p.direct--
		r.stats.Direct++
	case failed:
		src.lender.busy--
		src.lender.bad = true
		src.p.failures++
		src.p.degraded = src.p.degraded || src.p.failures >= maxFailures
		r.stats.Fallbacks++
	default:
		src.lender.busy--
		r.stats.Fetched++
	}
	r.notifyLocked()
}

func (r *Relay) notifyLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// reserveLender reports whether one more host should lend version sum, and counts it as
// starting when so: while fewer than MaxLenders good or starting lenders exist and more
// pushes wait for a lender than the free slots of the lenders there are (starting ones
// counted full) would take. A lender nobody fetches from is an SSH session and a process
// for nothing: with every host lending up to MaxLenders, 30 hosts started 16 lenders and
// fetched from 6.
func (r *Relay) reserveLender(sum string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.pools[sum]
	n, free := p.starting, p.starting*r.opts.Fanout
	for _, l := range p.lenders {
		if !l.bad {
			n++
			free += r.opts.Fanout - l.busy
		}
	}
	if n >= r.opts.MaxLenders || (n > 0 && p.waiting <= free) {
		return false
	}
	p.starting++
	return true
}

// addLender records a host lending version sum (ok=false: it could not start one).
func (r *Relay) addLender(sum string, l *lender, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.pools[sum]
	p.starting--
	if ok {
		p.lenders = append(p.lenders, l)
		r.stats.Lenders++
	} else {
		p.degraded = true
	}
	r.notifyLocked()
}

// pushRelayed is Push through the relay: upToDate as usual, then a fetch from a lender or a
// compressed push from the control node, then this host starts lending.
func (p *pusher) pushRelayed(ctx context.Context, r *Relay, lendCmd string) (bool, error) {
	if done, changed, err := p.upToDate(ctx); done || err != nil {
		return changed, err
	}
	if p.tools == nil || p.tools.sha256 == "" {
		return p.run(ctx) // no hashing tool: a fetched copy could not be checked
	}
	src, err := r.acquire(ctx, p.sum)
	if err != nil {
		return false, err
	}
	if src.lender != nil {
		err := p.fetch(ctx, src.lender)
		r.release(src, err != nil)
		if err == nil {
			p.c.log.Debug("fetched from a lender", "file", p.remote, "lender", src.lender.name)
			if r.reserveLender(p.sum) {
				r.startLending(p, lendCmd)
			}
			return true, nil
		}
		p.c.log.Debug("fetch from a lender failed: pushing from the control node", "file", p.remote, "lender", src.lender.name, "err", err)
		return p.streamOrSFTP(ctx, relayEncodings)
	}
	changed, err := p.streamOrSFTP(ctx, relayEncodings)
	if err != nil {
		r.release(src, false)
		return false, err
	}
	// The slot from the control node stays taken until this host lends (or cannot): the
	// next host then fetches from it instead of crossing the control link again.
	if r.reserveLender(p.sum) {
		r.startLending(p, lendCmd)
	}
	r.release(src, false)
	return changed, nil
}

// relayEncodings are the compressions a push from the control node through a relay may
// use, best first: it crosses the control link, the link the relay spares.
var relayEncodings = []Encoding{EncZstd, EncGzip}

// exitNoFetch is the fetch script's exit code when it cannot reach the lender.
const exitNoFetch = 75

// fetch makes the host copy the file from lender l over the hosts' network: bash's
// /dev/tcp, the token on the script's stdin (never on a command line; bash's read and
// printf pass it on), checked against the digest like every push.
func (p *pusher) fetch(ctx context.Context, l *lender) error {
	script := `f=` + shell.Quote(p.remote) + `; t=` + shell.Quote(tempName(p.remote)) + `; d=` + shell.Quote(path.Dir(p.remote)) + `
want=` + p.sum + `; mode=` + modeArg(p.mode) + `; addr=` + shell.Quote(l.addr) + `; port=` + strconv.Itoa(l.port) + `
IFS= read -r tok || exit ` + strconv.Itoa(exitNoFetch) + `
command -v bash >/dev/null 2>&1 || exit ` + strconv.Itoa(exitNoFetch) + `
to=; to5=; if command -v timeout >/dev/null 2>&1; then to="timeout 120"; to5="timeout 5"; fi
[ -d "$d" ] || mkdir -p -- "$d" || exit 1
trap 'rm -f -- "$t"' EXIT
$to5 bash -c 'exec 3<>"/dev/tcp/$1/$2"' orch-probe "$addr" "$port" 2>/dev/null || exit ` + strconv.Itoa(exitNoFetch) + `
printf '%s\n' "$tok" | $to bash -c 'exec 3<>"/dev/tcp/$1/$2" || exit ` + strconv.Itoa(exitNoFetch) + `; IFS= read -r k; printf "%s\n" "$k" >&3; exec cat <&3 > "$3"' orch-fetch "$addr" "$port" "$t" || exit ` + strconv.Itoa(exitNoFetch) + `
s=$(` + p.tools.sha256 + ` < "$t"); s=${s%% *}
if [ "$s" != "$want" ]; then echo "sha256 of the copy fetched from $addr is $s, want $want" >&2; exit 65; fi
chmod "$mode" -- "$t"
mv -f -- "$t" "$f"
trap - EXIT
echo "orch-push done"`
	res, err := p.c.Run(ctx, script, RunOptions{Become: p.become, Stdin: strings.NewReader(l.token + "\n")})
	if err != nil {
		return err
	}
	if res.ExitCode != 0 || !strings.Contains(string(res.Stdout), "orch-push done") {
		return fmt.Errorf("fetch from %s: exit %d: %s", l.name, res.ExitCode, firstLine(string(res.Stderr)))
	}
	return nil
}

// startLending starts the host's lender for p's file and waits until it listens (or fails);
// the lender runs in its own session until the relay closes.
func (r *Relay) startLending(p *pusher, cmd string) {
	token := newToken()
	stdin, stdinW := io.Pipe()
	outR, outW := io.Pipe()
	r.lending.Add(1)
	go func() {
		defer r.lending.Done()
		go func() { // the token, then nothing until the relay closes
			io.WriteString(stdinW, token+"\n")
			<-r.ctx.Done()
			stdinW.Close()
		}()
		res, err := p.c.Run(r.ctx, cmd, RunOptions{Become: p.become, Stdin: stdin, Stdout: outW})
		if err == nil {
			err = fmt.Errorf("exit %d: %s", res.ExitCode, firstLine(string(res.Stderr)))
		}
		outW.CloseWithError(fmt.Errorf("lender ended: %w", err))
	}()
	port, err := readListening(outR)
	go io.Copy(io.Discard, outR)
	l := &lender{name: p.c.cfg.Name, addr: p.c.cfg.Host, port: port, token: token}
	if err != nil {
		p.c.log.Debug("cannot lend", "file", p.remote, "err", err)
	}
	r.addLender(p.sum, l, err == nil)
}

// readListening reads the lender's "orch-relay listening PORT" line.
func readListening(out io.Reader) (int, error) {
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return 0, err
	}
	var port int
	if _, err := fmt.Sscanf(strings.TrimSpace(line), "orch-relay listening %d", &port); err != nil || port <= 0 {
		return 0, fmt.Errorf("lender said %q", strings.TrimSpace(line))
	}
	return port, nil
}

// newToken is a random access token for one lender.
func newToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
