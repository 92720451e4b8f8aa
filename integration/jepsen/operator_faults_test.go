package jepsen

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// Faults of the machine and the operator: a full disk under the leader, a member whose
// clock is off by a minute, and a quorum-loss recovery attempted while the majority is
// alive. Each also checks what the cluster must do about it and reports a failed check as a
// finding of the run.

// clockOffsetFlag is the agent's hidden test flag that shifts its clock.
const clockOffsetFlag = "--debug-clock-offset"

// brokenLine is what an agent logs when its store breaks (nodeagent/store, breakWith).
const brokenLine = "this member's store is broken"

// handOverGrace is how long after its store broke a broken leader may take to hand over:
// the focused test (integration/cluster TestFullDiskOnLeader) measures 145-162 ms.
const handOverGrace = 4 * time.Second

// diskFullLeader fills the leader's database filesystem and writes through the other
// members. A full filesystem breaks the leader only when it next needs a new block: its
// raft-wal segment is preallocated and SQLite reuses its WAL file, so a leader can go on
// committing for many seconds (it did in about half of the soak's windows) and then rightly
// keeps leading. What must hold is that writes through the others are acknowledged: while
// the leader still works, and again within handOverGrace of its store breaking (it must
// hand over). The nemesis's heal frees the space and restarts the member, which must catch
// up.
func (n *nemesisRun) diskFullLeader() string {
	if !n.c.smallDisks {
		n.holdRest()
		return "skipped: the members' databases are not on small filesystems"
	}
	l := n.leader()
	brk := newLogWatch(l, brokenLine)
	l.fillDisk(n.c.t)
	via := n.others(l)
	var broke, ackedAfter time.Time
	var acked int
	end := n.start.Add(n.hold)
	for i := 0; ; i++ {
		now := time.Now()
		if broke.IsZero() && brk.seen() {
			broke = now
			end = later(end, broke.Add(handOverGrace))
		}
		if now.After(end) || (!broke.IsZero() && !ackedAfter.IsZero() && now.After(n.start.Add(n.hold))) {
			break
		}
		if n.write(via[i%len(via)], fmt.Sprintf("diskfull.%d", i)) {
			acked++
			if !broke.IsZero() && ackedAfter.IsZero() {
				ackedAfter = now // the write was sent after the break was seen
			}
		}
	}
	switch {
	case acked == 0:
		n.fail("disk-full-leader: no write through %s was acknowledged within %v of filling %s's disk", names(via), time.Since(n.start).Round(time.Millisecond), l.name)
	case !broke.IsZero() && ackedAfter.IsZero():
		n.fail("disk-full-leader: %s's store broke %v after its disk filled, and no write through %s was acknowledged within %v: the broken leader kept leading",
			l.name, broke.Sub(n.start).Round(time.Millisecond), names(via), handOverGrace)
	}
	n.holdRest()
	if broke.IsZero() {
		return fmt.Sprintf("filled %s's database filesystem; it kept leading (its store did not need a new block); %d writes through the others acknowledged", l.name, acked)
	}
	return fmt.Sprintf("filled %s's database filesystem; its store broke after %v; a write sent %v after that acknowledged: %v",
		l.name, broke.Sub(n.start).Round(time.Millisecond), ackedAfter.Sub(broke).Round(time.Millisecond), !ackedAfter.IsZero())
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// logWatch looks for a line in the part of a member's daemon log written after it was made.
type logWatch struct {
	path   string
	offset int64
	line   string
}

func newLogWatch(m *member, line string) *logWatch {
	p, _ := m.host.Path(agentDir + "/daemon.log")
	w := &logWatch{path: p, line: line}
	if fi, err := os.Stat(p); err == nil {
		w.offset = fi.Size()
	}
	return w
}

// seen reports whether the line was logged since the watch was made.
func (w *logWatch) seen() bool {
	f, err := os.Open(w.path)
	if err != nil {
		return false
	}
	defer f.Close()
	b, err := io.ReadAll(io.NewSectionReader(f, w.offset, 1<<40))
	return err == nil && strings.Contains(string(b), w.line)
}

// clockOffset restarts a member with its clock 60 s ahead or behind: it must keep serving
// (health is decided with one clock).
func (n *nemesisRun) clockOffset() string {
	m := n.random()
	off := "60s"
	if n.rng.IntN(2) == 0 {
		off = "-60s"
	}
	m.kill(n.c.t)
	m.setArgs(clockOffsetFlag + "=" + off) // one word: kong takes a separate "-60s" for a flag
	if err := n.c.tryStart(m); err != nil {
		n.fail("clock-offset: %s does not start with %s=%s: %v", m.name, clockOffsetFlag, off, err)
		m.setArgs()
		n.c.start(m)
		n.holdRest()
		return fmt.Sprintf("failed to start %s with its clock off by %s; restarted it without", m.name, off)
	}
	acked := n.writeThrough(m)
	if !acked {
		n.fail("clock-offset: %s with its clock off by %s acknowledged no write within %v", m.name, off, n.hold)
	}
	n.holdRest()
	return fmt.Sprintf("restarted %s with its clock off by %s; a write through it acknowledged: %v", m.name, off, acked)
}

// recoverMajorityAlive stops a member while the others (a majority) keep running and runs
// `nodeagent cluster recover-from-quorum-loss --yes` on it: the recovery must be refused.
// The member is then started again, and the cluster must have the same members. When the
// recovery was (wrongly) carried out, the member's database is put back from a copy taken
// before, so that the rest of the run still tests one cluster.
func (n *nemesisRun) recoverMajorityAlive() string {
	before := n.c.memberNames(n.c.members)
	m := n.random()
	m.kill(n.c.t)
	db, backup := agentDir+"/database", agentDir+"/database.jepsen-backup"
	m.exec(n.c.t, fmt.Sprintf("rm -rf %[2]s && cp -a %[1]s/. %[2]s && mkdir %[2]s-local && cp -a %[3]s/local.db* %[2]s-local/", db, backup, agentDir))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	out, err := m.host.Exec(ctx, n.c.bin, "--dir", agentDir, "cluster", "recover-from-quorum-loss", "--yes")
	cancel()
	refused := err != nil
	if !refused {
		n.fail("recover-majority-alive: recover-from-quorum-loss on %s succeeded while %s were running (it must be refused): %s",
			m.name, names(n.others(m)), out)
		m.exec(n.c.t, fmt.Sprintf("find %[1]s -mindepth 1 -maxdepth 1 ! -name lost+found -exec rm -rf {} + && cp -a %[2]s/. %[1]s && rm -f %[3]s/local.db* && cp -a %[2]s-local/. %[3]s/", db, backup, agentDir))
	}
	m.exec(n.c.t, fmt.Sprintf("rm -rf %[1]s %[1]s-local", backup))
	n.c.start(m)
	var after []string
	err = poll(time.Until(n.start.Add(n.hold))+10*time.Second, func() error {
		if after = n.c.memberNames([]*member{m}); !slices.Equal(after, before) {
			return fmt.Errorf("%s lists members %v, before the recovery attempt %v", m.name, after, before)
		}
		return nil
	})
	if err != nil {
		n.fail("recover-majority-alive: the cluster changed: %v", err)
	}
	n.holdRest()
	return fmt.Sprintf("stopped %s, recover-from-quorum-loss refused: %v (%v), members after its restart %v", m.name, refused, err, after)
}

// memberNames is the sorted member list as the first of ms that answers sees it.
func (c *cluster) memberNames(ms []*member) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	for _, m := range ms {
		cl := m.local()
		list, err := cl.Members(ctx)
		cl.Close()
		if err != nil {
			continue
		}
		var out []string
		for _, v := range list {
			out = append(out, v.ServerName)
		}
		slices.Sort(out)
		return out
	}
	return nil
}

// writeThrough writes unique keys through m until one is acknowledged or the fault's time
// is up, recording them in the history.
func (n *nemesisRun) writeThrough(m *member) bool {
	for i := 0; time.Now().Before(n.start.Add(n.hold)); i++ {
		if n.write(m, fmt.Sprintf("through.%s.%d", m.name, i)) {
			return true
		}
	}
	return false
}

// setArgs sets the extra daemon flags of m's next start.
func (m *member) setArgs(args ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.args = args
}
