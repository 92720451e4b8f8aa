package playbooks

import (
	"fmt"
	"io"
	"strings"
)

// PlayListing describes a play for --list-hosts and --list-tasks.
type PlayListing struct {
	// Name of the play.
	Name string
	// Pattern is the play's host pattern.
	Pattern string
	// Hosts the pattern (and --limit) selects.
	Hosts []string
	// Tags of the play.
	Tags []string
	// Tasks that --tags/--skip-tags select, blocks flattened, in order.
	Tasks []TaskListing
}

// TaskListing is one task in a PlayListing.
type TaskListing struct {
	// Name shown for the task.
	Name string
	// Tags of the task, inherited ones included.
	Tags []string
}

// List resolves each play's hosts and selected tasks without running anything.
func List(pb *Playbook, opts Options) ([]PlayListing, error) {
	r, err := newRunner(pb, opts)
	if err != nil {
		return nil, err
	}
	var out []PlayListing
	for _, play := range pb.Plays {
		hosts, err := r.playHosts(play)
		if err != nil {
			return nil, err
		}
		l := PlayListing{Name: play.Name, Pattern: play.Hosts, Hosts: hosts, Tags: play.Tags}
		for _, section := range [][]*Task{play.PreTasks, play.Tasks, play.PostTasks} {
			l.Tasks = listTasks(l.Tasks, section, play.Tags, opts)
		}
		out = append(out, l)
	}
	return out, nil
}

func listTasks(out []TaskListing, tasks []*Task, inherited []string, opts Options) []TaskListing {
	for _, t := range tasks {
		tags := append(append([]string{}, inherited...), t.Tags...)
		if t.IsBlock() {
			for _, section := range [][]*Task{t.Block, t.Rescue, t.Always} {
				out = listTasks(out, section, tags, opts)
			}
			continue
		}
		if t.Module == "meta" || !TagsMatch(tags, opts.Tags, opts.SkipTags) {
			continue
		}
		out = append(out, TaskListing{Name: t.DisplayName(), Tags: tags})
	}
	return out
}

func tagList(tags []string) string { return "[" + strings.Join(tags, ", ") + "]" }

// WriteHostList prints listings as ansible-playbook --list-hosts does.
func WriteHostList(w io.Writer, pb *Playbook, plays []PlayListing) {
	fmt.Fprintf(w, "\nplaybook: %s\n", pb.Path)
	for i, p := range plays {
		fmt.Fprintf(w, "\n  play #%d (%s): %s\tTAGS: %s\n", i+1, p.Pattern, p.Name, tagList(p.Tags))
		fmt.Fprintf(w, "    pattern: ['%s']\n    hosts (%d):\n", p.Pattern, len(p.Hosts))
		for _, h := range p.Hosts {
			fmt.Fprintf(w, "      %s\n", h)
		}
	}
}

// WriteTaskList prints listings as ansible-playbook --list-tasks does.
func WriteTaskList(w io.Writer, pb *Playbook, plays []PlayListing) {
	fmt.Fprintf(w, "\nplaybook: %s\n", pb.Path)
	for i, p := range plays {
		fmt.Fprintf(w, "\n  play #%d (%s): %s\tTAGS: %s\n    tasks:\n", i+1, p.Pattern, p.Name, tagList(p.Tags))
		for _, t := range p.Tasks {
			fmt.Fprintf(w, "      %s\tTAGS: %s\n", t.Name, tagList(t.Tags))
		}
	}
}
