package playbooks

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// TextReporter prints Ansible-style live progress and the PLAY RECAP.
type TextReporter struct {
	w     io.Writer
	opts  TextOptions
	width int
}

// TextOptions configure a TextReporter.
type TextOptions struct {
	// Diff prints the diffs modules report.
	Diff bool
	// Color uses ANSI colors (green ok, yellow changed, red failed, cyan skipped).
	Color bool
	// Width of banners; default 80.
	Width int
}

// NewTextReporter returns a reporter writing to w.
func NewTextReporter(w io.Writer, opts TextOptions) *TextReporter {
	width := opts.Width
	if width <= 0 {
		width = 80
	}
	return &TextReporter{w: w, opts: opts, width: width}
}

// Report prints one event.
func (r *TextReporter) Report(e Event) {
	switch e.Kind {
	case EventPlayStart:
		r.banner("PLAY [" + e.Play + "]")
	case EventTaskStart:
		if e.Handler {
			r.banner("RUNNING HANDLER [" + e.Task + "]")
		} else {
			r.banner("TASK [" + e.Task + "]")
		}
	case EventItemResult:
		r.item(e)
	case EventHostResult:
		r.host(e)
	case EventWarning:
		fmt.Fprintf(r.w, "[WARNING]: %s\n", e.Message)
	case EventNoHostsLeft:
		r.banner("NO MORE HOSTS LEFT")
	case EventPlaybookEnd:
		r.recap(e.Recap)
	}
}

func (r *TextReporter) banner(title string) {
	stars := max(r.width-len(title)-1, 3)
	fmt.Fprintf(r.w, "\n%s %s\n", title, strings.Repeat("*", stars))
}

var statusWord = map[Status]string{
	StatusOK: "ok", StatusChanged: "changed", StatusFailed: "failed",
	StatusSkipped: "skipping", StatusUnreachable: "unreachable",
}

var statusColor = map[Status]string{
	StatusOK: "32", StatusChanged: "33", StatusFailed: "31", StatusSkipped: "36", StatusUnreachable: "31",
}

func (r *TextReporter) color(s Status, text string) string {
	if !r.opts.Color {
		return text
	}
	return "\x1b[" + statusColor[s] + "m" + text + "\x1b[0m"
}

func hostLabel(e Event) string {
	if e.Delegate != "" && e.Delegate != e.Host {
		return "[" + e.Host + " -> " + e.Delegate + "]"
	}
	return "[" + e.Host + "]"
}

func (r *TextReporter) host(e Event) {
	_, isLoop := e.Result.Data["results"]
	if isLoop && e.Status != StatusFailed && e.Status != StatusUnreachable {
		return
	}
	line := statusWord[e.Status] + ": " + hostLabel(e)
	if msg := displayMsg(e); msg != "" && (e.Status != StatusSkipped || isLoop) {
		line += " => " + msg
	}
	fmt.Fprintln(r.w, r.color(e.Status, line))
	r.diff(e)
	if e.Ignored {
		fmt.Fprintln(r.w, r.color(StatusSkipped, "...ignoring"))
	}
}

func (r *TextReporter) item(e Event) {
	line := fmt.Sprintf("%s: %s => (item=%s)", statusWord[e.Status], hostLabel(e), e.Item)
	if msg := displayMsg(e); msg != "" && e.Status != StatusSkipped {
		line += " => " + msg
	}
	fmt.Fprintln(r.w, r.color(e.Status, line))
	r.diff(e)
}

func (r *TextReporter) diff(e Event) {
	if r.opts.Diff && e.Result.Diff != "" {
		fmt.Fprint(r.w, e.Result.Diff)
		if !strings.HasSuffix(e.Result.Diff, "\n") {
			fmt.Fprintln(r.w)
		}
	}
}

// displayMsg is the text after "=>": the message, or for a failed command
// its stderr/stdout when there is no message.
func displayMsg(e Event) string {
	msg := e.Result.Msg
	if msg == "" && e.Status == StatusFailed {
		if b, err := json.Marshal(e.Result.Data); err == nil {
			msg = string(b)
		}
	}
	return strings.ReplaceAll(msg, "\n", "\n    ")
}

func (r *TextReporter) recap(rc *Recap) {
	if rc == nil {
		return
	}
	r.banner("PLAY RECAP")
	for _, h := range rc.HostNames() {
		s := rc.Hosts[h]
		line := fmt.Sprintf("%-26s : ok=%-4d changed=%-4d unreachable=%-4d failed=%-4d skipped=%-4d rescued=%-4d ignored=%-4d",
			h, s.Ok, s.Changed, s.Unreachable, s.Failed, s.Skipped, s.Rescued, s.Ignored)
		fmt.Fprintln(r.w, strings.TrimRight(line, " "))
	}
}
