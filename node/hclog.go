package node

import (
	"context"
	"io"
	"log"
	"log/slog"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// hclogger hands Raft's logs (hclog) to meshd's slog handler, so that meshd
// writes one log format and its level (--log-level, changed on reload)
// applies to Raft as to everything else. Level checks ask the handler.
type hclogger struct {
	base    *slog.Logger // meshd's, without the component
	l       *slog.Logger // base with component and implied args
	name    string
	implied []any
}

func newHCLogger(l *slog.Logger, name string) hclog.Logger {
	return makeHCLogger(l, name, nil)
}

func makeHCLogger(base *slog.Logger, name string, implied []any) *hclogger {
	return &hclogger{base: base, l: base.With("component", name).With(implied...), name: name, implied: implied}
}

// slogLevel maps hclog's levels; Trace is below slog's Debug.
func slogLevel(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace:
		return slog.LevelDebug - 4
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

func (h *hclogger) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off {
		return
	}
	if level >= hclog.Info {
		if n, at := serverList(args); at >= 0 {
			// Raft's "updating configuration" lists every server on each
			// membership change: at 1,000 hosts some 50 KB per join. Info
			// gets the count; the list goes to debug.
			if h.enabled(hclog.Debug) {
				h.l.Log(context.Background(), slog.LevelDebug, msg, args...)
			}
			args = append(append(append([]any{}, args[:at]...), n), args[at+1:]...)
		}
	}
	h.l.Log(context.Background(), slogLevel(level), msg, args...)
}

// serverList finds a "servers" argument holding Raft's whole server list
// (hclog.Fmt("%+v", []raft.Server)): its length and the value's index, or
// -1 when there is none.
func serverList(args []any) (n, at int) {
	for i := 0; i+1 < len(args); i += 2 {
		if k, ok := args[i].(string); !ok || k != "servers" {
			continue
		}
		if f, ok := args[i+1].(hclog.Format); ok && len(f) == 2 {
			if ss, ok := f[1].([]raft.Server); ok {
				return len(ss), i + 1
			}
		}
	}
	return 0, -1
}

func (h *hclogger) Trace(msg string, args ...any) { h.Log(hclog.Trace, msg, args...) }
func (h *hclogger) Debug(msg string, args ...any) { h.Log(hclog.Debug, msg, args...) }
func (h *hclogger) Info(msg string, args ...any)  { h.Log(hclog.Info, msg, args...) }
func (h *hclogger) Warn(msg string, args ...any)  { h.Log(hclog.Warn, msg, args...) }
func (h *hclogger) Error(msg string, args ...any) { h.Log(hclog.Error, msg, args...) }

func (h *hclogger) enabled(level hclog.Level) bool {
	return h.l.Enabled(context.Background(), slogLevel(level))
}
func (h *hclogger) IsTrace() bool { return h.enabled(hclog.Trace) }
func (h *hclogger) IsDebug() bool { return h.enabled(hclog.Debug) }
func (h *hclogger) IsInfo() bool  { return h.enabled(hclog.Info) }
func (h *hclogger) IsWarn() bool  { return h.enabled(hclog.Warn) }
func (h *hclogger) IsError() bool { return h.enabled(hclog.Error) }

func (h *hclogger) ImpliedArgs() []any { return h.implied }

func (h *hclogger) With(args ...any) hclog.Logger {
	return makeHCLogger(h.base, h.name, append(append([]any{}, h.implied...), args...))
}

func (h *hclogger) Name() string { return h.name }

func (h *hclogger) Named(name string) hclog.Logger {
	full := name
	if h.name != "" {
		full = h.name + "." + name
	}
	return makeHCLogger(h.base, full, h.implied)
}

func (h *hclogger) ResetNamed(name string) hclog.Logger {
	return makeHCLogger(h.base, name, h.implied)
}

// SetLevel is a no-op: the level is meshd's, set on its handler.
func (h *hclogger) SetLevel(hclog.Level) {}

func (h *hclogger) GetLevel() hclog.Level {
	for _, l := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn, hclog.Error} {
		if h.enabled(l) {
			return l
		}
	}
	return hclog.Off
}

func (h *hclogger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return slog.NewLogLogger(h.l.Handler(), slog.LevelInfo)
}

func (h *hclogger) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	return h.StandardLogger(opts).Writer()
}
