package node

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
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

// TestRaftConfigurationLogCountsServers: Raft's info line on a membership
// change carries the number of servers, not the list (the list, at 1,000
// hosts ~50 KB, only at debug).
func TestRaftConfigurationLogCountsServers(t *testing.T) {
	var buf bytes.Buffer
	lv := new(slog.LevelVar)
	l := newHCLogger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: lv})), "raft")
	servers := []raft.Server{{ID: "h1", Address: "10.0.0.1:7401"}, {ID: "h2", Address: "10.0.0.2:7401", Suffrage: raft.Nonvoter}}
	logIt := func() {
		l.Info("updating configuration", "command", raft.AddNonvoter, "server-id", "h2", "server-addr", "10.0.0.2:7401", "servers", hclog.Fmt("%+v", servers))
	}
	logIt()
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("not one JSON record at info: %q: %v", buf.String(), err)
	}
	if rec["level"] != "INFO" || rec["servers"] != float64(2) || rec["server-id"] != "h2" || strings.Contains(buf.String(), "10.0.0.1") {
		t.Errorf("info record %v, want INFO with servers 2 and the changed server only", rec)
	}
	buf.Reset()
	lv.Set(slog.LevelDebug)
	logIt()
	if lines := strings.Split(strings.TrimSpace(buf.String()), "\n"); len(lines) != 2 || !strings.Contains(lines[0], `"level":"DEBUG"`) || !strings.Contains(lines[0], "10.0.0.1:7401") || !strings.Contains(lines[1], `"servers":2`) {
		t.Errorf("at debug: %q, want the list at DEBUG then the count at INFO", buf.String())
	}
}
