package sim

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
)

// TestStatusAndAttachFollowTheHostsJob: the job belongs to the host. Its
// status on both hosts tells an outgoing job from an incoming copy; a
// second caller attaches to the same job and sees it end; the completed
// job is kept on the destination, and the starts are counted per ID.
func TestStatusAndAttachFollowTheHostsJob(t *testing.T) {
	r, c, a, b := pair(t)
	ctx := context.Background()
	_ = a.Define(VMSpec{Name: "web", MemoryMiB: 1024})
	ref := migrate.DomainRef{Name: "web"}
	if _, err := a.Attach(ctx, ref, migrate.Params{}); !errors.Is(err, migrate.ErrNoJob) {
		t.Fatalf("attach without a job: %v, want ErrNoJob", err)
	}
	j, err := a.Migrate(ctx, "web", migrate.Params{DestURI: b.URI(), BandwidthMiB: 100, ID: "m1#1"})
	if err != nil {
		t.Fatal(err)
	}
	c.Advance(2 * time.Second)
	src, _ := a.Status(ctx, ref)
	dst, _ := b.Status(ctx, ref)
	if !src.Exists || !src.Runs() || src.Job == nil || src.Job.Kind != migrate.JobMigrationOut || src.Job.Stats.MemProcessed == 0 {
		t.Errorf("source status %+v: want the guest running with an outgoing job under way", src)
	}
	if !dst.Exists || !dst.Incoming || dst.Runs() || dst.Job == nil || dst.Job.Kind != migrate.JobMigrationIn {
		t.Errorf("destination status %+v: want an incoming copy", dst)
	}
	if v := migrate.Settle(&src, &dst, "a", "b"); v.Verdict != migrate.VerdictRunning {
		t.Errorf("verdict %+v, want running", v)
	}
	again, err := a.Attach(ctx, ref, migrate.Params{})
	if err != nil {
		t.Fatal(err)
	}
	if !runUntilDone(t, c, again, time.Minute) || again.Err() != nil {
		t.Fatalf("attached job: %v", again.Err())
	}
	<-j.Done()
	src, _ = a.Status(ctx, ref)
	dst, _ = b.Status(ctx, ref)
	if src.Exists || !dst.Runs() || dst.Reason != migrate.ReasonMigrated || dst.Ended == nil || dst.Ended.Outcome != migrate.JobCompleted {
		t.Errorf("after: source %+v, destination %+v: want it moved with the completed job kept", src, dst)
	}
	if v := migrate.Settle(&src, &dst, "a", "b"); v.Verdict != migrate.VerdictMoved {
		t.Errorf("verdict %+v, want moved", v)
	}
	if _, err := b.Migrate(ctx, "web", migrate.Params{DestURI: a.URI(), ID: "m1#1"}); err != nil {
		t.Fatal(err)
	}
	if got := r.Starts(); got["m1#1"] != 2 {
		t.Errorf("starts %v: want m1#1 counted twice", got)
	}
}

// TestLinkDownStallsAndFailedJobIsKept: a link that goes down stalls the
// stream without failing it; an abort then leaves the guest on the source,
// which keeps the cancelled job's result.
func TestLinkDownStallsAndFailedJobIsKept(t *testing.T) {
	_, c, a, b := pair(t)
	ctx := context.Background()
	_ = a.Define(VMSpec{Name: "db", MemoryMiB: 2048})
	j, _ := a.Migrate(ctx, "db", migrate.Params{DestURI: b.URI(), BandwidthMiB: 100})
	c.Advance(time.Second)
	b.SetLinkDown(true)
	before, _ := j.Stats()
	c.Advance(10 * time.Second)
	after, _ := j.Stats()
	if after.DataRemaining != before.DataRemaining || after.Elapsed <= before.Elapsed {
		t.Errorf("link down: remaining %d → %d, elapsed %v → %v: want a stall with time running", before.DataRemaining, after.DataRemaining, before.Elapsed, after.Elapsed)
	}
	if err := j.Abort(); err != nil {
		t.Fatal(err)
	}
	src, _ := a.Status(ctx, migrate.DomainRef{Name: "db"})
	dst, _ := b.Status(ctx, migrate.DomainRef{Name: "db"})
	if !src.Runs() || src.Job != nil || src.Ended == nil || src.Ended.Outcome != migrate.JobCancelled || dst.Exists {
		t.Errorf("after abort: source %+v destination %+v", src, dst)
	}
	if v := migrate.Settle(&src, &dst, "a", "b"); v.Verdict != migrate.VerdictStayed {
		t.Errorf("verdict %+v, want stayed", v)
	}
}

// TestPostCopyBreaksAndResumes: a post-copy stalled by a link cut is
// broken off; both copies wait in "post-copy failed"; a resume fails while
// the link is down and, once it is up, finishes the migration.
func TestPostCopyBreaksAndResumes(t *testing.T) {
	_, c, a, b := pair(t)
	ctx := context.Background()
	ref := migrate.DomainRef{Name: "hot"}
	_ = a.Define(VMSpec{Name: "hot", MemoryMiB: 1024, DirtyMiBps: 300})
	p := migrate.Params{DestURI: b.URI(), BandwidthMiB: 50, AllowPostCopy: true}
	j, _ := a.Migrate(ctx, "hot", p)
	c.Advance(time.Second)
	if err := j.StartPostCopy(); err != nil {
		t.Fatal(err)
	}
	c.Advance(2 * time.Second)
	src, _ := a.Status(ctx, ref)
	dst, _ := b.Status(ctx, ref)
	if !src.PostCopy || src.Runs() || !dst.PostCopy || !dst.Runs() {
		t.Fatalf("in post-copy: source %+v destination %+v", src, dst)
	}
	if !slices.Contains(b.VMNames(), "hot") || slices.Contains(a.VMNames(), "hot") {
		t.Errorf("in post-copy the guest runs on b only: a %v b %v", a.VMNames(), b.VMNames())
	}
	a.SetLinkDown(true)
	c.Advance(5 * time.Second)
	if err := j.InterruptPostCopy(); err != nil {
		t.Fatal(err)
	}
	<-j.Done()
	if j.Err() == nil {
		t.Fatal("interrupted post-copy ended without an error")
	}
	src, _ = a.Status(ctx, ref)
	dst, _ = b.Status(ctx, ref)
	if !src.PostCopyFailed || src.State != fsm.VMPaused || !dst.PostCopyFailed {
		t.Fatalf("broken: source %+v destination %+v", src, dst)
	}
	if v := migrate.Settle(&src, &dst, "a", "b"); v.Verdict != migrate.VerdictPostCopyPaused {
		t.Errorf("verdict %+v, want post-copy paused", v)
	}
	if _, err := a.Attach(ctx, ref, p); !errors.Is(err, migrate.ErrNoJob) {
		t.Errorf("attach to a broken post-copy: %v, want ErrNoJob", err)
	}
	if _, err := a.ResumePostCopy(ctx, ref, p); !errors.Is(err, ErrLinkDown) {
		t.Fatalf("resume with the link down: %v, want ErrLinkDown", err)
	}
	a.SetLinkDown(false)
	r, err := a.ResumePostCopy(ctx, ref, p)
	if err != nil {
		t.Fatal(err)
	}
	if !runUntilDone(t, c, r, time.Minute) || r.Err() != nil {
		t.Fatalf("resumed post-copy: %v", r.Err())
	}
	src, _ = a.Status(ctx, ref)
	dst, _ = b.Status(ctx, ref)
	if src.Exists || !dst.Runs() || dst.Reason != migrate.ReasonMigrated || a.Resumes() != 1 {
		t.Errorf("after resume: source %+v destination %+v resumes %d", src, dst, a.Resumes())
	}
}

// TestBreakMigrations: a host that dies breaks the streams from and to it.
func TestBreakMigrations(t *testing.T) {
	r, c, a, b := pair(t)
	ctx := context.Background()
	x, _ := r.AddHost(HostSpec{Name: "x", MemTotalMiB: 16384, CPUs: 8})
	_ = a.Define(VMSpec{Name: "pre", MemoryMiB: 2048})
	_ = x.Define(VMSpec{Name: "post", MemoryMiB: 2048})
	pre, _ := a.Migrate(ctx, "pre", migrate.Params{DestURI: b.URI(), BandwidthMiB: 100})
	post, _ := x.Migrate(ctx, "post", migrate.Params{DestURI: b.URI(), BandwidthMiB: 100, AllowPostCopy: true})
	c.Advance(time.Second)
	_ = post.StartPostCopy()
	c.Advance(time.Second)
	if n := b.BreakMigrations(); n != 2 {
		t.Fatalf("broke %d jobs, want 2", n)
	}
	<-pre.Done()
	<-post.Done()
	if !errors.Is(pre.Err(), ErrConnectionLost) || !slices.Contains(a.VMNames(), "pre") || b.Incoming() != 0 {
		t.Errorf("pre-copy: %v; a runs %v, b has %d incoming", pre.Err(), a.VMNames(), b.Incoming())
	}
	st, _ := x.Status(ctx, migrate.DomainRef{Name: "post"})
	if !errors.Is(post.Err(), ErrConnectionLost) || !st.PostCopyFailed {
		t.Errorf("post-copy: %v, source %+v", post.Err(), st)
	}
}

// TestPeerAcrossProcesses reads a remote host's domain through Handler.
func TestPeerAcrossProcesses(t *testing.T) {
	_, _, a, _ := pair(t)
	far, uri := remote(t, "far", 8192)
	_ = far.Define(VMSpec{Name: "web", MemoryMiB: 512})
	p, err := a.Peer(context.Background(), "far", uri)
	if err != nil {
		t.Fatal(err)
	}
	st, err := p.Status(context.Background(), migrate.DomainRef{Name: "web"})
	if err != nil || !st.Runs() || st.UUID == "" {
		t.Fatalf("remote status %+v, %v", st, err)
	}
	st, err = p.Status(context.Background(), migrate.DomainRef{Name: "nope"})
	if err != nil || st.Exists {
		t.Fatalf("remote status of a missing VM %+v, %v", st, err)
	}
	_ = a.Define(VMSpec{Name: "local", MemoryMiB: 512})
	lp, err := a.Peer(context.Background(), "a", a.URI())
	if err != nil {
		t.Fatal(err)
	}
	if st, err := lp.Status(context.Background(), migrate.DomainRef{Name: "local"}); err != nil || !st.Runs() {
		t.Errorf("peer of its own registry: %+v %v", st, err)
	}
	a.SetDown(true)
	if _, err := lp.Status(context.Background(), migrate.DomainRef{Name: "local"}); !errors.Is(err, ErrHostDown) {
		t.Errorf("a host that is down answered its peer: %v", err)
	}
}
