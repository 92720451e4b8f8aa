package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// waitChunk is how long (seconds) one GET /1.0/operations/ID/wait may block.
const waitChunk = 30

// decode reads an answer into out. An async answer (an LXD operation) is followed: a task
// or websocket operation is waited for and its metadata decoded into out (its failure is
// the error); a token operation is not waited for (it stays running until used) and its
// metadata is decoded at once.
func (c *Client) decode(ctx context.Context, resp *http.Response, out any) error {
	var op Operation
	async, err := decodeEnvelope(resp, out, &op)
	if err != nil || !async {
		return err
	}
	if op.Class != OperationClassToken && !op.StatusCode.IsFinal() {
		final, err := c.WaitOperation(ctx, op.ID)
		if err != nil {
			return err
		}
		op = *final
	}
	return operationResult(&op, out)
}

// decodeEnvelope reads an answer: an error answer as an *Error, a sync answer's metadata into
// out, an async answer's operation into op (async true).
func decodeEnvelope(resp *http.Response, out any, op *Operation) (async bool, err error) {
	var env Response
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return false, err
	}
	if resp.StatusCode < 400 && bytes.HasPrefix(data, syncStart) && (out == nil || decodeSync(data, out)) {
		return false, nil // a sync success: nothing else to read when nothing is wanted of it
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return false, &Error{Code: resp.StatusCode, Message: fmt.Sprintf("unexpected answer (HTTP %d): %.200s", resp.StatusCode, data)}
	}
	if env.Type == "error" || resp.StatusCode >= 400 {
		code := env.ErrorCode
		if code == 0 {
			code = resp.StatusCode
		}
		return false, &Error{Code: code, Message: env.Error}
	}
	if env.Type == "async" {
		if err := json.Unmarshal(env.Metadata, op); err != nil {
			return false, fmt.Errorf("async answer: %w", err)
		}
		return true, nil
	}
	if out != nil && len(env.Metadata) > 0 {
		return false, json.Unmarshal(env.Metadata, out)
	}
	return false, nil
}

// syncStart is how a sync answer of an orch daemon begins (rest.SyncBody).
var syncStart = []byte(`{"type":"sync",`)

// decodeSync decodes a sync answer's metadata straight into out, in one pass over the
// answer instead of two (the envelope with the metadata kept raw, then the metadata); it
// reports false, for decodeEnvelope's general path, for anything that does not start as a
// sync answer or does not decode.
func decodeSync(data []byte, out any) bool {
	if !bytes.HasPrefix(data, syncStart) {
		return false
	}
	env := struct {
		Type     string `json:"type"`
		Metadata any    `json:"metadata"`
	}{Metadata: out}
	return json.Unmarshal(data, &env) == nil && env.Type == "sync"
}

// operationResult is a finished (or token) operation's outcome: its error, or its metadata
// decoded into out.
func operationResult(op *Operation, out any) error {
	switch op.StatusCode {
	case Failure:
		return &Error{Code: http.StatusInternalServerError, Message: op.Err}
	case Cancelled:
		msg := op.Err
		if msg == "" {
			msg = "operation " + op.ID + " was cancelled"
		}
		return &Error{Code: http.StatusInternalServerError, Message: msg}
	}
	if out == nil || op.Metadata == nil {
		return nil
	}
	b, err := json.Marshal(op.Metadata)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

// WaitOperation waits until the operation id ends and returns it.
func (c *Client) WaitOperation(ctx context.Context, id string) (*Operation, error) {
	for {
		var op Operation
		_, err := c.Call(ctx, http.MethodGet, fmt.Sprintf("/1.0/operations/%s/wait?timeout=%d", url.PathEscape(id), waitChunk), nil, &op, "")
		if err != nil {
			return nil, fmt.Errorf("waiting for operation %s: %w", id, err)
		}
		if op.Final() {
			return &op, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// Operations lists the cluster's operations (every member's), as GET /1.0/operations?recursion=1.
func (c *Client) Operations(ctx context.Context) ([]Operation, error) {
	var byStatus map[string][]Operation
	if _, err := c.Call(ctx, http.MethodGet, "/1.0/operations?recursion=1", nil, &byStatus, ""); err != nil {
		return nil, err
	}
	var out []Operation
	for _, ops := range byStatus {
		out = append(out, ops...)
	}
	return out, nil
}

// Operation returns one operation, wherever in the cluster it runs.
func (c *Client) Operation(ctx context.Context, id string) (*Operation, error) {
	var op Operation
	_, err := c.Call(ctx, http.MethodGet, "/1.0/operations/"+url.PathEscape(id), nil, &op, "")
	return &op, err
}

// CancelOperation cancels (DELETE) an operation.
func (c *Client) CancelOperation(ctx context.Context, id string) error {
	_, err := c.Call(ctx, http.MethodDelete, "/1.0/operations/"+url.PathEscape(id), nil, nil, "")
	return err
}

// OperationID is the id in an operation URL (/1.0/operations/ID).
func OperationID(u string) string { return u[strings.LastIndex(u, "/")+1:] }
