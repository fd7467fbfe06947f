package migrate

import (
	"testing"
	"time"
)

// TestPassFall: the fall rate is the remaining data's fall from the
// pass's first sample to the latest over the job's elapsed time; a new
// pass, remaining data that grew, a post-copy or a job not yet sending
// starts it over (0: unknown until the pass's second sample).
func TestPassFall(t *testing.T) {
	const mib = 1 << 20
	st := func(ms int64, iter int, left uint64) JobStats {
		return JobStats{Elapsed: time.Duration(ms) * time.Millisecond, DataTotal: 256 * mib, DataRemaining: left * mib, MemIteration: iter}
	}
	for _, tc := range []struct {
		name    string
		samples []JobStats
		want    uint64 // MiB/s
	}{
		{"one sample", []JobStats{st(2000, 1, 250)}, 0},
		{"256 MiB to 192 in 2 s: 32 MiB/s", []JobStats{st(2000, 1, 256), st(3000, 1, 224), st(4000, 1, 192)}, 32},
		{"a run of zero pages is averaged over the pass", []JobStats{st(2000, 1, 256), st(4000, 1, 224), st(4500, 1, 160)}, 38},
		{"a new pass starts over", []JobStats{st(2000, 1, 256), st(9000, 1, 8), st(9500, 2, 6)}, 0},
		{"the second pass's own rate", []JobStats{st(2000, 1, 256), st(9000, 1, 8), st(9500, 2, 6), st(10000, 2, 2)}, 8},
		{"remaining that grew starts over", []JobStats{st(2000, 1, 100), st(2500, 1, 90), st(3000, 1, 120), st(3500, 1, 112)}, 16},
		{"no data total yet (setup)", []JobStats{{Elapsed: time.Second}, st(2000, 1, 256), st(2500, 1, 248)}, 16},
		{"post-copy", []JobStats{st(2000, 1, 256), {Elapsed: 2500 * time.Millisecond, DataTotal: 256 * mib, DataRemaining: 200 * mib, MemIteration: 1, PostCopy: true}}, 0},
		{"the job's clock stood still", []JobStats{st(2000, 1, 256), st(2000, 1, 200)}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f passFall
			for _, s := range tc.samples {
				f.sample(s)
			}
			if got := f.bps / mib; got != tc.want {
				t.Errorf("fall after %d samples = %d MiB/s (%d B/s), want %d MiB/s", len(tc.samples), got, f.bps, tc.want)
			}
		})
	}
}
