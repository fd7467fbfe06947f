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
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := transferEnding(tc.p, 2000); got != tc.want {
				left, ok := TransferLeftMs(tc.p)
				t.Errorf("transferEnding(%+v, 2 s) = %v, want %v (left %.0f ms, known %v)", tc.p, got, tc.want, left, ok)
			}
		})
	}
}
