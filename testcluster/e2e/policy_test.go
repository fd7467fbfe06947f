package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/testcluster/lab"
)

// The workload of TestPrecopyStallsPostCopyFinishes: a guest rewriting a
// small working set faster than the migration may send. With the cap at
// stallCapMiB MiB/s and the precopy policy's 300 ms allowed pause, at most
// about 1.2 MiB may be left at switch-over, while the guest redirties its
// whole working set (stallFillMiB) within each pass: pre-copy cannot
// converge, whatever the pass count.
const (
	stallCapMiB    = "4"
	stallFillMiB   = 16
	stallDirtyMiBs = 32
)

// TestPrecopyStallsPostCopyFinishes: plain pre-copy of a guest that dirties
// memory faster than the bandwidth cap runs into the mesh's completion
// timeout (64 s per GiB, at least 64 s) and is aborted with the guest still
// running on the source; the post-copy policy moves the same guest, and its
// counter runs on.
func TestPrecopyStallsPostCopyFinishes(t *testing.T) {
	m := sharedMesh(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	g := m.bootGuest(t, ctx, m.lab.Hosts[0], lab.GuestSpec{Name: "dirty", MemoryMiB: 256, FillMiB: stallFillMiB, DirtyMiBps: stallDirtyMiBs})
	w := watchCounters(t, g)
	w.waitMore(t, 3, 30*time.Second)
	if body, err := g.HTTP(ctx, "/"); err == nil {
		t.Logf("guest before: %s", strings.TrimSpace(body))
	}

	start := time.Now()
	r := m.ctl(ctx, "migrate", "dirty", "--to", "h2", "--policy", "precopy", "--bandwidth", stallCapMiB, "--wait")
	t.Logf("precopy: exit %d after %s: %s", r.code, r.took.Round(time.Millisecond), lastLine(r.stderr))
	if r.code != 1 {
		t.Fatalf("precopy of a guest dirtying %d MiB/s under a %s MiB/s cap: exit %d, want 1 (not converging): %s", stallDirtyMiBs, stallCapMiB, r.code, r)
	}
	if !strings.Contains(r.stderr, "did not complete in time") {
		t.Errorf("precopy failed, but not by the completion timeout: %s", r)
	}
	pre := lastMigrationOf(t, ctx, m, "dirty")
	logProgress(t, pre)
	if pre.State != api.MigFailed {
		t.Errorf("precopy migration %s is %s, want %s", pre.ID, pre.State, api.MigFailed)
	}
	if ran := pre.EndedAt.Sub(pre.StartedAt); ran < 64*time.Second {
		t.Errorf("precopy migration %s ended after %s, before the 64 s completion timeout of a 256 MiB guest", pre.ID, ran)
	}
	m.waitVM(t, ctx, "dirty", "h1")
	m.assertRunsOnlyOn(t, ctx, "dirty", "h1")
	w.assertNoRestart(t, start)
	if body, err := g.HTTP(ctx, "/"); err == nil {
		t.Logf("guest after precopy: %s", strings.TrimSpace(body))
	}

	start = time.Now()
	mv := m.migrateWait(t, ctx, "dirty", "--to", "h2", "--policy", "post-copy", "--bandwidth", stallCapMiB)
	post := m.migration(t, ctx, mv.id)
	logProgress(t, post)
	if !post.Progress.PostCopy || !slices.Contains(post.Progress.Actions, "post-copy") {
		t.Errorf("migration %s finished without switching to post-copy (actions %v)", post.ID, post.Progress.Actions)
	}
	// From the switch to the end of the job the guest runs on the
	// destination and stalls on every page it touches that has not arrived
	// yet (a TCG guest rewriting 16 MiB stalls for seconds): the guest may
	// stand still for that whole phase, never longer, and never restarts.
	// Before the switch it is a throttled pre-copy, bounded by nothing
	// (see assertNoRestart).
	switchAt := post.StartedAt.Add(time.Duration(post.Progress.PostCopyAtMs) * time.Millisecond)
	phase := time.Duration(post.Progress.ElapsedMs-post.Progress.PostCopyAtMs) * time.Millisecond
	if post.Progress.PostCopyAtMs <= 0 || phase <= 0 {
		t.Fatalf("migration %s: post-copy at %d ms of a %d ms job: no switch time recorded", post.ID, post.Progress.PostCopyAtMs, post.Progress.ElapsedMs)
	}
	w.assertNoRestart(t, start)
	limit := time.Second + phase + gapSlack
	t.Logf("post-copy: switched at %s of the job; post-copy phase %s, downtime reported %s; an interval after the switch may last 1 s + phase + slack = %s",
		(time.Duration(post.Progress.PostCopyAtMs) * time.Millisecond).Round(time.Millisecond), phase, mv.downtime, limit)
	for _, g := range w.gapsOver(start, time.Now(), time.Second+gapSlack) {
		after := g.end.Sub(switchAt)
		t.Logf("post-copy: counter interval %s after counter %d, ended %s after the switch", g.d.Round(time.Millisecond), g.after, after.Round(time.Millisecond))
		if after > 0 && g.d > limit {
			t.Errorf("guest counter stood still %s after counter %d, after the switch to post-copy: longer than 1 s + the %s post-copy phase + %s",
				g.d.Round(time.Millisecond), g.after, phase, gapSlack)
		}
	}
	m.waitVM(t, ctx, "dirty", "h2")
	m.assertRunsOnlyOn(t, ctx, "dirty", "h2")
}

// lastMigrationOf returns the latest migration of vm.
func lastMigrationOf(t *testing.T, ctx context.Context, m *mesh, vm string) api.Migration {
	t.Helper()
	var last api.Migration
	for _, mg := range m.migrations(t, ctx) {
		if mg.VM == vm {
			last = mg
		}
	}
	if last.ID == "" {
		t.Fatalf("meshctl migrations lists no migration of %s", vm)
	}
	return last
}

func logProgress(t *testing.T, mg api.Migration) {
	t.Helper()
	p := mg.Progress
	t.Logf("%s %s: %s in %s; processed %.1f MiB, remaining %.1f MiB, %.1f MiB/s, dirty %.1f MiB/s, pass %d, post-copy %v, actions %v, downtime %d ms; %s",
		mg.ID, mg.Policy, mg.State, mg.EndedAt.Sub(mg.StartedAt).Round(time.Millisecond), mib(p.ProcessedBytes), mib(p.RemainingBytes),
		p.MiBps, float64(p.DirtyRateBps)/(1<<20), p.Iteration, p.PostCopy, p.Actions, mg.DowntimeMs, mg.Reason)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
