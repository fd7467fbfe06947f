package node

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
)

// TestRaftLogsGoThroughSlog: Raft's hclog calls come out of meshd's slog
// handler, in its format, at its level, and follow a level change.
func TestRaftLogsGoThroughSlog(t *testing.T) {
	var buf bytes.Buffer
	lv := new(slog.LevelVar)
	lv.Set(slog.LevelWarn)
	l := newHCLogger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: lv})), "raft")
	l.Info("entering follower state", "term", 3)
	if buf.Len() != 0 || l.IsInfo() {
		t.Fatalf("info logged at level warn: %q", buf.String())
	}
	l.Named("snapshot").Warn("failed to contact", "server-id", "h2")
	if n := bytes.Count(buf.Bytes(), []byte(`"component"`)); n != 1 {
		t.Errorf("%d component attributes in %q, want 1", n, buf.String())
	}
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("not one JSON record: %q: %v", buf.String(), err)
	}
	if rec["level"] != "WARN" || rec["msg"] != "failed to contact" || rec["component"] != "raft.snapshot" || rec["server-id"] != "h2" {
		t.Errorf("record %v, want WARN, the message, component raft.snapshot and the attribute", rec)
	}
	lv.Set(slog.LevelDebug)
	if !l.IsDebug() || l.IsTrace() {
		t.Errorf("after level debug: IsDebug %v IsTrace %v, want true false", l.IsDebug(), l.IsTrace())
	}
}
