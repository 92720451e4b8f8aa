// Package shell quotes words for a POSIX shell: the module's one quoting function, for every
// command line orch, the playbook engine and the tests build as text (remote commands over
// SSH, scripts run with sh -c, the templates' quote filter). It is a leaf: it imports only
// the standard library.
package shell

import "strings"

// safe are the characters no POSIX shell treats specially inside a word: the set of
// Python's shlex.quote, which Ansible's quote filter uses, so that templates quote alike.
const safe = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-"

// Quote returns s as one shell word: s itself when it is not empty and made only of safe
// characters (ASCII letters, digits and _@%+=:,./-), else s in single quotes with each '
// written as '"'"'. Newlines, non-ASCII text and every other byte stand inside the quotes
// as they are.
func Quote(s string) string {
	if s != "" && strings.Trim(s, safe) == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}

// Join quotes each word and joins them with spaces into a command line. The first word is
// quoted too when it holds '=', so that it stays a command and does not become a variable
// assignment.
func Join(words ...string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = Quote(w)
		if i == 0 && q[i] == w && strings.Contains(w, "=") {
			q[i] = "'" + w + "'"
		}
	}
	return strings.Join(q, " ")
}
