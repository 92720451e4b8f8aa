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

// Operation is a background operation, as LXD's (GET /1.0/operations/ID).
type Operation struct {
	ID          string              `json:"id"`
	Class       string              `json:"class"`
	Description string              `json:"description"`
	CreatedAt   time.Time           `json:"created_at"`
	UpdatedAt   time.Time           `json:"updated_at"`
	Status      string              `json:"status"`
	StatusCode  StatusCode          `json:"status_code"`
	Resources   map[string][]string `json:"resources"`
	Metadata    map[string]any      `json:"metadata"`
	MayCancel   bool                `json:"may_cancel"`
	Err         string              `json:"err"`
	Location    string              `json:"location"`
}

// Event types, as LXD's.
const (
	EventTypeLifecycle = "lifecycle"
	EventTypeLogging   = "logging"
	EventTypeOperation = "operation"
)

// Event is one message of /1.0/events.
type Event struct {
	Type      string          `json:"type"`
	Timestamp time.Time       `json:"timestamp"`
	Metadata  json.RawMessage `json:"metadata"`
	Location  string          `json:"location,omitempty"`
	Project   string          `json:"project,omitempty"`
}

// EventLifecycle is the metadata of a lifecycle event (an object created, started, …).
type EventLifecycle struct {
	Action    string         `json:"action"`
	Source    string         `json:"source"`
	Context   map[string]any `json:"context,omitempty"`
	Requestor *Requestor     `json:"requestor,omitempty"`
}

// Requestor is who caused a lifecycle event.
type Requestor struct {
	Username string `json:"username"`
	Protocol string `json:"protocol"`
	Address  string `json:"address"`
}

// EventLogging is the metadata of a logging event.
type EventLogging struct {
	Message string            `json:"message"`
	Level   string            `json:"level"`
	Context map[string]string `json:"context"`
}

// InstanceExecPost is POST /1.0/instances/NAME/exec, as LXD's.
type InstanceExecPost struct {
	Command      []string          `json:"command"`
	WaitForWS    bool              `json:"wait-for-websocket"`
	Interactive  bool              `json:"interactive"`
	Environment  map[string]string `json:"environment"`
	Width        int               `json:"width"`
	Height       int               `json:"height"`
	RecordOutput bool              `json:"record-output"`
	User         uint32            `json:"user"`
	Group        uint32            `json:"group"`
	Cwd          string            `json:"cwd"`
}

// InstanceExecControl is a message of an exec's control websocket.
type InstanceExecControl struct {
	Command string            `json:"command"`
	Args    map[string]string `json:"args"`
	Signal  int               `json:"signal"`
}
