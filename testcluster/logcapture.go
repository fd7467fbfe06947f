package testcluster

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
)

// LogCapture is a slog handler that keeps every record, so a test can assert
// what a node said (an ERROR naming a cause, a line logged once). Use
// slog.New(capture) as Options.Logger or a node's Config.Logger.
type LogCapture struct {
	mu    *sync.Mutex
	lines *[]LogLine
	attrs []slog.Attr
}

// LogLine is one record: its level, message and attributes as key=value.
type LogLine struct {
	Level slog.Level
	Msg   string
	Attrs map[string]string
}

// String renders the line as the text handler would, roughly.
func (l LogLine) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q", l.Level, l.Msg)
	for k, v := range l.Attrs {
		fmt.Fprintf(&b, " %s=%q", k, v)
	}
	return b.String()
}

// NewLogCapture returns an empty capture.
func NewLogCapture() *LogCapture {
	return &LogCapture{mu: &sync.Mutex{}, lines: &[]LogLine{}}
}

func (h *LogCapture) Enabled(context.Context, slog.Level) bool { return true }

func (h *LogCapture) Handle(_ context.Context, r slog.Record) error {
	l := LogLine{Level: r.Level, Msg: r.Message, Attrs: map[string]string{}}
	for _, a := range h.attrs {
		l.Attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		l.Attrs[a.Key] = a.Value.String()
		return true
	})
	h.mu.Lock()
	*h.lines = append(*h.lines, l)
	h.mu.Unlock()
	return nil
}

func (h *LogCapture) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), attrs...)
	return &c
}

// WithGroup flattens groups: tests match on keys only.
func (h *LogCapture) WithGroup(string) slog.Handler { return h }

// Lines returns the records that match: at least level, and every attribute
// given as key, value pairs equal.
func (h *LogCapture) Lines(level slog.Level, msgContains string, attrs ...string) []LogLine {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []LogLine
next:
	for _, l := range *h.lines {
		if l.Level < level || !strings.Contains(l.Msg, msgContains) {
			continue
		}
		for i := 0; i+1 < len(attrs); i += 2 {
			if l.Attrs[attrs[i]] != attrs[i+1] {
				continue next
			}
		}
		out = append(out, l)
	}
	return out
}
