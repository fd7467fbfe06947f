package gossip

import (
	"bytes"
	"context"
	"log"
	"log/slog"
	"strings"
)

// discard is the logger of an agent configured without one.
var discard = slog.New(slog.DiscardHandler)

// memberlistLogger routes memberlist's standard-library log lines ("[ERR]
// memberlist: ...") into slog at the level each line names, so that meshd
// writes one log and an operator sees memberlist's reasons: above all why a
// host is not admitted ("no installed keys could decrypt the message").
func memberlistLogger(l *slog.Logger) *log.Logger {
	return log.New(&levelWriter{l: l.With("component", "memberlist")}, "", 0)
}

type levelWriter struct{ l *slog.Logger }

// Write turns one log line into one record. memberlist writes whole lines,
// each through one Write.
func (w *levelWriter) Write(p []byte) (int, error) {
	line := string(bytes.TrimRight(p, "\n"))
	level := slog.LevelInfo
	for prefix, lv := range map[string]slog.Level{"[DEBUG]": slog.LevelDebug, "[INFO]": slog.LevelInfo,
		"[WARN]": slog.LevelWarn, "[ERR]": slog.LevelError, "[ERROR]": slog.LevelError} {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			level, line = lv, strings.TrimSpace(rest)
			break
		}
	}
	line = strings.TrimPrefix(line, "memberlist: ")
	if !w.l.Enabled(context.Background(), level) {
		return len(p), nil
	}
	var args []any
	if cause := keyMismatchCause(line); cause != "" {
		args = append(args, "cause", cause)
	}
	w.l.Log(context.Background(), level, line, args...)
	return len(p), nil
}

// Key mismatch messages of memberlist (security.go and net.go, v0.5).
var keyMismatchTexts = []string{
	"no installed keys could decrypt the message",
	"encryption is configured but remote state is not encrypted",
	"remote state is encrypted and encryption is not configured",
}

// keyMismatchCause says in an operator's words what a memberlist error means
// when it is a gossip key mismatch, and "" otherwise.
func keyMismatchCause(msg string) string {
	for _, t := range keyMismatchTexts {
		if strings.Contains(msg, t) {
			return "gossip key mismatch: the two hosts share no gossip key (" + t + ")"
		}
	}
	return ""
}

// IsKeyMismatch reports whether a join error comes from hosts that share no
// gossip key: the mesh cannot decrypt this host's messages or the reverse.
func IsKeyMismatch(err error) bool {
	return err != nil && keyMismatchCause(err.Error()) != ""
}
