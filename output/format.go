// Package output renders lists and objects as LXD-style tables, JSON or YAML for both CLIs
// (orch and nodeagent), so that both print the same shapes.
package output

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"orch/nodeagent/api"
)

// Format is the --format flag of every list and show command.
type Format string

// Output formats.
const (
	FormatTable Format = "table"
	FormatJSON  Format = "json"
	FormatYAML  Format = "yaml"
)

// Validate refuses an unknown format, naming it.
func (f Format) Validate() error {
	switch f {
	case FormatTable, FormatJSON, FormatYAML, "":
		return nil
	}
	return fmt.Errorf("--format %q: use table, json or yaml", string(f))
}

// Render writes v as JSON or YAML, or calls table for the table form.
func Render(w io.Writer, f Format, v any, table func() ([]string, [][]string)) error {
	switch f {
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case FormatYAML:
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	header, rows := table()
	WriteTable(w, header, rows)
	return nil
}

// WriteTable draws an LXD-style boxed table.
func WriteTable(w io.Writer, header []string, rows [][]string) {
	widths := make([]int, len(header))
	for i, h := range header {
		widths[i] = utf8.RuneCountInString(h)
	}
	for _, r := range rows {
		for i, c := range r {
			for _, line := range strings.Split(c, "\n") {
				widths[i] = max(widths[i], utf8.RuneCountInString(line))
			}
		}
	}
	sep := "+"
	for _, wd := range widths {
		sep += strings.Repeat("-", wd+2) + "+"
	}
	line := func(cells []string) {
		lines := 1
		for _, c := range cells {
			lines = max(lines, strings.Count(c, "\n")+1)
		}
		for l := 0; l < lines; l++ {
			s := "|"
			for i, c := range cells {
				parts := strings.Split(c, "\n")
				p := ""
				if l < len(parts) {
					p = parts[l]
				}
				s += " " + p + strings.Repeat(" ", widths[i]-utf8.RuneCountInString(p)) + " |"
			}
			fmt.Fprintln(w, s)
		}
	}
	fmt.Fprintln(w, sep)
	line(header)
	fmt.Fprintln(w, sep)
	for _, r := range rows {
		line(r)
		fmt.Fprintln(w, sep)
	}
}

// MemberTable is the table form of a cluster member list, as `lxc cluster list` prints it.
func MemberTable(ms []api.ClusterMember) ([]string, [][]string) {
	rows := make([][]string, 0, len(ms))
	for _, m := range ms {
		rows = append(rows, []string{m.ServerName, m.URL, strings.Join(m.Roles, "\n"), m.Architecture, m.FailureDomain,
			m.Description, strings.ToUpper(m.Status), m.Message})
	}
	return []string{"NAME", "URL", "ROLES", "ARCHITECTURE", "FAILURE DOMAIN", "DESCRIPTION", "STATE", "MESSAGE"}, rows
}
