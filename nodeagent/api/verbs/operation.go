package verbs

import (
	"context"
	"strings"

	"orch/nodeagent/api"
	"orch/output"
)

// OperationCmd is `operation`: the cluster's background operations (every member's), as
// `lxc operation`.
type OperationCmd struct {
	List   OperationListCmd   `cmd:"" help:"List the operations of every member."`
	Show   OperationShowCmd   `cmd:"" help:"Show an operation as YAML, wherever it runs."`
	Delete OperationDeleteCmd `cmd:"" help:"Cancel an operation (a task that may be cancelled, or a token)."`
}

// OperationListCmd lists the operations.
type OperationListCmd struct {
	Format output.Format `help:"table, json or yaml." default:"table"`
}

// Run lists them, oldest first; token metadata (secrets) is not shown in the table.
func (c *OperationListCmd) Run(e *Env) error {
	if err := c.Format.Validate(); err != nil {
		return err
	}
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		ops, err := cl.Operations(ctx)
		if err != nil {
			return err
		}
		return output.Render(e.Stdout, c.Format, ops, func() ([]string, [][]string) { return operationTable(ops) })
	})
}

// operationTable is the table of operations, as `lxc operation list` draws it.
func operationTable(ops []api.Operation) ([]string, [][]string) {
	rows := [][]string{}
	for _, op := range ops {
		cancel := "NO"
		if op.MayCancel {
			cancel = "YES"
		}
		rows = append(rows, []string{op.ID, strings.ToUpper(op.Class), op.Description, strings.ToUpper(op.Status),
			cancel, op.CreatedAt.Local().Format("2006/01/02 15:04 MST"), op.Location})
	}
	return []string{"ID", "TYPE", "DESCRIPTION", "STATUS", "CANCELABLE", "CREATED", "LOCATION"}, rows
}

// OperationShowCmd shows one operation.
type OperationShowCmd struct {
	ID     string        `arg:""`
	Format output.Format `help:"yaml or json." default:"yaml"`
}

// Run shows it.
func (c *OperationShowCmd) Run(e *Env) error {
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		op, err := cl.Operation(ctx, c.ID)
		if err != nil {
			return err
		}
		return output.Render(e.Stdout, c.Format, op, func() ([]string, [][]string) { return operationTable([]api.Operation{*op}) })
	})
}

// OperationDeleteCmd cancels one operation.
type OperationDeleteCmd struct {
	ID string `arg:""`
}

// Run cancels it.
func (c *OperationDeleteCmd) Run(e *Env) error {
	return e.with("", func(ctx context.Context, cl *api.Client) error { return cl.CancelOperation(ctx, c.ID) })
}
