package api

import (
	"encoding/json"
	"time"
)

// Operation classes, as LXD's.
const (
	OperationClassTask      = "task"      // background work
	OperationClassWebsocket = "websocket" // work with websockets (exec)
	OperationClassToken     = "token"     // a token that is consumed or cancelled
)

// StatusCode is an LXD operation status code.
type StatusCode int

// Operation status codes, as LXD's.
const (
	OperationCreated StatusCode = 100
	Running          StatusCode = 103
	Cancelling       StatusCode = 104
	Pending          StatusCode = 105
	Success          StatusCode = 200
	Failure          StatusCode = 400
	Cancelled        StatusCode = 401
)

// String is the status's name as LXD writes it in "status".
func (c StatusCode) String() string {
	switch c {
	case OperationCreated:
		return "Operation created"
	case Running:
		return "Running"
	case Cancelling:
		return "Cancelling"
	case Pending:
		return "Pending"
	case Success:
		return "Success"
	case Failure:
		return "Failure"
	case Cancelled:
		return "Cancelled"
	}
	return ""
}

// IsFinal reports whether the status is an end state.
func (c StatusCode) IsFinal() bool { return c >= Success }

// Final reports whether the operation has ended: by its status code, or by its status's
// name when a server sent no code (Cancelling, like Running and Pending, is not an end).
func (o *Operation) Final() bool {
	if o.StatusCode != 0 {
		return o.StatusCode.IsFinal()
	}
	switch o.Status {
	case OperationCreated.String(), Running.String(), Cancelling.String(), Pending.String():
		return false
	}
	return true
}

// Operation is a background operation, as LXD's (GET /1.0/operations/ID).
type Operation struct {
	ID          string              `json:"id" yaml:"id"`
	Class       string              `json:"class" yaml:"class"`
	Description string              `json:"description" yaml:"description"`
	CreatedAt   time.Time           `json:"created_at" yaml:"created_at"`
	UpdatedAt   time.Time           `json:"updated_at" yaml:"updated_at"`
	Status      string              `json:"status" yaml:"status"`
	StatusCode  StatusCode          `json:"status_code" yaml:"status_code"`
	Resources   map[string][]string `json:"resources" yaml:"resources"`
	Metadata    map[string]any      `json:"metadata" yaml:"metadata"`
	MayCancel   bool                `json:"may_cancel" yaml:"may_cancel"`
	Err         string              `json:"err" yaml:"err"`
	Location    string              `json:"location" yaml:"location"`
}

// Event types, as LXD's.
const (
	EventTypeLifecycle = "lifecycle"
	EventTypeLogging   = "logging"
	EventTypeOperation = "operation"
)

// Event is one message of /1.0/events.
type Event struct {
	Type      string          `json:"type" yaml:"type"`
	Timestamp time.Time       `json:"timestamp" yaml:"timestamp"`
	Metadata  json.RawMessage `json:"metadata" yaml:"metadata"`
	Location  string          `json:"location,omitempty" yaml:"location,omitempty"`
	Project   string          `json:"project,omitempty" yaml:"project,omitempty"`
}

// EventLifecycle is the metadata of a lifecycle event (an object created, started, …).
type EventLifecycle struct {
	Action    string         `json:"action" yaml:"action"`
	Source    string         `json:"source" yaml:"source"`
	Context   map[string]any `json:"context,omitempty" yaml:"context,omitempty"`
	Requestor *Requestor     `json:"requestor,omitempty" yaml:"requestor,omitempty"`
}

// Requestor is who caused a lifecycle event.
type Requestor struct {
	Username string `json:"username" yaml:"username"`
	Protocol string `json:"protocol" yaml:"protocol"`
	Address  string `json:"address" yaml:"address"`
}

// EventLogging is the metadata of a logging event.
type EventLogging struct {
	Message string            `json:"message" yaml:"message"`
	Level   string            `json:"level" yaml:"level"`
	Context map[string]string `json:"context" yaml:"context"`
}

// InstanceExecPost is POST /1.0/instances/NAME/exec, as LXD's.
type InstanceExecPost struct {
	Command      []string          `json:"command" yaml:"command"`
	WaitForWS    bool              `json:"wait-for-websocket"`
	Interactive  bool              `json:"interactive" yaml:"interactive"`
	Environment  map[string]string `json:"environment" yaml:"environment"`
	Width        int               `json:"width" yaml:"width"`
	Height       int               `json:"height" yaml:"height"`
	RecordOutput bool              `json:"record-output"`
	User         uint32            `json:"user" yaml:"user"`
	Group        uint32            `json:"group" yaml:"group"`
	Cwd          string            `json:"cwd" yaml:"cwd"`
}

// InstanceExecControl is a message of an exec's control websocket.
type InstanceExecControl struct {
	Command string            `json:"command" yaml:"command"`
	Args    map[string]string `json:"args" yaml:"args"`
	Signal  int               `json:"signal" yaml:"signal"`
}
