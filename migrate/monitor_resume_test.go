package migrate_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/fsm"
	"github.com/hostmesh/hostmesh/migrate"
)

// rewatch starts a second Watch on the same harness (its reports append to
// the first's), as a restarted meshd does on the job its predecessor left.
func (h *harness) rewatch(job migrate.Job, pol string, cfg migrate.MonitorConfig) {
	h.t.Helper()
	p, err := migrate.PolicyByName(pol)
	if err != nil {
		h.t.Fatal(err)
	}
	h.done = make(chan struct{})
	watching := make(chan struct{})
	cfg.VM = "hot"
	cfg.Interval = interval
	cfg.Clock = h.clock.Now
	cfg.NewTicker = func(d time.Duration) (<-chan time.Time, func()) {
		c, stop := h.clock.NewTicker(d)
		close(watching)
		return c, stop
	}
	go func() {
		defer close(h.done)
		h.stats, h.err = migrate.Watch(context.Background(), job, p, cfg, func(pr fsm.Progress) {
			h.mu.Lock()
			h.reports = append(h.reports, pr)
			h.mu.Unlock()
		})
	}()
	<-watching
}

// TestDetachThenReattachGoesOnWithThePolicy: a watch that detaches leaves
// the job running; a second one, attached with the last progress, takes
// the policy's next step (not its first again) and ends as one
// uninterrupted watch would.
func TestDetachThenReattachGoesOnWithThePolicy(t *testing.T) {
	detach := make(chan struct{})
	h, job, _ := start(t, stalling, 32, migrate.PolicyMinimalDowntime, migrate.MonitorConfig{Detach: detach})
	for len(h.last().Actions) < 2 {
		h.step()
	}
	close(detach)
	waitFor(t, "Watch to detach", 5*time.Second, h.finished)
	if !errors.Is(h.err, migrate.ErrDetached) {
		t.Fatalf("detached watch: %v, want ErrDetached", h.err)
	}
	select {
	case <-job.Done():
		t.Fatal("detaching ended the job")
	default:
	}
	prior := h.last()
	again, err := h.a.Attach(context.Background(), migrate.DomainRef{Name: "hot"}, migrate.Params{})
	if err != nil {
		t.Fatal(err)
	}
	h.rewatch(again, migrate.PolicyMinimalDowntime, migrate.MonitorConfig{Prior: &prior})
	h.run(5 * time.Minute)
	h.timeline()
	want := []string{"downtime 150ms", "downtime 200ms", "downtime 300ms", "downtime 400ms", "downtime 500ms", "abort: not converging"}
	if got := h.last().Actions; !slices.Equal(got, want) {
		t.Errorf("actions %q, want %q", got, want)
	}
	if !errors.Is(h.err, migrate.ErrNotConverging) || !h.onlyOn(h.a, "hot") {
		t.Errorf("err %v, want not converging with the VM on a", h.err)
	}
}

// TestReattachCountsTheTimeSpent: the completion limit of a re-attached
// watch counts from the job's start, not from the re-attach.
func TestReattachCountsTheTimeSpent(t *testing.T) {
	detach := make(chan struct{})
	cfg := migrate.MonitorConfig{Detach: detach, CompletionPerGiB: 20 * time.Second}
	h, _, _ := start(t, stalling, 32, migrate.PolicyPrecopy, cfg)
	for h.last().ElapsedMs < 12_000 {
		h.step()
	}
	close(detach)
	waitFor(t, "Watch to detach", 5*time.Second, h.finished)
	prior := h.last()
	again, err := h.a.Attach(context.Background(), migrate.DomainRef{Name: "hot"}, migrate.Params{})
	if err != nil {
		t.Fatal(err)
	}
	h.rewatch(again, migrate.PolicyPrecopy, migrate.MonitorConfig{Prior: &prior, CompletionPerGiB: 20 * time.Second})
	h.run(time.Minute)
	ran := time.Duration(h.last().ElapsedMs) * time.Millisecond
	if !errors.Is(h.err, migrate.ErrCompletionTimeout) || ran < 20*time.Second || ran > 21*time.Second {
		t.Errorf("ended after %v of job time: %v; want the completion timeout at 20 s", ran, h.err)
	}
}

// TestCutPostCopyCarriesOnWhenTheLinkReturns: with the defaults, a
// post-copy whose link is down for 3 minutes is not broken off: its
// stream carries on when the link is back and the job completes, with no
// resume (on QEMU 7.2 / libvirt 9.0 a resume can deadlock, see
// DefaultPostCopyStreamTimeout).
func TestCutPostCopyCarriesOnWhenTheLinkReturns(t *testing.T) {
	h, _, _ := start(t, stalling, 32, migrate.PolicyPostCopy, migrate.MonitorConfig{})
	for !h.last().PostCopy {
		h.step()
	}
	h.step()
	h.b.SetLinkDown(true)
	for range int(3 * time.Minute / interval) {
		h.step()
	}
	if h.finished() {
		t.Fatalf("a post-copy with its link down for 3 min ended: %v", h.err)
	}
	h.b.SetLinkDown(false)
	h.run(time.Minute)
	if h.err != nil || !h.onlyOn(h.b, "hot") {
		t.Fatalf("after the link came back: %v, on b %v", h.err, h.b.VMNames())
	}
	if got, want := h.last().Actions, []string{"downtime 150ms", "post-copy"}; !slices.Equal(got, want) {
		t.Errorf("actions %q, want %q", got, want)
	}
}

// TestStalledPostCopyIsBrokenOffAndResumes: a post-copy whose link went
// down is broken off after the stream timeout (the guest waits on both
// hosts), resumes once the link is back, and completes.
func TestStalledPostCopyIsBrokenOffAndResumes(t *testing.T) {
	const streamTimeout = 10 * time.Second
	h, _, _ := start(t, stalling, 32, migrate.PolicyPostCopy, migrate.MonitorConfig{PostCopyStreamTimeout: streamTimeout})
	for !h.last().PostCopy {
		h.step()
	}
	h.step()
	h.b.SetLinkDown(true)
	switchedAt := h.clock.Now()
	h.run(time.Minute)
	if !errors.Is(h.err, migrate.ErrPostCopyBroken) {
		t.Fatalf("err %v, want ErrPostCopyBroken", h.err)
	}
	if took := h.clock.Now().Sub(switchedAt); took < streamTimeout || took > streamTimeout+2*time.Second {
		t.Errorf("broken off %v after the link went down, want about %v", took, streamTimeout)
	}
	ref := migrate.DomainRef{Name: "hot"}
	src, _ := h.a.Status(context.Background(), ref)
	dst, _ := h.b.Status(context.Background(), ref)
	if v := migrate.Settle(&src, &dst, "a", "b"); v.Verdict != migrate.VerdictPostCopyPaused {
		t.Fatalf("after the break: %s (%s)", v.Verdict, v.Reason)
	}
	h.b.SetLinkDown(false)
	prior := h.last()
	p, _ := migrate.PolicyByName(migrate.PolicyPostCopy)
	job, err := h.a.ResumePostCopy(context.Background(), ref, p.Params(migrate.Params{DestURI: h.b.URI(), BandwidthMiB: 32}))
	if err != nil {
		t.Fatal(err)
	}
	h.rewatch(job, migrate.PolicyPostCopy, migrate.MonitorConfig{Prior: &prior})
	h.run(time.Minute)
	if h.err != nil || !h.onlyOn(h.b, "hot") {
		t.Fatalf("resumed: %v, on b %v", h.err, h.b.VMNames())
	}
	if got, want := h.last().Actions, []string{"downtime 150ms", "post-copy", "post-copy interrupted"}; !slices.Equal(got, want) {
		t.Errorf("actions %q, want %q", got, want)
	}
}

// TestStallBeforeTheSwitchIsAborted: a job asked to switch to post-copy
// whose stream stalls before the switch-over still has the guest on its
// source: it is aborted as a stalled pre-copy, not left waiting.
func TestStallBeforeTheSwitchIsAborted(t *testing.T) {
	h, _, _ := start(t, stalling, 32, migrate.PolicyPostCopy, migrate.MonitorConfig{})
	for !slices.Contains(h.last().Actions, "post-copy") {
		h.step()
	}
	h.b.SetLinkDown(true) // the switch it asked for (at the next step) cannot happen
	h.run(time.Minute)
	h.timeline()
	if !errors.Is(h.err, migrate.ErrProgressTimeout) || errors.Is(h.err, migrate.ErrPostCopyBroken) || !h.onlyOn(h.a, "hot") {
		t.Fatalf("err %v, on a %v: want a stalled pre-copy aborted, the guest on a", h.err, h.a.VMNames())
	}
}

// TestReattachRecordsAnUnreportedSwitch: a meshd that died between the
// switch to post-copy and its next committed sample left a record with no
// "post-copy" action (the lab's kill came 23 ms after the switch). The
// re-attached watch finds the job in post-copy and records the switch, so
// the record does not say post-copy with no action that led there.
func TestReattachRecordsAnUnreportedSwitch(t *testing.T) {
	detach := make(chan struct{})
	h, _, _ := start(t, stalling, 32, migrate.PolicyPostCopy, migrate.MonitorConfig{Detach: detach})
	var prior fsm.Progress
	for !h.last().PostCopy {
		prior = h.last() // the last sample before the switch: what a crash leaves committed
		h.step()
	}
	close(detach)
	waitFor(t, "Watch to detach", 5*time.Second, h.finished)
	if slices.Contains(prior.Actions, "post-copy") || prior.PostCopy {
		t.Fatalf("prior %+v already carries the switch", prior)
	}
	again, err := h.a.Attach(context.Background(), migrate.DomainRef{Name: "hot"}, migrate.Params{})
	if err != nil {
		t.Fatal(err)
	}
	h.rewatch(again, migrate.PolicyPostCopy, migrate.MonitorConfig{Prior: &prior})
	h.run(time.Minute)
	if h.err != nil || !h.onlyOn(h.b, "hot") {
		t.Fatalf("re-attached: %v, on b %v", h.err, h.b.VMNames())
	}
	want := append(slices.Clone(prior.Actions), "post-copy")
	if got := h.last().Actions; !slices.Equal(got, want) || !h.last().PostCopy {
		t.Errorf("actions %q (post-copy %v), want %q", got, h.last().PostCopy, want)
	}
}
