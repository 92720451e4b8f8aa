package store

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// newHCLogger adapts an slog.Logger for raft, which logs through hclog: an
// intercept logger whose own output is discarded forwards every message to a
// sink that writes it to slog at the matching level.
func newHCLogger(log *slog.Logger) hclog.Logger {
	l := hclog.NewInterceptLogger(&hclog.LoggerOptions{Output: io.Discard, Level: hclog.Off})
	l.RegisterSink(slogSink{log})
	return l
}

// slogSink is an hclog.SinkAdapter writing to slog.
type slogSink struct{ log *slog.Logger }

// Accept implements hclog.SinkAdapter.
func (s slogSink) Accept(name string, level hclog.Level, msg string, args ...any) {
	lvl := slogLevel(level)
	if !s.log.Enabled(context.Background(), lvl) {
		return
	}
	for i, a := range args {
		if f, ok := a.(hclog.Format); ok && len(f) > 0 {
			if format, ok := f[0].(string); ok {
				args[i] = fmt.Sprintf(format, f[1:]...)
			}
		}
	}
	if name != "" {
		args = append(args, "component", name)
	}
	s.log.Log(context.Background(), lvl, msg, args...)
}

// slogLevel maps an hclog level to slog.
func slogLevel(l hclog.Level) slog.Level {
	switch l {
	case hclog.Trace, hclog.Debug:
		return slog.LevelDebug
	case hclog.Info:
		return slog.LevelInfo
	case hclog.Warn:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}
