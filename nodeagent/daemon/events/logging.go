package events

import (
	"context"
	"fmt"
	"log/slog"

	"orch/nodeagent/api"
)

// Tee returns a log handler that writes to next and also sends each record it writes as a
// logging event (what `lxc monitor --type=logging` shows).
func (h *Hub) Tee(next slog.Handler) slog.Handler { return tee{next: next, hub: h} }

// tee is a log handler sending its records to the hub too.
type tee struct {
	next  slog.Handler
	hub   *Hub
	attrs []slog.Attr
	group string
}

// Enabled is next's.
func (t tee) Enabled(ctx context.Context, l slog.Level) bool { return t.next.Enabled(ctx, l) }

// Handle writes the record and sends it.
func (t tee) Handle(ctx context.Context, r slog.Record) error {
	fields := map[string]string{}
	add := func(a slog.Attr) bool {
		k := a.Key
		if t.group != "" {
			k = t.group + "." + k
		}
		fields[k] = fmt.Sprint(a.Value.Any())
		return true
	}
	for _, a := range t.attrs {
		add(a)
	}
	r.Attrs(add)
	t.hub.Send(api.EventTypeLogging, api.EventLogging{Message: r.Message, Level: lxdLevel(r.Level), Context: fields})
	return t.next.Handle(ctx, r)
}

// WithAttrs is next's, the attributes kept for the events.
func (t tee) WithAttrs(as []slog.Attr) slog.Handler {
	return tee{next: t.next.WithAttrs(as), hub: t.hub, attrs: append(append([]slog.Attr(nil), t.attrs...), as...), group: t.group}
}

// WithGroup is next's.
func (t tee) WithGroup(name string) slog.Handler {
	return tee{next: t.next.WithGroup(name), hub: t.hub, attrs: t.attrs, group: name}
}

// lxdLevel names a level as LXD's logging events do.
func lxdLevel(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "eror"
	case l >= slog.LevelWarn:
		return "warn"
	case l >= slog.LevelInfo:
		return "info"
	}
	return "dbug"
}
