package playbooks

import (
	"fmt"
	"strings"
)

// word is one whitespace-separated word of a free-form string, with its
// span; quotes group words and `{{ }}` is never split.
type word struct {
	text       string // the word with one level of quotes removed
	start, end int
}

func splitWords(raw string) ([]word, error) {
	var out []word
	for i := 0; i < len(raw); {
		if raw[i] == ' ' || raw[i] == '\t' || raw[i] == '\n' {
			i++
			continue
		}
		w, err := scanWord(raw, i)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
		i = w.end
	}
	return out, nil
}

func scanWord(raw string, start int) (word, error) {
	var b strings.Builder
	i := start
	for i < len(raw) && raw[i] != ' ' && raw[i] != '\t' && raw[i] != '\n' {
		switch {
		case strings.HasPrefix(raw[i:], "{{"):
			end := strings.Index(raw[i:], "}}")
			if end < 0 {
				return word{}, fmt.Errorf("unclosed '{{' in %q", raw)
			}
			b.WriteString(raw[i : i+end+2])
			i += end + 2
		case raw[i] == '"' || raw[i] == '\'':
			q := raw[i]
			end := strings.IndexByte(raw[i+1:], q)
			if end < 0 {
				return word{}, fmt.Errorf("unterminated quote in %q", raw)
			}
			b.WriteString(raw[i+1 : i+1+end])
			i += end + 2
		default:
			b.WriteByte(raw[i])
			i++
		}
	}
	return word{text: b.String(), start: start, end: i}, nil
}

// ParseKV parses `k=v k2="v 2"` free-form arguments.
func ParseKV(raw string) (map[string]any, error) {
	words, err := splitWords(raw)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	for _, w := range words {
		k, v, ok := strings.Cut(w.text, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("free-form arguments must be key=value, got %q", w.text)
		}
		out[k] = v
	}
	return out, nil
}

// CommandFreeForm splits a command line into the command (key "cmd") and
// the k=v options named by keys, which may appear anywhere in it.
func CommandFreeForm(raw string, keys ...string) (map[string]any, error) {
	words, err := splitWords(raw)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	var cmd strings.Builder
	last := 0
	for _, w := range words {
		k, v, ok := strings.Cut(w.text, "=")
		if !ok || !contains(keys, k) {
			continue
		}
		out[k] = v
		cmd.WriteString(raw[last:w.start])
		last = w.end
	}
	cmd.WriteString(raw[last:])
	out["cmd"] = strings.TrimSpace(cmd.String())
	return out, nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
