package api

import (
	"context"
	"time"
)

// Watcher paces a loop of blocking reads, as `meshctl migrate --wait`
// follows a migration: each read asks for changes past the previous
// answer's index (meshd answers as soon as its state moves, or after
// Wait), and two reads are at least Gap apart so that a busy mesh does not
// answer in a tight loop. A meshd that gives no index is polled every
// 500 ms.
type Watcher struct {
	Wait time.Duration // default 5 s
	Gap  time.Duration // default 200 ms

	index uint64
	last  time.Time
}

// pollEvery is the fallback period when meshd gives no index.
const pollEvery = 500 * time.Millisecond

// Next waits as the pacing requires and returns the options of the next
// read (nil for the first, which answers at once).
func (w *Watcher) Next(ctx context.Context) (*QueryOptions, error) {
	gap := w.Gap
	if gap <= 0 {
		gap = 200 * time.Millisecond
	}
	if w.index == 0 && !w.last.IsZero() {
		gap = pollEvery
	}
	if wait := gap - time.Since(w.last); !w.last.IsZero() && wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	w.last = time.Now()
	if w.index == 0 {
		return nil, nil
	}
	wait := w.Wait
	if wait <= 0 {
		wait = 5 * time.Second
	}
	return &QueryOptions{WaitIndex: w.index, WaitTime: wait}, nil
}

// Saw records the index a read answered with.
func (w *Watcher) Saw(meta QueryMeta) { w.index = meta.LastIndex }
