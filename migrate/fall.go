package migrate

import "time"

// passFall measures how fast a memory pass's remaining data falls: from
// the pass's first sample to its latest, over the job's elapsed time
// (fsm.Progress.FallBps). The job's clock, not the monitor's, so that a
// late sample does not read as a slow pass.
type passFall struct {
	iter int           // the pass (MemIteration) measured
	rem  uint64        // its remaining data at its first sample
	at   time.Duration // the job's elapsed time then
	bps  uint64        // the fall rate so far; 0 until a second sample
}

// sample takes the job's latest stats. A new pass, or remaining data that
// grew (QEMU found pages dirtied again), starts the measure over.
func (f *passFall) sample(st JobStats) {
	if st.DataTotal == 0 || st.PostCopy {
		*f = passFall{}
		return
	}
	if st.MemIteration != f.iter || st.DataRemaining > f.rem || f.at == 0 {
		*f = passFall{iter: st.MemIteration, rem: st.DataRemaining, at: max(st.Elapsed, time.Nanosecond)}
		return
	}
	if d := st.Elapsed - f.at; d > 0 {
		f.bps = uint64(float64(f.rem-st.DataRemaining) / d.Seconds())
	}
}
