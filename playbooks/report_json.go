package playbooks

import (
	"encoding/json"
	"io"
	"maps"
)

// JSONReporter collects the run and writes one JSON document at the end,
// shaped like Ansible's json stdout callback: plays, their tasks with
// per-host results, and stats.
type JSONReporter struct {
	w    io.Writer
	doc  jsonDoc
	play *jsonPlay
	task *jsonTask
	err  error
}

type jsonDoc struct {
	Plays []*jsonPlay       `json:"plays"`
	Stats map[string]*Stats `json:"stats"`
	Warns []string          `json:"warnings,omitempty"`
}

type jsonPlay struct {
	Play  jsonPlayInfo `json:"play"`
	Tasks []*jsonTask  `json:"tasks"`
}

type jsonPlayInfo struct {
	Name  string   `json:"name"`
	Hosts []string `json:"hosts"`
}

type jsonTask struct {
	Task  jsonTaskInfo              `json:"task"`
	Hosts map[string]map[string]any `json:"hosts"`
}

type jsonTaskInfo struct {
	Name    string `json:"name"`
	Handler bool   `json:"handler,omitempty"`
}

// NewJSONReporter returns a reporter that writes to w when the run ends.
func NewJSONReporter(w io.Writer) *JSONReporter {
	return &JSONReporter{w: w, doc: jsonDoc{Plays: []*jsonPlay{}}}
}

// Err returns the error of writing the document, if any.
func (r *JSONReporter) Err() error { return r.err }

// Report records one event; EventPlaybookEnd writes the document.
func (r *JSONReporter) Report(e Event) {
	switch e.Kind {
	case EventPlayStart:
		r.play = &jsonPlay{Play: jsonPlayInfo{Name: e.Play, Hosts: nonNil(e.Hosts)}, Tasks: []*jsonTask{}}
		r.doc.Plays = append(r.doc.Plays, r.play)
		r.task = nil
	case EventTaskStart:
		r.task = &jsonTask{Task: jsonTaskInfo{Name: e.Task, Handler: e.Handler}, Hosts: map[string]map[string]any{}}
		if r.play != nil {
			r.play.Tasks = append(r.play.Tasks, r.task)
		}
	case EventHostResult:
		if r.task != nil {
			r.task.Hosts[e.Host] = hostJSON(e)
		}
	case EventWarning:
		r.doc.Warns = append(r.doc.Warns, e.Message)
	case EventPlaybookEnd:
		r.write(e.Recap)
	}
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

func hostJSON(e Event) map[string]any {
	out := registerValue(e.Result)
	if e.Status == StatusUnreachable {
		out["unreachable"] = true
		delete(out, "failed")
	}
	if e.Delegate != "" {
		out["delegated_to"] = e.Delegate
	}
	if e.Ignored {
		out["ignored"] = true
	}
	if e.Result.Msg == noLogMsg {
		out["_ansible_no_log"] = true
	}
	return out
}

func (r *JSONReporter) write(rc *Recap) {
	r.doc.Stats = map[string]*Stats{}
	if rc != nil {
		maps.Copy(r.doc.Stats, rc.Hosts)
	}
	b, err := json.MarshalIndent(r.doc, "", "    ")
	if err == nil {
		_, err = r.w.Write(append(b, '\n'))
	}
	r.err = err
}
