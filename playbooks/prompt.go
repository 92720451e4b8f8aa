package playbooks

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"orch/playbooks/template"
)

// Prompter asks the operator one vars_prompt question (msg is Ansible's
// "Prompt [default]: ") and returns the answer without its newline; private
// answers are not echoed. orch's CLI passes one when stdin is a terminal.
type Prompter interface {
	Prompt(msg string, private bool) (string, error)
}

// VarPrompt is one vars_prompt entry.
type VarPrompt struct {
	// Name is the variable set.
	Name string
	// Prompt is the question (default: the name); may be templated.
	Prompt string
	// Default is the value of an empty answer, or when not interactive
	// (nil with HasDefault false: the variable is none).
	Default    any
	HasDefault bool
	// Private answers are not echoed (Ansible's default: true).
	Private bool
	// Confirm asks twice until both answers match.
	Confirm bool
	// Encrypt is a password_hash type (sha512_crypt, sha256_crypt, bcrypt)
	// applied to the answer, with Salt if set.
	Encrypt, Salt string
}

// notInteractive is Ansible's warning when a play prompts without a terminal.
const notInteractive = "Not prompting as we are not in interactive mode"

// varsPrompt reads vars_prompt; the defaults are the values until the play runs.
func (p *parser) varsPrompt(n *yaml.Node, key string) ([]VarPrompt, map[string]any, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, nil, p.errf(n, key, "expected a list of prompts, got %s", kindName(n))
	}
	var out []VarPrompt
	defaults := map[string]any{}
	for _, e := range n.Content {
		m, err := p.mapping(e, key)
		if err != nil {
			return nil, nil, err
		}
		vp := VarPrompt{Private: true}
		vp.Name, _ = m["name"].(string)
		if vp.Name == "" {
			return nil, nil, p.errf(e, key, "a prompt needs name:")
		}
		vp.Prompt = template.String(m["prompt"])
		vp.Default, vp.HasDefault = m["default"]
		if v, ok := m["private"]; ok {
			vp.Private = template.Truthy(v)
		}
		vp.Confirm = template.Truthy(m["confirm"])
		if v, ok := m["encrypt"]; ok {
			vp.Encrypt = template.String(v)
		}
		if v, ok := m["salt"]; ok {
			vp.Salt = template.String(v)
		}
		out = append(out, vp)
		defaults[vp.Name] = vp.Default
	}
	return out, defaults, nil
}

// promptVars returns the play with its vars_prompt values: a variable given
// as an extra var is not asked; the others are asked through the Prompter,
// an empty answer taking the default; without a Prompter each takes its
// default (or none) and Ansible's warning is reported, as ansible-playbook
// does when stdin is not a terminal.
func (r *runner) promptVars(play *Play) (*Play, error) {
	if len(play.Prompts) == 0 {
		return play, nil
	}
	c := *play
	c.VarsPrompt = map[string]any{}
	vars := template.Vars(play.Vars, r.opts.ExtraVars)
	for _, vp := range play.Prompts {
		if _, given := r.opts.ExtraVars[vp.Name]; given {
			continue
		}
		v, err := r.askVar(vp, vars)
		if err != nil {
			return nil, &ParseError{Pos: play.Pos, Key: "vars_prompt", Err: fmt.Errorf("%s: %w", vp.Name, err)}
		}
		c.VarsPrompt[vp.Name] = v
	}
	return &c, nil
}

func (r *runner) askVar(vp VarPrompt, vars map[string]any) (any, error) {
	def, err := r.eng.Render(vp.Default, vars)
	if err != nil {
		return nil, err
	}
	var answer string
	if r.opts.Prompter == nil {
		if !r.promptWarned {
			r.promptWarned = true
			r.rep.Report(Event{Kind: EventWarning, Message: notInteractive})
		}
	} else if answer, err = r.ask(vp, def, vars); err != nil {
		return nil, err
	}
	var v any = answer
	if answer == "" && vp.HasDefault {
		v = def
	} else if answer == "" {
		v = nil
	}
	if vp.Encrypt == "" || v == nil {
		return v, nil
	}
	args := []string{"'" + strings.TrimSuffix(vp.Encrypt, "_crypt") + "'"}
	if vp.Salt != "" {
		args = append(args, "salt")
	}
	return r.eng.Render("{{ v | password_hash("+strings.Join(args, ", ")+") }}", map[string]any{"v": template.String(v), "salt": vp.Salt})
}

// ask puts the question as Ansible does: "Prompt [default]: ", again with
// "confirm " until both answers match when Confirm is set.
func (r *runner) ask(vp VarPrompt, def any, vars map[string]any) (string, error) {
	msg := "input for " + vp.Name + ": "
	if vp.Prompt != "" {
		p, err := r.eng.RenderString(vp.Prompt, vars)
		if err != nil {
			return "", err
		}
		msg = template.String(p) + ": "
		if vp.HasDefault && def != nil {
			msg = template.String(p) + " [" + template.String(def) + "]: "
		}
	}
	for {
		a, err := r.opts.Prompter.Prompt(msg, vp.Private)
		if err != nil || !vp.Confirm {
			return a, err
		}
		b, err := r.opts.Prompter.Prompt("confirm "+msg, vp.Private)
		if err != nil || a == b {
			return a, err
		}
		r.rep.Report(Event{Kind: EventWarning, Message: "***** VALUES ENTERED DO NOT MATCH ****"})
	}
}
