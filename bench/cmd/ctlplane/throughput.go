package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hostmesh/hostmesh/api"
	"github.com/hostmesh/hostmesh/bench/benchkit"
	"github.com/hostmesh/hostmesh/fsm"
)

// longMigration starts a slow migration (1 MiB/s for a 1 GiB sim VM) so
// progress updates have a Running migration to land on. The monitor fails
// it after 64 s per GiB of simulated time (6.4 s at timescale 10), so each
// burst gets a fresh one.
func (m *mesh) longMigration(c int, vm string, dst int) (string, error) {
	var resp api.MigrateResponse
	if err := m.write(m.api(c), "POST", "/v1/migrations", api.MigrateRequest{VM: vm, To: hostName(dst), BandwidthMiB: 1}, &resp); err != nil {
		return "", fmt.Errorf("long migration of %s: %w", vm, err)
	}
	_, err := benchkit.Poll(30*time.Second, 20*time.Millisecond, "migration "+resp.ID+" running", func() bool {
		var mig api.Migration
		return m.call(m.api(c), "GET", "/v1/migrations/"+resp.ID, nil, &mig) == nil && mig.State == api.MigRunning
	})
	return resp.ID, err
}

// progressBurst commits progress updates of migration id for the window
// through the leader's internal apply endpoint (the path a source host's
// reports take when forwarded) from conc concurrent senders, and returns
// commits/s.
// Raft batches concurrent applies into one disk write, so the rate grows
// with concurrency until the leader's CPU or fsync is the limit.
func (m *mesh) progressBurst(id string, window time.Duration, conc int) (float64, error) {
	l, err := m.leader()
	if err != nil {
		return 0, err
	}
	var leader atomic.Int64
	leader.Store(int64(l))
	var next, done atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(window)
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if time.Now().After(deadline) {
					return
				}
				k := next.Add(1)
				data, err := fsm.Encode(fsm.CmdProgress, fsm.ProgressUpdate{ID: id, Attempt: 1,
					Progress: fsm.Progress{Percent: float64(k%100) / 2, ProcessedBytes: uint64(k) << 20, Iteration: 1}})
				if err == nil {
					err = m.applyOnLeader(&leader, data)
				}
				if err != nil {
					once.Do(func() { firstErr = fmt.Errorf("progress update %d of %s: %w", k, id, err) })
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	if firstErr != nil {
		return 0, firstErr
	}
	return float64(done.Load()) / took.Seconds(), nil
}

// applyOnLeader posts one raw command to the leader's internal apply
// route, on its host port (--raft-port) with a host certificate; when the leader stepped down (503) it finds the new one and
// retries, counting the retry.
func (m *mesh) applyOnLeader(leader *atomic.Int64, data []byte) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		cl, err := m.client(fmt.Sprintf("127.0.0.1:%d", m.raftPort(int(leader.Load()))), benchHost)
		if err != nil {
			return err
		}
		_, _, err = cl.InternalApply(context.Background(), data)
		var he *api.Error
		if err == nil || !errors.As(err, &he) || he.Status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			return err
		}
		m.noLeader.Add(1)
		if l, err := m.leader(); err == nil {
			leader.Store(int64(l))
		}
	}
}
