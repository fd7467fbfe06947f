package node

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hostmesh/hostmesh/migrate"
)

// refusedJob is a resumed job as libvirt's driver returns it: the resume
// call runs in its goroutine, so a refusal is the job's end.
type refusedJob struct {
	migrate.Job
	done chan struct{}
	err  error
}

func (j *refusedJob) Done() <-chan struct{} { return j.done }
func (j *refusedJob) Err() error            { return j.err }

func endedJob(err error) *refusedJob {
	j := &refusedJob{done: make(chan struct{}), err: err}
	close(j.done)
	return j
}

// TestAwaitResumedRefusedAsTheJobsEnd: a resume libvirt refuses after
// ResumePostCopy returned (the lab's "being actively monitored by another
// thread" while the cut link holds the first stream) is not taken for a
// resumed migration, so the caller waits before the next try instead of
// resuming in a tight loop.
func TestAwaitResumedRefusedAsTheJobsEnd(t *testing.T) {
	stillBroken := func(context.Context) *migrate.DomainStatus {
		return &migrate.DomainStatus{Exists: true, PostCopyFailed: true}
	}
	refusal := errors.New("migration of domain g1 is being actively monitored by another thread")
	err := awaitResumed(context.Background(), endedJob(refusal), stillBroken, time.Millisecond)
	if !errors.Is(err, errResumeRefused) || !errors.Is(err, refusal) {
		t.Fatalf("awaitResumed of a refused resume = %v, want errResumeRefused wrapping the refusal", err)
	}
	if err := awaitResumed(context.Background(), endedJob(nil), stillBroken, time.Millisecond); err != nil {
		t.Fatalf("awaitResumed of a resumed job that completed = %v, want nil", err)
	}
}

// TestAwaitResumedSeesTheSourceRunAgain: a resume that runs leaves the
// job going; it is confirmed when the source's copy leaves "post-copy
// failed" (back in post-copy) or the host (completed).
func TestAwaitResumedSeesTheSourceRunAgain(t *testing.T) {
	for _, after := range []migrate.DomainStatus{
		{Exists: true, PostCopy: true},
		{Exists: false},
	} {
		var reads atomic.Int32
		src := func(context.Context) *migrate.DomainStatus {
			if reads.Add(1) < 3 {
				return &migrate.DomainStatus{Exists: true, PostCopyFailed: true}
			}
			return &after
		}
		running := &refusedJob{done: make(chan struct{})}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := awaitResumed(ctx, running, src, time.Millisecond)
		cancel()
		if err != nil || reads.Load() != 3 {
			t.Fatalf("source then %+v: awaitResumed = %v after %d reads, want nil after 3", after, err, reads.Load())
		}
	}
	// unreadable source, job running, op ends: op's error
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := awaitResumed(ctx, &refusedJob{done: make(chan struct{})}, func(context.Context) *migrate.DomainStatus { return nil }, time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("awaitResumed with op ended = %v, want its deadline", err)
	}
}
