package daemon

import (
	"fmt"
	"io"
	"log/slog"
)

// newLogger is meshd's one log pipeline: a slog handler in the format of
// --log-format whose level (--log-level) a reload can change. Raft's and
// memberlist's logs are routed into it (node and gossip adapt their
// loggers), and it becomes slog's and the standard log package's default,
// so a library's stray log.Printf lands in it too, in the same format.
func newLogger(w io.Writer, format, level string) (*slog.Logger, *slog.LevelVar, error) {
	lv := new(slog.LevelVar)
	if err := setLevel(lv, level); err != nil {
		return nil, nil, err
	}
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler
	switch format {
	case "text":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, nil, fmt.Errorf("--log-format %q: want text or json", format)
	}
	return slog.New(h), lv, nil
}

func setLevel(lv *slog.LevelVar, level string) error {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	lv.Set(l)
	return nil
}
