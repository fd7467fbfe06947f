package main

import (
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A drain of 3 s at a 10 MiB/s link: 1 s before the first bytes, 1 s at
// full rate, 0.5 s idle between waves, 0.5 s at full rate, then 0.5 s
// until the command returns.
func TestAnalyzeLinkSplitsTheLostTime(t *testing.T) {
	start := time.Unix(1000, 0)
	var samples []linkSample
	var tx uint64
	rates := map[int]uint64{} // MiB/s in each 100 ms from the start
	for i := 10; i < 20; i++ {
		rates[i] = 10
	}
	for i := 25; i < 30; i++ {
		rates[i] = 10
	}
	for i := 0; i <= 30; i++ {
		tx += rates[i-1] << 20 / 10
		samples = append(samples, linkSample{start.Add(time.Duration(i) * 100 * time.Millisecond), tx})
	}
	u := analyzeLink(samples, start, start.Add(3500*time.Millisecond), 10)
	near := func(what string, got, want float64) {
		if math.Abs(got-want) > 1e-6 {
			t.Errorf("%s = %.3f, want %.3f", what, got, want)
		}
	}
	near("head", u.head, 1.0)
	near("gaps", u.gaps, 0.5)
	near("tail", u.tail, 0.5)
	if len(u.idle) != 1 || math.Abs(u.idle[0][0]-2.0) > 1e-6 || math.Abs(u.idle[0][1]-0.5) > 1e-6 {
		t.Errorf("idle = %v, want [[2 0.5]]", u.idle)
	}
	if len(u.perSecond) != 3 || u.perSecond[1] != 10 || u.perSecond[2] != 5 {
		t.Errorf("per second = %v, want [0 10 5]", u.perSecond)
	}
}

func TestDevTxReadsTheInterfacesTransmitBytes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "dev")
	const dev = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0
  mig0: 5000      10    0    0    0     0          0         0 123456789    20    0    0    0     0       0          0
`
	if err := os.WriteFile(p, []byte(dev), 0o644); err != nil {
		t.Fatal(err)
	}
	tx, err := devTx(p, "mig0")
	if err != nil || tx != 123456789 {
		t.Fatalf("devTx = %d, %v; want 123456789", tx, err)
	}
	if _, err := devTx(p, "eth9"); err == nil {
		t.Error("devTx of a missing interface: no error")
	}
}
