package playbooks

import (
	"context"
	"fmt"
	"maps"
	"strings"
)

// templatedActionModule is the module of a task whose action names its module with a
// template (`action: "{{ packager }} pkg={{ apache }} state=latest"`, ansible-examples'
// conditionals): the module is known only once the task's variables are.
const templatedActionModule = "action (templated)"

// rawActionKey holds the action's whole text; the engine templates it with the task's
// other arguments before Run.
const rawActionKey = "\x00action"

// templatedAction runs the module its rendered text names, with the key=value arguments
// that follow (or its own free form), merged under the task's args:, as Ansible does
// after templating the action.
type templatedAction struct{}

// FreeForm keeps the whole action text for Run.
func (templatedAction) FreeForm(raw string) (map[string]any, error) {
	return map[string]any{rawActionKey: raw}, nil
}

// Run finds the module and runs it.
func (templatedAction) Run(ctx context.Context, t *TaskContext) (Result, error) {
	raw, _ := t.Args[rawActionKey].(string)
	name, rest, _ := strings.Cut(strings.TrimSpace(raw), " ")
	name = ModuleName(name)
	mod, ok := t.modules[name]
	if !ok || name == templatedActionModule {
		return Result{}, fmt.Errorf("action %q: %w", raw, unknownModule(name, t.modules))
	}
	switch name {
	case "include_tasks", "import_tasks", "include", "include_role", "import_role", "import_playbook", "meta":
		return Result{}, fmt.Errorf("%w: action %q: %s cannot be named by a template", ErrArgs, raw, name)
	}
	var args map[string]any
	var err error
	if ff, ok := mod.(FreeFormer); ok {
		args, err = ff.FreeForm(strings.TrimSpace(rest))
	} else {
		args, err = ParseKV(rest)
	}
	if err != nil {
		return Result{}, fmt.Errorf("action %q: %w", raw, err)
	}
	extra := maps.Clone(t.Args)
	delete(extra, rawActionKey)
	t.Args = mergeArgs(extra, args)
	return mod.Run(ctx, t)
}
