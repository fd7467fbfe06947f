package fsm

import "testing"

// TestTransferSent: a pre-copy transfer counts as sent with nothing left,
// or in a later pass with no more left than its rate sends in its allowed
// downtime (300 ms at least); never in its first pass with bytes left,
// before its first byte, in post-copy, or at an unknown rate.
func TestTransferSent(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name string
		p    Progress
		want bool
	}{
		{"all sent", Progress{ProcessedBytes: 100 * mib}, true},
		{"nothing sent yet", Progress{}, false},
		{"first pass, 1 MiB left", Progress{ProcessedBytes: 100 * mib, RemainingBytes: mib, MiBps: 16, Iteration: 1}, false},
		{"second pass, 4.8 MiB left at 16 MiB/s (300 ms)", Progress{ProcessedBytes: 100 * mib, RemainingBytes: 48 * mib / 10, MiBps: 16, Iteration: 2, MaxDowntimeMs: 100}, true},
		{"second pass, 5 MiB left at 16 MiB/s", Progress{ProcessedBytes: 100 * mib, RemainingBytes: 5 * mib, MiBps: 16, Iteration: 2, MaxDowntimeMs: 100}, false},
		{"third pass, 7 MiB left at 16 MiB/s, downtime 500 ms", Progress{ProcessedBytes: 100 * mib, RemainingBytes: 7 * mib, MiBps: 16, Iteration: 3, MaxDowntimeMs: 500}, true},
		{"third pass, 9 MiB left at 16 MiB/s, downtime 500 ms", Progress{ProcessedBytes: 100 * mib, RemainingBytes: 9 * mib, MiBps: 16, Iteration: 3, MaxDowntimeMs: 500}, false},
		{"second pass, rate unknown", Progress{ProcessedBytes: 100 * mib, RemainingBytes: mib, Iteration: 2}, false},
		{"post-copy, all sent", Progress{ProcessedBytes: 100 * mib, PostCopy: true}, false},
		{"post-copy, second pass, 1 MiB left", Progress{ProcessedBytes: 100 * mib, RemainingBytes: mib, MiBps: 16, Iteration: 2, PostCopy: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := TransferSent(tc.p); got != tc.want {
				t.Errorf("TransferSent(%+v) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
}
