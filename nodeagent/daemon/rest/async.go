package rest

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"orch/nodeagent/api"
)

// Socket is one websocket of an operation (gorilla's *websocket.Conn has these methods);
// writes may come from several goroutines.
type Socket interface {
	ReadMessage() (messageType int, p []byte, err error)
	WriteMessage(messageType int, data []byte) error
	Close() error
}

// Op is a running operation as its task sees it.
type Op interface {
	// Socket waits until the client connected the websocket named fd; nil when ctx ends
	// first.
	Socket(ctx context.Context, fd string) Socket
	// SetMetadata merges kv into the operation's metadata (and tells event listeners).
	SetMetadata(kv map[string]any)
}

// Task is the work of a request answered as an LXD operation (202 Accepted, type async).
type Task struct {
	// Class is api.OperationClassTask (the default), ...Websocket or ...Token.
	Class string
	// Description says what the operation does ("Creating instance").
	Description string
	// Resources are the objects concerned, by kind ("instances": ["/1.0/instances/c1"]).
	Resources map[string][]string
	// Metadata is the operation's metadata at the start.
	Metadata map[string]any
	// Sockets name the websockets of a websocket operation; their secrets go into the
	// metadata's "fds".
	Sockets []string
	// Run is the work (nil for a token); its error fails the operation.
	Run func(ctx context.Context, op Op) error
	// OnCancel is what cancelling a token does (the operation may then be cancelled).
	OnCancel func(ctx context.Context) error
	// Alive reports, for a token, whether it is still unused (false ends the operation).
	Alive func(ctx context.Context) bool
	// ExpiresAt, when set, cancels a token then.
	ExpiresAt time.Time
	// Kept names, for a token, the kind of token the member keeps across its restarts (the
	// domain that issued it rebuilds the task from Kind and Metadata); "" is not kept.
	Kept string
}

// WriteAsync answers a request with the operation it started: 202, Location
// /1.0/operations/ID and the operation as metadata, as LXD.
func WriteAsync(w http.ResponseWriter, op api.Operation) error {
	raw, err := json.Marshal(op)
	if err != nil {
		return err
	}
	u := "/1.0/operations/" + op.ID
	w.Header().Set("Location", u)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	return json.NewEncoder(w).Encode(api.Response{Type: "async", Status: api.OperationCreated.String(),
		StatusCode: int(api.OperationCreated), Operation: u, Metadata: raw})
}
