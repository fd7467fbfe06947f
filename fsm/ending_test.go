package fsm

import "testing"

// TestTransferEnding: a transfer is predicted to end within the window
// from its remaining data at the faster of its wire rate and the rate its
// remaining data fell over the pass (zero pages cost the wire almost
// nothing); never before its first byte, in post-copy, or when neither
// rate is known.
func TestTransferEnding(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name string
		p    Progress
		want bool
	}{
		{"40 MiB at 16 MiB/s on the wire, no fall known: 2.5 s", Progress{ProcessedBytes: 80 * mib, RemainingBytes: 40 * mib, MiBps: 16}, false},
		{"40 MiB falling at 32 MiB/s (half of it zero pages): 1.25 s", Progress{ProcessedBytes: 80 * mib, RemainingBytes: 40 * mib, MiBps: 16, FallBps: 32 * mib}, true},
		{"40 MiB falling at 16 MiB/s: 2.5 s", Progress{ProcessedBytes: 80 * mib, RemainingBytes: 40 * mib, MiBps: 16, FallBps: 16 * mib}, false},
		{"30 MiB at 16 MiB/s, falling slower than the wire (headers): the wire decides, 1.9 s", Progress{ProcessedBytes: 80 * mib, RemainingBytes: 30 * mib, MiBps: 16, FallBps: 15 * mib}, true},
		{"exactly 2 s at the fall rate", Progress{ProcessedBytes: 80 * mib, RemainingBytes: 64 * mib, MiBps: 16, FallBps: 32 * mib}, true},
		{"wire rate unknown, fall known: 0.5 s", Progress{ProcessedBytes: 80 * mib, RemainingBytes: 16 * mib, FallBps: 32 * mib}, true},
		{"neither rate known", Progress{ProcessedBytes: 80 * mib, RemainingBytes: mib}, false},
		{"nothing left", Progress{ProcessedBytes: 80 * mib}, true},
		{"nothing sent yet, fall known", Progress{RemainingBytes: mib, FallBps: 32 * mib}, false},
		{"post-copy, fall known", Progress{ProcessedBytes: 80 * mib, RemainingBytes: mib, MiBps: 16, FallBps: 32 * mib, PostCopy: true}, false},
		{"first pass, last time 139 MiB, 120 sent: 19 MiB at 16 MiB/s, 1.2 s", Progress{ProcessedBytes: 120 * mib, RemainingBytes: 100 * mib, MiBps: 16, FallBps: 18 * mib, Iteration: 1, LastFirstPassBytes: 139 * mib}, true},
		{"first pass, last time 139 MiB, 100 sent: 2.4 s", Progress{ProcessedBytes: 100 * mib, RemainingBytes: 150 * mib, MiBps: 16, FallBps: 18 * mib, Iteration: 1, LastFirstPassBytes: 139 * mib}, false},
		{"first pass sent more than last time (the guest filled since): the rates decide, 6 s", Progress{ProcessedBytes: 150 * mib, RemainingBytes: 96 * mib, MiBps: 16, Iteration: 1, LastFirstPassBytes: 139 * mib}, false},
		{"second pass: last time's first pass does not count, 3 s", Progress{ProcessedBytes: 100 * mib, RemainingBytes: 48 * mib, MiBps: 16, Iteration: 2, LastFirstPassBytes: 139 * mib}, false},
		{"first pass, last time known, wire rate unknown: the fall decides, 3 s", Progress{ProcessedBytes: 130 * mib, RemainingBytes: 96 * mib, FallBps: 32 * mib, Iteration: 1, LastFirstPassBytes: 139 * mib}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := transferEnding(tc.p, 2000); got != tc.want {
				left, ok := TransferLeftMs(tc.p)
				t.Errorf("transferEnding(%+v, 2 s) = %v, want %v (left %.0f ms, known %v)", tc.p, got, tc.want, left, ok)
			}
		})
	}
}
