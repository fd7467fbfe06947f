package cli

import (
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/api"
)

// TestClosingLineRoundTrip: what meshctl writes, ParseMoved reads back, for
// a pre-copy and a post-copy migration.
func TestClosingLineRoundTrip(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	pre := api.Migration{ID: "m7", VM: "vm7", Source: "h1", Dest: "h2", StartedAt: t0, EndedAt: t0.Add(4512 * time.Millisecond), DowntimeMs: 23}
	got, err := ParseMoved("progress...\n" + formatMoved(pre) + "\n")
	if err != nil {
		t.Fatal(err)
	}
	want := Moved{Line: formatMoved(pre), ID: "m7", VM: "vm7", From: "h1", To: "h2", Total: 4512 * time.Millisecond, Downtime: 23 * time.Millisecond}
	if got != want {
		t.Errorf("pre-copy: got %+v, want %+v", got, want)
	}

	post := pre
	post.Progress = api.Progress{PostCopy: true, PostCopyAtMs: 28_000, ElapsedMs: 34_000}
	got, err = ParseMoved(formatMoved(post))
	if err != nil {
		t.Fatal(err)
	}
	if !got.PostCopy || got.PostCopyAt != 28*time.Second || got.PostCopyPhase != 6*time.Second || got.Downtime != 23*time.Millisecond {
		t.Errorf("post-copy: got %+v from %q", got, formatMoved(post))
	}
	if _, err := ParseMoved("m7: vm7 Failed: boom (VM stays on h1)"); err == nil {
		t.Error("a failure line parsed as a success")
	}
}
